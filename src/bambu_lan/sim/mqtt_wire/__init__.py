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
The package has one module a job: ``packets`` (types, constants, topics), ``reader``
(parsing) and ``encoder`` (encoding); every name is importable from ``mqtt_wire`` itself.
Reference: MQTT Version 3.1.1, OASIS Standard (sections cited as "§x.y").
"""

from __future__ import annotations

from bambu_lan.sim.mqtt_wire.encoder import (
    encode,
    encode_connack,
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_pingresp,
    encode_puback,
    encode_publish,
    encode_suback,
    encode_subscribe,
    encode_unsuback,
    encode_unsubscribe,
)
from bambu_lan.sim.mqtt_wire.packets import (
    MAX_PACKET_SIZE,
    ClientPacket,
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
    ServerPacket,
    SubAck,
    Subscribe,
    UnsubAck,
    Unsubscribe,
    Will,
    is_wildcard,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)
from bambu_lan.sim.mqtt_wire.reader import PacketReader

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
