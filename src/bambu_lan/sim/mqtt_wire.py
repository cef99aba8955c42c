"""A hand-written MQTT 3.1.1 codec for the strict subset a Bambu printer's broker speaks.

Written by hand on purpose: the simulator must see every byte a client sends (a SUBSCRIBE that
arrives in the same TCP segment as CONNECT, a QoS 2 publish, a reserved flag) to enforce the
rules of a real printer, which a general-purpose broker library would hide or forgive.

What is here:

* packet types as frozen dataclasses (``Connect``, ``Subscribe``, ``Publish``, ...);
* ``PacketReader``: an incremental parser over a byte buffer. Feed it whatever the socket
  delivered and take whole packets out. It parses client packets (the broker's side) or, with
  ``role="client"``, server packets (used by probes and tests);
* encoders for every packet of the subset (``encode(packet)`` and one helper per type);
* ``topic_matches``: standard MQTT topic-filter matching.

Every malformed input raises ``ProtocolViolation``; nothing else escapes the parser.
Reference: MQTT Version 3.1.1, OASIS Standard (sections cited as "§x.y").
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "MAX_PACKET_SIZE",
    "ClientPacket",
    "ConnAck",
    "Connect",
    "ConnectReturnCode",
    "Disconnect",
    "Packet",
    "PacketReader",
    "PacketType",
    "PingReq",
    "PingResp",
    "ProtocolViolation",
    "PubAck",
    "Publish",
    "ServerPacket",
    "SubAck",
    "Subscribe",
    "UnsubAck",
    "Unsubscribe",
    "Will",
    "encode",
    "encode_connack",
    "encode_connect",
    "encode_disconnect",
    "encode_pingreq",
    "encode_pingresp",
    "encode_puback",
    "encode_publish",
    "encode_suback",
    "encode_subscribe",
    "encode_unsuback",
    "encode_unsubscribe",
    "is_wildcard",
    "topic_matches",
    "validate_topic_filter",
    "validate_topic_name",
]

#: Largest packet (fixed header included) the reader accepts. Real reports are ~10 KB and
#: requests far smaller; anything near a megabyte is an attack or a bug.
MAX_PACKET_SIZE: Final = 1 << 20

#: The largest value the 4-byte "remaining length" can carry (§2.2.3).
_MAX_REMAINING_LENGTH: Final = 268_435_455


class PacketType(enum.IntEnum):
    """Control packet types, the high nibble of the first byte (§2.2.1)."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14


class ConnectReturnCode(enum.IntEnum):
    """CONNACK return codes (§3.2.2.3)."""

    ACCEPTED = 0
    UNACCEPTABLE_PROTOCOL_VERSION = 1
    IDENTIFIER_REJECTED = 2
    SERVER_UNAVAILABLE = 3
    BAD_USERNAME_OR_PASSWORD = 4
    NOT_AUTHORIZED = 5


class ProtocolViolation(Exception):
    """The bytes are not a packet this codec accepts (malformed, or outside the subset).

    ``connack_code`` is set when MQTT wants the server to answer a bad CONNECT with a CONNACK
    refusal before closing (an unsupported protocol level → 1, an unacceptable client id → 2);
    otherwise the server just closes the connection.
    """

    def __init__(self, message: str, *, connack_code: int | None = None) -> None:
        super().__init__(message)
        self.connack_code = connack_code


# --------------------------------------------------------------------------------------------
# Packets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Will:
    """The last-will message of a CONNECT (Bambu printers ignore it; parsed for validation)."""

    topic: str
    message: bytes = field(repr=False)
    qos: int = 0
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Connect:
    """CONNECT (§3.1). The password never appears in ``repr``."""

    client_id: str
    username: str | None = None
    password: bytes | None = field(default=None, repr=False)
    keepalive: int = 60
    clean_session: bool = True
    will: Will | None = None
    protocol_name: str = "MQTT"
    protocol_level: int = 4


@dataclass(frozen=True, slots=True)
class ConnAck:
    """CONNACK (§3.2)."""

    return_code: int
    session_present: bool = False


@dataclass(frozen=True, slots=True)
class Publish:
    """PUBLISH (§3.3). ``packet_id`` is set exactly when ``qos`` > 0."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None


@dataclass(frozen=True, slots=True)
class PubAck:
    """PUBACK (§3.4)."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE (§3.8): ``topics`` is a sequence of (filter, requested QoS)."""

    packet_id: int
    topics: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SubAck:
    """SUBACK (§3.9): one return code per requested filter (0, 1, 2 or 0x80 = failure)."""

    packet_id: int
    return_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """UNSUBSCRIBE (§3.10)."""

    packet_id: int
    filters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnsubAck:
    """UNSUBACK (§3.11)."""

    packet_id: int


@dataclass(frozen=True, slots=True)
class PingReq:
    """PINGREQ (§3.12)."""


@dataclass(frozen=True, slots=True)
class PingResp:
    """PINGRESP (§3.13)."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """DISCONNECT (§3.14)."""


#: Packets a client sends (what the broker parses).
ClientPacket = Connect | Publish | PubAck | Subscribe | Unsubscribe | PingReq | Disconnect
#: Packets the server sends (what a client-side reader parses).
ServerPacket = ConnAck | Publish | PubAck | SubAck | UnsubAck | PingResp
Packet = ClientPacket | ServerPacket


# --------------------------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------------------------


def is_wildcard(topic_filter: str) -> bool:
    """Whether a topic filter contains a ``+`` or ``#`` wildcard."""
    return "+" in topic_filter or "#" in topic_filter


def validate_topic_name(topic: str) -> None:
    """Raise ``ProtocolViolation`` unless ``topic`` is a valid PUBLISH topic name (§4.7)."""
    if not topic:
        raise ProtocolViolation("empty topic name")
    if is_wildcard(topic):
        raise ProtocolViolation("wildcard in a topic name")


def validate_topic_filter(topic_filter: str) -> None:
    """Raise ``ProtocolViolation`` unless ``topic_filter`` is a valid filter (§4.7.1)."""
    if not topic_filter:
        raise ProtocolViolation("empty topic filter")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ProtocolViolation("'#' must be a whole, last level of a topic filter")
        if "+" in level and level != "+":
            raise ProtocolViolation("'+' must be a whole level of a topic filter")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Standard MQTT matching of a topic name against a (valid) filter (§4.7).

    Wildcards at the first level do not match topics starting with ``$`` (§4.7.2).
    """
    if topic_filter == topic:
        return True
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level not in ("+", topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


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


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _remaining_length(length: int) -> bytes:
    if not 0 <= length <= _MAX_REMAINING_LENGTH:
        raise ValueError(f"remaining length {length} out of range")
    out = bytearray()
    while True:
        byte = length % 128
        length //= 128
        if length:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _binary(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("field longer than 65535 bytes")
    return struct.pack("!H", len(data)) + data


def _string(text: str) -> bytes:
    return _binary(text.encode("utf-8"))


def _packet(packet_type: int, flags: int, body: bytes) -> bytes:
    return bytes([packet_type << 4 | flags]) + _remaining_length(len(body)) + body


def encode_connect(
    client_id: str,
    *,
    username: str | None = None,
    password: bytes | str | None = None,
    keepalive: int = 60,
    clean_session: bool = True,
    will: Will | None = None,
    protocol_name: str = "MQTT",
    protocol_level: int = 4,
) -> bytes:
    """CONNECT, as a client sends it."""
    if isinstance(password, str):
        password = password.encode("utf-8")
    flags = 0x02 if clean_session else 0
    payload = _string(client_id)
    if will is not None:
        flags |= 0x04 | will.qos << 3 | (0x20 if will.retain else 0)
        payload += _string(will.topic) + _binary(will.message)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
    if password is not None:
        flags |= 0x40
        payload += _binary(password)
    header = _string(protocol_name) + bytes([protocol_level, flags]) + struct.pack("!H", keepalive)
    return _packet(PacketType.CONNECT, 0, header + payload)


def encode_connack(return_code: int, *, session_present: bool = False) -> bytes:
    """CONNACK."""
    return _packet(PacketType.CONNACK, 0, bytes([int(session_present), return_code]))


def encode_publish(
    topic: str,
    payload: bytes,
    *,
    qos: int = 0,
    packet_id: int | None = None,
    retain: bool = False,
    dup: bool = False,
) -> bytes:
    """PUBLISH. QoS 1 and 2 need a non-zero ``packet_id``."""
    flags = (0x08 if dup else 0) | qos << 1 | (0x01 if retain else 0)
    body = _string(topic)
    if qos:
        if not packet_id:
            raise ValueError("a QoS 1/2 PUBLISH needs a packet id")
        body += struct.pack("!H", packet_id)
    return _packet(PacketType.PUBLISH, flags, body + payload)


def encode_puback(packet_id: int) -> bytes:
    """PUBACK."""
    return _packet(PacketType.PUBACK, 0, struct.pack("!H", packet_id))


def encode_subscribe(packet_id: int, topics: Sequence[tuple[str, int]]) -> bytes:
    """SUBSCRIBE for (filter, requested QoS) pairs."""
    body = struct.pack("!H", packet_id) + b"".join(
        _string(topic_filter) + bytes([qos]) for topic_filter, qos in topics
    )
    return _packet(PacketType.SUBSCRIBE, 0b0010, body)


def encode_suback(packet_id: int, return_codes: Sequence[int]) -> bytes:
    """SUBACK."""
    return _packet(PacketType.SUBACK, 0, struct.pack("!H", packet_id) + bytes(return_codes))


def encode_unsubscribe(packet_id: int, filters: Sequence[str]) -> bytes:
    """UNSUBSCRIBE."""
    body = struct.pack("!H", packet_id) + b"".join(_string(f) for f in filters)
    return _packet(PacketType.UNSUBSCRIBE, 0b0010, body)


def encode_unsuback(packet_id: int) -> bytes:
    """UNSUBACK."""
    return _packet(PacketType.UNSUBACK, 0, struct.pack("!H", packet_id))


_PINGREQ: Final = _packet(PacketType.PINGREQ, 0, b"")
_PINGRESP: Final = _packet(PacketType.PINGRESP, 0, b"")
_DISCONNECT: Final = _packet(PacketType.DISCONNECT, 0, b"")


def encode_pingreq() -> bytes:
    """PINGREQ."""
    return _PINGREQ


def encode_pingresp() -> bytes:
    """PINGRESP."""
    return _PINGRESP


def encode_disconnect() -> bytes:
    """DISCONNECT."""
    return _DISCONNECT


def encode(packet: Packet) -> bytes:
    """The wire bytes of any packet of the subset."""
    match packet:
        case Connect():
            return encode_connect(
                packet.client_id,
                username=packet.username,
                password=packet.password,
                keepalive=packet.keepalive,
                clean_session=packet.clean_session,
                will=packet.will,
                protocol_name=packet.protocol_name,
                protocol_level=packet.protocol_level,
            )
        case ConnAck():
            return encode_connack(packet.return_code, session_present=packet.session_present)
        case Publish():
            return encode_publish(
                packet.topic,
                packet.payload,
                qos=packet.qos,
                packet_id=packet.packet_id,
                retain=packet.retain,
                dup=packet.dup,
            )
        case PubAck():
            return encode_puback(packet.packet_id)
        case Subscribe():
            return encode_subscribe(packet.packet_id, packet.topics)
        case SubAck():
            return encode_suback(packet.packet_id, packet.return_codes)
        case Unsubscribe():
            return encode_unsubscribe(packet.packet_id, packet.filters)
        case UnsubAck():
            return encode_unsuback(packet.packet_id)
        case PingReq():
            return _PINGREQ
        case PingResp():
            return _PINGRESP
        case Disconnect():
            return _DISCONNECT
