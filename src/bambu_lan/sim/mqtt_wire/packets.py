"""The MQTT 3.1.1 packets of the subset a Bambu printer's broker speaks, as frozen
dataclasses; the protocol's constants; topic names, filters and matching."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

#: Largest packet (fixed header included) the reader accepts. Real reports are ~10 KB and
#: requests far smaller; anything near a megabyte is an attack or a bug.
MAX_PACKET_SIZE: Final = 1 << 20

#: The largest value the 4-byte "remaining length" can carry (§2.2.3).
MAX_REMAINING_LENGTH: Final = 268_435_455


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
