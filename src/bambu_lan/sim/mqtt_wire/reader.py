"""``PacketReader``: the incremental MQTT parser. Feed it what the socket delivered, take
whole packets out; every malformed input raises ``ProtocolViolation``."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Final, Literal

from bambu_lan.sim.mqtt_wire.packets import (
    MAX_PACKET_SIZE,
    ConnAck,
    Connect,
    ConnectReturnCode,
    Disconnect,
    Packet,
    PacketType,
    PingReq,
    PingResp,
    ProtocolViolation,
    PubAck,
    Publish,
    SubAck,
    Subscribe,
    UnsubAck,
    Unsubscribe,
    Will,
    validate_topic_filter,
    validate_topic_name,
)

# --------------------------------------------------------------------------------------------
# Decoding helpers
# --------------------------------------------------------------------------------------------


class _Cursor:
    """Reads MQTT primitive types from the variable header and payload of one packet."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, count: int) -> bytes:
        if count > self.remaining:
            raise ProtocolViolation("packet shorter than its fields")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack("!H", self.take(2))[0]
        return value

    def binary(self) -> bytes:
        return self.take(self.u16())

    def string(self) -> str:
        raw = self.binary()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolViolation("string is not valid UTF-8") from None
        if "\x00" in text:
            raise ProtocolViolation("string contains U+0000")  # §1.5.3
        return text

    def packet_id(self) -> int:
        packet_id = self.u16()
        if packet_id == 0:
            raise ProtocolViolation("packet identifier 0")  # §2.3.1
        return packet_id

    def expect_end(self) -> None:
        if self.remaining:
            raise ProtocolViolation("bytes left over after the last field")


def _parse_connect(flags: int, body: bytes) -> Connect:
    cur = _Cursor(body)
    protocol_name = cur.string()
    protocol_level = cur.u8()
    if (protocol_name, protocol_level) == ("MQIsdp", 3) or (
        protocol_name == "MQTT" and protocol_level != 4
    ):
        # A real MQTT client of another version: answer CONNACK 1 as §3.1.2.2 asks.
        raise ProtocolViolation(
            f"unsupported protocol {protocol_name} level {protocol_level}",
            connack_code=ConnectReturnCode.UNACCEPTABLE_PROTOCOL_VERSION,
        )
    if protocol_name != "MQTT":
        raise ProtocolViolation(f"unknown protocol name {protocol_name!r}")
    connect_flags = cur.u8()
    if connect_flags & 0x01:
        raise ProtocolViolation("reserved CONNECT flag set")  # §3.1.2.3
    clean_session = bool(connect_flags & 0x02)
    will_flag = bool(connect_flags & 0x04)
    will_qos = (connect_flags >> 3) & 0x03
    will_retain = bool(connect_flags & 0x20)
    password_flag = bool(connect_flags & 0x40)
    username_flag = bool(connect_flags & 0x80)
    if not will_flag and (will_qos or will_retain):
        raise ProtocolViolation("will QoS/retain set without a will")  # §3.1.2.6
    if will_qos == 3:
        raise ProtocolViolation("will QoS 3")
    if password_flag and not username_flag:
        raise ProtocolViolation("password without user name")  # §3.1.2.9
    keepalive = cur.u16()
    client_id = cur.string()
    if not client_id and not clean_session:
        raise ProtocolViolation(
            "empty client id with clean session off",
            connack_code=ConnectReturnCode.IDENTIFIER_REJECTED,  # §3.1.3.1
        )
    will = None
    if will_flag:
        will_topic = cur.string()
        validate_topic_name(will_topic)
        will = Will(will_topic, cur.binary(), will_qos, will_retain)
    username = cur.string() if username_flag else None
    password = cur.binary() if password_flag else None
    cur.expect_end()
    return Connect(
        client_id=client_id,
        username=username,
        password=password,
        keepalive=keepalive,
        clean_session=clean_session,
        will=will,
        protocol_name=protocol_name,
        protocol_level=protocol_level,
    )


def _parse_publish(flags: int, body: bytes) -> Publish:
    qos = (flags >> 1) & 0x03
    dup = bool(flags & 0x08)
    retain = bool(flags & 0x01)
    if qos == 3:
        raise ProtocolViolation("PUBLISH with QoS 3")  # §3.3.1.2
    if qos == 2:
        # Outside the subset: printers (and this simulator) speak QoS 0 and 1 only.
        raise ProtocolViolation("PUBLISH with QoS 2 is not supported")
    if qos == 0 and dup:
        raise ProtocolViolation("DUP set on a QoS 0 PUBLISH")  # §3.3.1.1
    cur = _Cursor(body)
    topic = cur.string()
    validate_topic_name(topic)
    packet_id = cur.packet_id() if qos else None
    payload = cur.take(cur.remaining)
    return Publish(topic, payload, qos, retain, dup, packet_id)


def _parse_puback(flags: int, body: bytes) -> PubAck:
    cur = _Cursor(body)
    packet_id = cur.u16()
    cur.expect_end()
    return PubAck(packet_id)


def _parse_subscribe(flags: int, body: bytes) -> Subscribe:
    cur = _Cursor(body)
    packet_id = cur.packet_id()
    topics: list[tuple[str, int]] = []
    while cur.remaining:
        topic_filter = cur.string()
        validate_topic_filter(topic_filter)
        requested = cur.u8()
        if requested & 0xFC or requested == 3:
            raise ProtocolViolation("bad requested QoS byte in SUBSCRIBE")  # §3.8.3.1
        topics.append((topic_filter, requested))
    if not topics:
        raise ProtocolViolation("SUBSCRIBE without a topic filter")  # §3.8.3
    return Subscribe(packet_id, tuple(topics))


def _parse_unsubscribe(flags: int, body: bytes) -> Unsubscribe:
    cur = _Cursor(body)
    packet_id = cur.packet_id()
    filters: list[str] = []
    while cur.remaining:
        topic_filter = cur.string()
        validate_topic_filter(topic_filter)
        filters.append(topic_filter)
    if not filters:
        raise ProtocolViolation("UNSUBSCRIBE without a topic filter")  # §3.10.3
    return Unsubscribe(packet_id, tuple(filters))


def _parse_empty(packet: PingReq | PingResp | Disconnect) -> Callable[[int, bytes], Packet]:
    def parse(flags: int, body: bytes) -> Packet:
        if body:
            raise ProtocolViolation(f"{type(packet).__name__} with a body")
        return packet

    return parse


def _parse_connack(flags: int, body: bytes) -> ConnAck:
    cur = _Cursor(body)
    ack_flags = cur.u8()
    if ack_flags & 0xFE:
        raise ProtocolViolation("reserved CONNACK flag set")
    return_code = cur.u8()
    cur.expect_end()
    return ConnAck(return_code, bool(ack_flags & 0x01))


def _parse_suback(flags: int, body: bytes) -> SubAck:
    cur = _Cursor(body)
    packet_id = cur.u16()
    codes = tuple(cur.take(cur.remaining))
    if not codes:
        raise ProtocolViolation("SUBACK without return codes")
    if any(code not in (0, 1, 2, 0x80) for code in codes):
        raise ProtocolViolation("bad SUBACK return code")
    return SubAck(packet_id, codes)


def _parse_unsuback(flags: int, body: bytes) -> UnsubAck:
    cur = _Cursor(body)
    packet_id = cur.u16()
    cur.expect_end()
    return UnsubAck(packet_id)


_Parser = Callable[[int, bytes], Packet]

#: What a broker accepts from clients: type -> (required low-nibble flags or None, parser).
#: PUBREC/PUBREL/PUBCOMP are missing on purpose: they belong to QoS 2, outside the subset.
_CLIENT_PARSERS: Final[dict[int, tuple[int | None, _Parser]]] = {
    PacketType.CONNECT: (0, _parse_connect),
    PacketType.PUBLISH: (None, _parse_publish),
    PacketType.PUBACK: (0, _parse_puback),
    PacketType.SUBSCRIBE: (0b0010, _parse_subscribe),
    PacketType.UNSUBSCRIBE: (0b0010, _parse_unsubscribe),
    PacketType.PINGREQ: (0, _parse_empty(PingReq())),
    PacketType.DISCONNECT: (0, _parse_empty(Disconnect())),
}

#: What a client accepts from the server.
_SERVER_PARSERS: Final[dict[int, tuple[int | None, _Parser]]] = {
    PacketType.CONNACK: (0, _parse_connack),
    PacketType.PUBLISH: (None, _parse_publish),
    PacketType.PUBACK: (0, _parse_puback),
    PacketType.SUBACK: (0, _parse_suback),
    PacketType.UNSUBACK: (0, _parse_unsuback),
    PacketType.PINGRESP: (0, _parse_empty(PingResp())),
}


class PacketReader:
    """Incremental MQTT parser: ``feed()`` bytes as they arrive, take whole packets out.

    ``role="server"`` (the default) parses what clients send; ``role="client"`` parses what a
    server sends. A packet larger than ``max_packet_size`` is refused as soon as its length is
    known, without waiting for (or buffering) its body. After a ``ProtocolViolation`` the
    stream is out of sync: drop the connection and the reader.
    """

    __slots__ = ("_buffer", "_max_packet_size", "_parsers")

    def __init__(
        self,
        *,
        role: Literal["server", "client"] = "server",
        max_packet_size: int = MAX_PACKET_SIZE,
    ) -> None:
        self._buffer = bytearray()
        self._max_packet_size = max_packet_size
        self._parsers = _CLIENT_PARSERS if role == "server" else _SERVER_PARSERS

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a packet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    def __iter__(self) -> Iterator[Packet]:
        """Every whole packet currently buffered, in order (raises on the first bad one)."""
        while (packet := self.next_packet()) is not None:
            yield packet

    def next_packet(self) -> Packet | None:
        """The next whole packet, or ``None`` until more bytes arrive."""
        buffer = self._buffer
        if not buffer:
            return None
        first = buffer[0]
        packet_type, flags = first >> 4, first & 0x0F
        entry = self._parsers.get(packet_type)
        if entry is None:
            name = PacketType(packet_type).name if 1 <= packet_type <= 14 else "reserved"
            raise ProtocolViolation(f"unexpected packet type {packet_type} ({name})")
        required_flags, parse = entry
        if required_flags is not None and flags != required_flags:
            raise ProtocolViolation(f"bad fixed-header flags for {PacketType(packet_type).name}")
        # Remaining length: 1 to 4 bytes, 7 bits each, least significant first (§2.2.3).
        remaining = 0
        multiplier = 1
        index = 1
        while True:
            if index >= len(buffer):
                return None
            byte = buffer[index]
            remaining += (byte & 0x7F) * multiplier
            index += 1
            if not byte & 0x80:
                break
            if index == 5:
                raise ProtocolViolation("remaining length longer than 4 bytes")
            multiplier *= 128
        total = index + remaining
        if total > self._max_packet_size:
            raise ProtocolViolation(f"packet of {total} bytes exceeds {self._max_packet_size}")
        if len(buffer) < total:
            return None
        body = bytes(buffer[index:total])
        del buffer[:total]
        return parse(flags, body)
