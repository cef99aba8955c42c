"""Encoders for every packet of the subset: ``encode(packet)`` and one helper per type."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from bambu_lan.sim.mqtt_wire.packets import (
    MAX_REMAINING_LENGTH,
    ConnAck,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    PingReq,
    PingResp,
    PubAck,
    Publish,
    SubAck,
    Subscribe,
    UnsubAck,
    Unsubscribe,
    Will,
)

# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _remaining_length(length: int) -> bytes:
    if not 0 <= length <= MAX_REMAINING_LENGTH:
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
