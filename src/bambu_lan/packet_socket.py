"""A TLS socket that reads MQTT packets whole, so that reports can skip paho's reader.

paho reads each MQTT packet in three or four ``recv`` calls (the type byte, each byte of the
remaining length, the body), each through ssl.py into OpenSSL, then builds a message object,
takes two locks and matches the topic before our callback sees the payload. With a thousand
printers that was most of the farm's CPU spent outside our own code. ``PacketSocket`` reads
TLS a record at a time, splits the bytes into whole MQTT packets, and lets its owner take the
common case itself: a QoS 0 PUBLISH on the one topic we subscribe to (every report). Any other
packet (CONNACK, SUBACK, PINGRESP, a PUBLISH we do not expect) is handed to paho, which reads
exactly that packet through ``recv`` and handles it as always; so is the end of the stream or
an error. paho never sees part of a packet, so its reader state stays at a packet boundary.
"""

from __future__ import annotations

import ssl

CHUNK = 32 * 1024  # OpenSSL hands out at most one TLS record (16 KB) per read anyway

# The first byte of a PUBLISH with QoS 0 (flags DUP and RETAIN may be set).
_PUBLISH = 0x30
_TYPE_AND_QOS = 0xF6

END = b""
"""``next_packet()``'s value at the end of the stream or on a read error: hand it to paho."""


class PacketSocket(ssl.SSLSocket):
    """An ``ssl.SSLSocket`` with a packet reader. Until ``next_packet`` is first called it is
    a plain SSL socket (the handshake, paho's CONNECT); from then on TLS is read only by
    ``next_packet``, and ``recv`` (paho's) serves only what ``hand_to_paho`` gave it."""

    # Class defaults: ssl.SSLSocket instances are made by SSLContext.wrap_socket through a
    # classmethod, never through __init__.
    _framing = False
    _buf = b""  # bytes read from TLS and not yet split off as a packet
    _for_paho = b""  # one whole packet, for paho's recv calls
    _paho_pos = 0
    _error: OSError | None = None  # the read error to give paho (None: end of stream)

    def next_packet(self) -> bytes | None:
        """The next whole MQTT packet, reading TLS as needed; None when TLS has no more
        for now (wait until the socket is readable); ``END`` at the end of the stream or on
        a read error (give it to ``hand_to_paho``: paho reports the connection lost)."""
        self._framing = True
        buf = self._buf
        while True:
            size = _packet_size(buf)
            if size < 0:
                self._error = ConnectionError("a malformed MQTT packet length from the printer")
                self._buf = b""
                return END
            if size and len(buf) >= size:
                self._buf = buf[size:]
                return buf if len(buf) == size else buf[:size]
            chunk = self._read_chunk()
            if chunk is None:
                self._buf = buf
                return None
            if not chunk:
                self._buf = b""
                return END
            if size and len(buf) + len(chunk) < size:
                # A packet of several TLS records (an X1's full report): gather, join once.
                parts = [buf, chunk]
                have = len(buf) + len(chunk)
                while have < size:
                    chunk = self._read_chunk()
                    if chunk is None:
                        self._buf = b"".join(parts)
                        return None
                    if not chunk:
                        self._buf = b""
                        return END
                    parts.append(chunk)
                    have += len(chunk)
                buf = b"".join(parts)
            else:
                buf = buf + chunk if buf else chunk

    def _read_chunk(self) -> bytes | None:
        """Up to ``CHUNK`` bytes from TLS; None when it has none now; ``END`` at the end of
        the stream or on an error (kept for paho)."""
        try:
            return ssl.SSLSocket.recv(self, CHUNK)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return None
        except OSError as exc:
            self._error = exc
            return END

    def hand_to_paho(self, packet: bytes) -> None:
        """Make ``packet`` (or the end, ``END``) what paho's next ``recv`` calls read."""
        self._for_paho = packet
        self._paho_pos = 0

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        if not self._framing or flags:
            return super().recv(buflen, flags)
        data = self._for_paho
        pos = self._paho_pos
        if pos < len(data):
            end = pos + buflen
            self._paho_pos = end
            return data[pos:end] if pos or end < len(data) else data
        if not data:  # END was handed over
            error, self._error = self._error, None
            if error is not None:
                raise error
            return b""
        raise ssl.SSLWantReadError("no whole packet for paho yet")

    def pending(self) -> int:
        return len(self._buf) + super().pending()


def _packet_size(buf: bytes) -> int:
    """The size of the MQTT packet at the start of ``buf`` (fixed header included); 0 when
    ``buf`` does not hold its whole length yet; -1 when the length is malformed (more than
    four bytes, which paho also refuses)."""
    size = 0
    shift = 0
    for index in range(1, min(len(buf), 5)):
        byte = buf[index]
        size |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return 1 + index + size
        shift += 7
    return -1 if len(buf) >= 5 else 0


def report_payload(packet: bytes, topic: bytes) -> bytes | None:
    """The payload of ``packet`` when it is a QoS 0 PUBLISH on ``topic``, else None."""
    if packet[0] & _TYPE_AND_QOS != _PUBLISH:
        return None
    start = 2
    while packet[start - 1] & 0x80:  # the remaining length's continuation bytes
        start += 1
    end = start + 2 + len(topic)
    if packet[start + 2 : end] != topic or packet[start : start + 2] != len(topic).to_bytes(2):
        return None
    return packet[end:]
