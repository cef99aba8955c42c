"""Raw probes: single TLS handshakes and a deliberately crude MQTT client, all blocking (the
steps run them in threads).

``tls_handshake`` makes one TCP connection and one handshake and says how it ended (accepted,
refused, closed, no answer, not TLS, not verified). ``RawMqtt`` sends exactly the bytes it is
told to, so the quirk probes can be wrong on purpose (subscribe before CONNACK, a wildcard, a
reused client id); it sends credentials only to the certificate an earlier step checked.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import uuid
from dataclasses import dataclass
from typing import Final, Literal

from bambu_lan.config import PrinterConfig
from bambu_lan.protocol.topics import USERNAME, report_topic
from bambu_lan.trust import fingerprint, tls12_context

TlsOutcome = Literal["ok", "refused", "closed", "no_answer", "not_tls", "verify_failed", "error"]


@dataclass(slots=True)
class TlsResult:
    outcome: TlsOutcome
    detail: str = ""
    version: str | None = None
    cipher: tuple[str, str, int] | None = None
    der: bytes | None = None
    verify_message: str = ""


def tls13_only_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def default_context() -> ssl.SSLContext:
    """What a client gets without pinning a version (identity is not the question here)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _classify_ssl_error(exc: BaseException) -> tuple[TlsOutcome, str]:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "verify_failed", exc.verify_message or str(exc)
    if isinstance(exc, TimeoutError):
        return "no_answer", "no answer (timed out)"
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return "closed", "the printer closed the connection during the handshake"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "closed", "the printer reset the connection during the handshake"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or str(exc)).upper()
        text = exc.reason or str(exc)
        if any(k in reason for k in ("WRONG_VERSION_NUMBER", "RECORD_LAYER", "PACKET_LENGTH")):
            return "not_tls", f"the answer is not TLS ({text})"
        if "ALERT" in reason or "UNSUPPORTED_PROTOCOL" in reason or "NO_PROTOCOLS" in reason:
            return "refused", f"refused with a TLS alert ({text})"
        return "error", text
    if isinstance(exc, OSError):
        return "error", exc.strerror or str(exc)
    return "error", str(exc)


def tls_handshake(host: str, port: int, ctx: ssl.SSLContext, timeout: float) -> TlsResult:
    """One TCP connection and one TLS handshake (blocking; run in a thread). No credentials."""
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        return TlsResult("error", "TCP connect timed out")
    except OSError as exc:
        return TlsResult("error", f"TCP connect failed: {exc.strerror or exc}")
    try:
        with ctx.wrap_socket(raw, server_hostname=None) as tls:
            return TlsResult(
                "ok",
                version=tls.version(),
                cipher=tls.cipher(),
                der=tls.getpeercert(binary_form=True),
            )
    except Exception as exc:
        outcome, detail = _classify_ssl_error(exc)
        verify = exc.verify_message if isinstance(exc, ssl.SSLCertVerificationError) else ""
        return TlsResult(outcome, detail, verify_message=verify or "")
    finally:
        raw.close()


def probe_plain_mqtt(host: str, port: int, timeout: float) -> bool:
    """Whether ``host:port`` speaks MQTT without TLS: a CONNECT with no credentials at all
    (never the access code in clear text) answered by a CONNACK. Tells a plain broker (a
    Mosquitto on 1883, or a wrong --port) from a TLS problem (blocking; run in a thread)."""
    connect = _connect_packet_without_credentials("bambu-lan-doctor-plain-probe")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(connect)
            answer = sock.recv(4)
    except OSError:
        return False
    return len(answer) >= 2 and answer[0] == 0x20 and answer[1] == 0x02


def _connect_packet_without_credentials(client_id: str) -> bytes:
    # MQTT 3.1.1 CONNECT: protocol name, level 4, flags 0x02 (clean session, no user name,
    # no password), keepalive 30, client id.
    body = _mqtt_string(b"MQTT") + bytes([4, 0x02, 0, 30]) + _mqtt_string(client_id.encode())
    return _mqtt_packet(0x10, body)


class ProbeError(Exception):
    """A quirk probe could not get as far as the question it asks."""


class RawMqtt:
    """A minimal blocking MQTT 3.1.1 client over TLS 1.2 for the quirk probes: it sends exactly
    the bytes it is told to, so it can be wrong on purpose. The printer's certificate must be
    the one already checked (``expected_fingerprint``) before any credentials leave."""

    def __init__(self, host: str, port: int, expected_fingerprint: str, timeout: float) -> None:
        self.timeout = timeout
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            self.sock = tls12_context().wrap_socket(raw, server_hostname=None)
        except Exception:
            raw.close()
            raise
        der = self.sock.getpeercert(binary_form=True) or b""
        if fingerprint(der) != expected_fingerprint:
            self.close()
            raise ProbeError("the certificate differs from the checked one; nothing was sent")
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_packet(self) -> tuple[int, bytes] | None:
        """(packet type, body) or None when the printer closed the connection."""
        try:
            header = self._read(1)
            if header is None:
                return None
            length, multiplier = 0, 1
            for _ in range(4):
                byte = self._read(1)
                if byte is None:
                    return None
                length += (byte[0] & 0x7F) * multiplier
                if not byte[0] & 0x80:
                    break
                multiplier *= 128
            body = self._read(length) if length else b""
            if body is None:
                return None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return None
        return header[0] >> 4, body

    def read_until(self, *types: int) -> tuple[int, bytes] | None:
        """The next packet of one of ``types`` (others, e.g. PUBLISH, skipped); None: closed."""
        while True:
            packet = self.read_packet()
            if packet is None or packet[0] in types:
                return packet

    def _read(self, count: int) -> bytes | None:
        while len(self._buffer) < count:
            chunk = self.sock.recv(max(4096, count))
            if not chunk:
                return None
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def close(self, *, disconnect: bool = False) -> None:
        with contextlib.suppress(OSError):
            if disconnect:
                self.sock.sendall(_DISCONNECT)  # frees the session slot at once (A1: ~4)
        with contextlib.suppress(OSError):
            self.sock.close()


_CONNACK, _SUBACK, _PINGRESP = 2, 9, 13
_PINGREQ: Final = b"\xc0\x00"
_DISCONNECT: Final = b"\xe0\x00"


def _mqtt_string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def _mqtt_packet(first_byte: int, body: bytes) -> bytes:
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([first_byte]) + bytes(encoded) + body


def _connect_packet(client_id: str, password: str, keepalive: int = 30) -> bytes:
    flags = 0x80 | 0x40 | 0x02  # user name, password, clean session
    body = _mqtt_string(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    body += _mqtt_string(client_id.encode()) + _mqtt_string(USERNAME.encode())
    body += _mqtt_string(password.encode())
    return _mqtt_packet(0x10, body)


def _subscribe_packet(packet_id: int, topic_filter: str) -> bytes:
    return _mqtt_packet(
        0x82, struct.pack("!H", packet_id) + _mqtt_string(topic_filter.encode()) + b"\x00"
    )


def _connack_code(packet: tuple[int, bytes] | None) -> int | None:
    if packet is None or packet[0] != _CONNACK or len(packet[1]) < 2:
        return None
    return packet[1][1]


def _open_session(cfg: PrinterConfig, fingerprint: str, timeout: float, client_id: str) -> RawMqtt:
    """A raw session that reached CONNACK 0, or ProbeError."""
    conn = RawMqtt(cfg.host, cfg.port, fingerprint, timeout)
    try:
        conn.send(_connect_packet(client_id, cfg.access_code.reveal()))
        code = _connack_code(conn.read_until(_CONNACK))
    except Exception:
        conn.close()
        raise
    if code != 0:
        conn.close()
        what = "closed the connection" if code is None else f"answered CONNACK {code}"
        raise ProbeError(f"a plain session could not be opened: the printer {what}")
    return conn


def probe_early_subscribe(cfg: PrinterConfig, fingerprint: str, timeout: float) -> tuple[str, str]:
    conn = RawMqtt(cfg.host, cfg.port, fingerprint, timeout)
    try:
        client_id = f"bambu-lan-quirk-{uuid.uuid4().hex[:8]}"
        # CONNECT and SUBSCRIBE in one write: the SUBSCRIBE arrives before the CONNACK.
        conn.send(
            _connect_packet(client_id, cfg.access_code.reveal())
            + _subscribe_packet(1, report_topic(cfg.serial))
        )
        first = conn.read_until(_CONNACK, _SUBACK)
        if first is None:
            return "dropped", "closed before CONNACK: clients must subscribe only after CONNACK"
        code = _connack_code(first)
        if code not in (None, 0):
            return "inconclusive", f"CONNACK {code}"
        suback = conn.read_until(_SUBACK)
        if suback is None:
            return "dropped", "closed after CONNACK without SUBACK: subscribe only after CONNACK"
        return "tolerated", "CONNACK, then SUBACK for the early subscription"
    except TimeoutError:
        return "inconclusive", f"no answer within {timeout:g} s"
    finally:
        conn.close(disconnect=True)


def probe_wildcard(cfg: PrinterConfig, fingerprint: str, timeout: float) -> tuple[str, str]:
    conn = _open_session(cfg, fingerprint, timeout, f"bambu-lan-quirk-{uuid.uuid4().hex[:8]}")
    try:
        conn.send(_subscribe_packet(2, "device/+/report"))
        suback = conn.read_until(_SUBACK)
        if suback is None:
            return "dropped", "device/+/report closes the connection: never subscribe to wildcards"
        codes = suback[1][2:]
        if codes and codes[0] == 0x80:
            return "refused", "SUBACK 0x80 for device/+/report; the connection stays"
        return "tolerated", "SUBACK granted for device/+/report"
    except TimeoutError:
        return "inconclusive", f"no SUBACK within {timeout:g} s"
    finally:
        conn.close(disconnect=True)


def probe_default_tls(host: str, port: int, timeout: float) -> tuple[str, str]:
    r = tls_handshake(host, port, default_context(), timeout)
    if r.outcome == "ok":
        return "tolerated", f"a client without a version pin negotiates {r.version}"
    if r.outcome == "no_answer":
        return "dropped", (
            f"a client without a version pin (offering TLS 1.3) gets no answer in {timeout:g} s "
            "and hangs: pin TLS 1.2"
        )
    if r.outcome in ("refused", "closed"):
        return "dropped", f"a client without a version pin is refused ({r.detail}): pin TLS 1.2"
    return "inconclusive", r.detail


def probe_reused_id(cfg: PrinterConfig, fingerprint: str, timeout: float) -> tuple[str, str]:
    client_id = f"bambu-lan-quirk-{uuid.uuid4().hex[:8]}"
    older = _open_session(cfg, fingerprint, timeout, client_id)
    newer: RawMqtt | None = None
    try:
        try:
            newer = _open_session(cfg, fingerprint, timeout, client_id)
        except ProbeError as exc:
            return "dropped", f"a second session with the same id is refused ({exc})"
        # Is the older session still alive? A ping answers at once either way.
        try:
            older.send(_PINGREQ)
            pong = older.read_until(_PINGRESP)
        except OSError:  # reset, broken pipe, TLS EOF: the printer closed it
            pong = None
        if pong is None:
            return "dropped", (
                "the older session was closed when a newer one used its client id: two clients "
                "sharing an id kick each other off (repeated 'code 7'); use unique ids"
            )
        return "tolerated", "both sessions stay connected"
    except TimeoutError:
        return "inconclusive", f"no answer within {timeout:g} s"
    finally:
        if newer is not None:
            newer.close(disconnect=True)
        older.close(disconnect=True)
