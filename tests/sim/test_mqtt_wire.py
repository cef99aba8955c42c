"""The hand-written MQTT 3.1.1 codec: round trips, incremental parsing, strict refusals."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bambu_lan.sim import mqtt_wire as wire

# ---- strategies ---------------------------------------------------------------------------

_level = st.text(st.characters(codec="utf-8", exclude_characters="/+#\x00"), max_size=8)
topic_names = st.lists(_level, min_size=1, max_size=4).map("/".join).filter(bool)
topic_filters = st.one_of(
    topic_names,
    st.lists(st.one_of(_level, st.just("+")), min_size=1, max_size=4).map("/".join).filter(bool),
    st.lists(_level, max_size=3).map(lambda levels: "/".join([*levels, "#"])),
)
packet_ids = st.integers(1, 65535)
utf8 = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))

connects = st.builds(
    wire.Connect,
    client_id=utf8.filter(bool),
    username=st.none() | utf8,
    password=st.none() | st.binary(max_size=32),
    keepalive=st.integers(0, 65535),
    clean_session=st.booleans(),
    will=st.none()
    | st.builds(wire.Will, topic_names, st.binary(max_size=16), st.integers(0, 2), st.booleans()),
).filter(lambda c: c.password is None or c.username is not None)
publishes = st.one_of(
    st.builds(wire.Publish, topic_names, st.binary(max_size=300), st.just(0), st.booleans()),
    st.builds(
        wire.Publish,
        topic_names,
        st.binary(max_size=300),
        st.just(1),
        st.booleans(),
        st.booleans(),
        packet_ids,
    ),
)
client_packets = st.one_of(
    connects,
    publishes,
    st.builds(wire.PubAck, packet_ids),
    st.builds(
        wire.Subscribe,
        packet_ids,
        st.lists(st.tuples(topic_filters, st.integers(0, 2)), min_size=1, max_size=3).map(tuple),
    ),
    st.builds(
        wire.Unsubscribe, packet_ids, st.lists(topic_filters, min_size=1, max_size=3).map(tuple)
    ),
    st.just(wire.PingReq()),
    st.just(wire.Disconnect()),
)
server_packets = st.one_of(
    st.builds(wire.ConnAck, st.integers(0, 5), st.booleans()),
    publishes,
    st.builds(wire.PubAck, packet_ids),
    st.builds(
        wire.SubAck, packet_ids, st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1).map(tuple)
    ),
    st.builds(wire.UnsubAck, packet_ids),
    st.just(wire.PingResp()),
)


def parse_all(data: bytes, *, role: str = "server", chunk: int | None = None) -> list[object]:
    reader = wire.PacketReader(role=role)  # type: ignore[arg-type]
    out: list[object] = []
    step = chunk or len(data) or 1
    for start in range(0, len(data), step):
        reader.feed(data[start : start + step])
        out.extend(reader)
    assert reader.buffered == 0
    return out


# ---- properties ---------------------------------------------------------------------------


@given(st.lists(client_packets, min_size=1, max_size=5), st.integers(1, 64))
def test_client_packets_round_trip_in_any_chunking(packets: list[wire.Packet], chunk: int) -> None:
    data = b"".join(wire.encode(p) for p in packets)
    assert parse_all(data, chunk=chunk) == packets


@given(st.lists(server_packets, min_size=1, max_size=5), st.integers(1, 64))
def test_server_packets_round_trip_in_any_chunking(packets: list[wire.Packet], chunk: int) -> None:
    data = b"".join(wire.encode(p) for p in packets)
    assert parse_all(data, role="client", chunk=chunk) == packets


@settings(max_examples=500)
@given(st.binary(max_size=200), st.integers(1, 32))
def test_random_bytes_give_packets_or_protocol_violation_only(data: bytes, chunk: int) -> None:
    reader = wire.PacketReader(max_packet_size=4096)
    try:
        for start in range(0, len(data), chunk):
            reader.feed(data[start : start + chunk])
            for _ in reader:
                pass
    except wire.ProtocolViolation:
        pass


@given(topic_names)
def test_a_topic_matches_itself_and_hash(topic: str) -> None:
    assert wire.topic_matches(topic, topic)
    assert wire.topic_matches("#", topic) == (not topic.startswith("$"))


# ---- examples -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("device/+/report", "device/039/report", True),
        ("device/+/report", "device/039/request", False),
        ("device/#", "device", True),
        ("device/#", "device/039/report", True),
        ("+/+", "a/b", True),
        ("+", "a/b", False),
        ("#", "$SYS/x", False),
        ("+/x", "$SYS/x", False),
        ("$SYS/#", "$SYS/x", True),
        ("a/b", "a/b/c", False),
    ],
)
def test_topic_matching(topic_filter: str, topic: str, expected: bool) -> None:
    assert wire.topic_matches(topic_filter, topic) is expected


CONNECT = wire.encode_connect("id", username="bblp", password="12345678")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "unexpected packet type"),  # reserved type 0
        (b"\xf0\x00", "unexpected packet type"),  # reserved type 15
        (b"\x20\x02\x00\x00", "unexpected packet type 2"),  # CONNACK from a client
        (b"\x50\x02\x00\x01", "PUBREC"),  # QoS 2 flow
        (b"\x80\x06\x00\x01\x00\x01a\x00", "flags"),  # SUBSCRIBE without 0b0010
        (b"\xc1\x00", "flags"),  # PINGREQ with a flag
        (b"\xc0\x01\x00", "with a body"),
        (b"\x30\xff\xff\xff\xff\x01", "longer than 4 bytes"),
        (b"\x34\x05\x00\x01a\x00\x01", "QoS 2"),
        (b"\x36\x05\x00\x01a\x00\x01", "QoS 3"),
        (b"\x38\x03\x00\x01a", "DUP"),
        (b"\x30\x03\x00\x01#", "wildcard"),
        (b"\x30\x02\x00\x00", "empty topic"),
        (b"\x32\x05\x00\x01a\x00\x00", "identifier 0"),
        (b"\x30\x03\x00\x02a", "shorter"),
        (b"\x30\x04\x00\x02\xff\xfe", "UTF-8"),
        (b"\x30\x03\x00\x01\x00", "U+0000"),
        (b"\x82\x02\x00\x01", "without a topic filter"),
        (b"\x82\x06\x00\x01\x00\x01a\x03", "QoS byte"),
        (b"\x82\x08\x00\x01\x00\x03a#b\x00", "'#'"),
        (b"\x82\x08\x00\x01\x00\x03a+b\x00", "'+'"),
        (b"\xa2\x02\x00\x01", "UNSUBSCRIBE without"),
        (b"\x40\x03\x00\x01\x00", "left over"),
        (CONNECT[:2] + b"\x00\x04MQTX" + CONNECT[8:], "protocol name"),
        (CONNECT[:9] + bytes([CONNECT[9] | 1]) + CONNECT[10:], "reserved CONNECT flag"),
        (CONNECT[:9] + bytes([CONNECT[9] | 0x08]) + CONNECT[10:], "will QoS/retain"),
        (CONNECT[:9] + bytes([0x42]) + CONNECT[10:], "password without user"),
        (CONNECT + b"", None),  # the valid original parses
        (CONNECT[:1] + bytes([CONNECT[1] + 1]) + CONNECT[2:] + b"!", "left over"),
    ],
)
def test_malformed_packets_are_refused(data: bytes, message: str | None) -> None:
    reader = wire.PacketReader()
    reader.feed(data)
    if message is None:
        assert isinstance(reader.next_packet(), wire.Connect)
        return
    with pytest.raises(wire.ProtocolViolation, match=re.escape(message)):
        reader.next_packet()


def test_connect_refusals_carry_a_connack_code() -> None:
    reader = wire.PacketReader()
    reader.feed(wire.encode_connect("x", protocol_name="MQTT", protocol_level=5))
    with pytest.raises(wire.ProtocolViolation) as caught:
        reader.next_packet()
    assert caught.value.connack_code == 1
    reader = wire.PacketReader()
    reader.feed(wire.encode_connect("", clean_session=False))
    with pytest.raises(wire.ProtocolViolation) as caught:
        reader.next_packet()
    assert caught.value.connack_code == 2


def test_oversized_packet_is_refused_before_its_body_arrives() -> None:
    reader = wire.PacketReader(max_packet_size=1000)
    reader.feed(b"\x30\xe8\x07")  # remaining length 1000, only the header so far
    with pytest.raises(wire.ProtocolViolation, match="exceeds"):
        reader.next_packet()
    default = wire.PacketReader()
    default.feed(b"\x30\x80\x80\x40")  # 1 MiB body + header > 1 MiB
    with pytest.raises(wire.ProtocolViolation, match="exceeds"):
        default.next_packet()


def test_incomplete_input_waits_for_more() -> None:
    reader = wire.PacketReader()
    for byte in CONNECT[:-1]:
        reader.feed(bytes([byte]))
        assert reader.next_packet() is None
    reader.feed(CONNECT[-1:])
    packet = reader.next_packet()
    assert isinstance(packet, wire.Connect)
    assert packet.password == b"12345678"
    assert "12345678" not in repr(packet)  # passwords stay out of reprs and logs


def test_encoder_guards() -> None:
    with pytest.raises(ValueError, match="packet id"):
        wire.encode_publish("t", b"", qos=1)
    with pytest.raises(ValueError, match="65535"):
        wire.encode_connect("x" * 70000)
    assert wire.encode_pingresp() == b"\xd0\x00"
    assert wire.encode_connack(5) == b"\x20\x02\x00\x05"
    assert wire.encode_suback(1, [0]) == b"\x90\x03\x00\x01\x00"
