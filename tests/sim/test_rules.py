"""The broker's rules: each violator is dropped while a compliant client keeps receiving.

Every test keeps an "observer" — a well-behaved client connected at the same time — and
checks after the violation that it still gets a full report on request.
"""

from __future__ import annotations

import asyncio
import json
import ssl

import pytest
from tests.conftest import SimFactory
from tests.sim.conftest import ClientPool
from tests.sim.support import RawClient, client_context, pushall

from bambu_lan.sim import SimulatedPrinter
from bambu_lan.sim import mqtt_wire as wire


async def assert_still_served(observer: RawClient) -> None:
    report = await observer.full_report()
    assert report["print"]["msg"] == 0


async def test_compliant_client_gets_connack_suback_and_full_report(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    client = await clients.session(sim)
    await sim.broker.wait_for_subscribers(1)
    report = await client.full_report()
    assert report["print"]["gcode_state"] == "IDLE"
    # Idle deltas keep coming without asking (msg 1).
    publish = await client.next_publish()
    assert publish.topic == f"device/{sim.serial}/report"
    assert publish.qos == 0
    assert not publish.retain


async def test_early_subscribe_in_the_same_write_as_connect_is_dropped(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    observer = await clients.session(sim)
    early = await clients.open(sim)
    await early.send(early.connect_packet(), early.subscribe_packet())  # one write, one segment
    # Closed without even a CONNACK: the SUBSCRIBE came while the printer was authenticating.
    assert await early.expect_closed() == []
    assert sim.broker.closes["early_packet"] == 1
    await assert_still_served(observer)


async def test_subscribe_before_connack_arrives_is_dropped(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    observer = await clients.session(sim)
    sim.delay_connack(0.5)
    early = await clients.open(sim)
    await early.send(early.connect_packet())
    await early.send(early.subscribe_packet())  # a separate write, still before CONNACK
    assert await early.expect_closed() == []
    await sim.broker.wait_for_close("early_packet")
    await assert_still_served(observer)


async def test_any_packet_before_connect_is_dropped(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    observer = await clients.session(sim)
    rude = await clients.open(sim)
    await rude.send(wire.encode_pingreq())
    assert await rude.expect_closed() == []
    assert sim.broker.closes["early_packet"] == 1
    await assert_still_served(observer)


@pytest.mark.parametrize("topic_filter", ["#", "device/+/report", "device/039SIM000000000/#"])
async def test_wildcard_subscription_is_dropped_on_an_a1(
    sim: SimulatedPrinter, clients: ClientPool, topic_filter: str
) -> None:
    observer = await clients.session(sim)
    wild = await clients.session(sim, subscribe=False)
    await wild.send(wild.subscribe_packet(topic_filter))
    assert await wild.expect_closed() == []  # no SUBACK, the socket just closes
    assert sim.broker.closes["wildcard_subscribe"] == 1
    await assert_still_served(observer)


@pytest.mark.parametrize(
    ("topic_filter", "reason"),
    [
        ("device/03919A3B1200123/report", "foreign_subscribe"),  # another printer's serial
        ("device/039sim000000000/report", "foreign_subscribe"),  # wrong case
        ("device/039SIM000000000/request", "request_subscribe"),
    ],
)
async def test_any_other_filter_is_dropped_on_an_a1(
    sim: SimulatedPrinter, clients: ClientPool, topic_filter: str, reason: str
) -> None:
    observer = await clients.session(sim)
    other = await clients.session(sim, subscribe=False)
    await other.send(other.subscribe_packet(sim.broker.report_topic, topic_filter))
    assert await other.expect_closed() == []
    assert sim.broker.closes[reason] == 1
    await assert_still_served(observer)


async def test_request_subscription_is_dropped_on_a_p1s_wildcards_are_not(
    sim_factory: SimFactory, clients: ClientPool
) -> None:
    p1s = await sim_factory("p1s")
    observer = await clients.session(p1s)
    # P1S: a wildcard and another serial's topic are accepted (SUBACK) ...
    lenient = await clients.session(p1s, subscribe=False)
    suback = await lenient.subscribe("device/+/report", "device/01PXXX/report")
    assert suback.return_codes == (0, 0)
    # ... but its own /request topic closes the connection (OpenBambuAPI #26).
    spy = await clients.session(p1s, subscribe=False)
    await spy.send(spy.subscribe_packet(p1s.broker.request_topic))
    assert await spy.expect_closed() == []
    assert p1s.broker.closes["request_subscribe"] == 1
    await assert_still_served(observer)
    # The wildcard subscriber receives reports through topic matching.
    assert (await lenient.next_publish()).topic == p1s.broker.report_topic


async def test_x1c_is_permissive_and_request_subscribers_see_commands(
    sim_factory: SimFactory, clients: ClientPool
) -> None:
    x1c = await sim_factory("x1c")
    observer = await clients.session(x1c)
    spy = await clients.session(x1c, subscribe=False)
    assert (await spy.subscribe("#")).return_codes == (0,)
    await observer.publish(pushall("42"))
    seen: set[str] = set()
    while len(seen) < 2:  # both the request and the report reach the '#' subscriber
        seen.add((await spy.next_publish()).topic)
    assert seen == {x1c.broker.request_topic, x1c.broker.report_topic}
    assert x1c.broker.closes == {}


async def test_publish_outside_request_topic_is_dropped(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    observer = await clients.session(sim)
    other = await clients.session(sim, subscribe=False)
    await other.publish(pushall(), topic="device/03919A3B1200123/request")  # wrong serial
    assert await other.expect_closed() == []
    assert sim.broker.closes["foreign_publish"] == 1
    await assert_still_served(observer)


async def test_wrong_access_code_gets_connack_5_then_close(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    observer = await clients.session(sim)
    wrong = await clients.open(sim)
    assert await wrong.connect(password="00000000") == wire.ConnAck(5)
    assert await wrong.expect_closed() == []
    wrong_user = await clients.open(sim)
    assert await wrong_user.connect(username="admin") == wire.ConnAck(5)
    assert await wrong_user.expect_closed() == []
    assert sim.broker.closes["bad_auth"] == 2
    await assert_still_served(observer)


async def test_tls13_only_client_fails_the_handshake(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    observer = await clients.session(sim)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await clients.open(sim, context=client_context(sim.ca_path, tls13_only=True))
    await sim.broker.wait_for_close("tls_handshake")  # the broker saw and counted it
    assert sim.broker.stats.connections == 1  # only the observer's handshake completed
    await assert_still_served(observer)


async def test_one_session_too_many_is_closed_after_connect_without_connack(
    sim_factory: SimFactory, clients: ClientPool
) -> None:
    sim = await sim_factory(max_sessions=3)
    observer = await clients.session(sim)
    for _ in range(2):
        await clients.session(sim)
    await sim.broker.wait_for_sessions(3)
    extra = await clients.open(sim)
    assert await extra.connect() is None  # closed, no CONNACK: paho's "code 7"
    assert sim.broker.closes["session_limit"] == 1
    await assert_still_served(observer)
    # A slot frees when a client leaves; then a newcomer is welcome again.
    await clients.clients[1].disconnect()
    await sim.broker.wait_for_sessions(2)
    await clients.session(sim)


async def test_default_session_limit_of_an_a1_is_four(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    assert sim.broker.rules.max_sessions == 4
    for _ in range(4):
        await clients.session(sim, subscribe=False)
    fifth = await clients.open(sim)
    assert await fifth.connect() is None
    assert sim.broker.closes["session_limit"] == 1


async def test_duplicate_client_id_kicks_the_older_session(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    first = await clients.session(sim, "same-id")
    second = await clients.session(sim, "same-id")
    await first.expect_closed()
    assert sim.broker.closes["kicked"] == 1
    assert sim.broker.session_count == 1
    await assert_still_served(second)


async def test_kick_at_the_session_limit_replaces_instead_of_refusing(
    sim_factory: SimFactory, clients: ClientPool
) -> None:
    sim = await sim_factory(max_sessions=1)
    first = await clients.session(sim, "dashboard")
    second = await clients.session(sim, "dashboard")  # same id: takes the only slot
    await first.expect_closed()
    assert sim.broker.closes == {"kicked": 1}
    await assert_still_served(second)


async def test_qos1_publish_gets_puback_and_qos2_is_a_protocol_error(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    observer = await clients.session(sim)
    client = await clients.session(sim, subscribe=False)
    await client.publish(pushall(), qos=1, packet_id=77)
    assert await client.packet() == wire.PubAck(77)
    await client.send(wire.encode_publish(sim.broker.request_topic, pushall(), qos=2, packet_id=78))
    assert await client.expect_closed() == []
    assert sim.broker.closes["malformed"] == 1
    await assert_still_served(observer)


async def test_ping_and_disconnect(sim: SimulatedPrinter, clients: ClientPool) -> None:
    client = await clients.session(sim, subscribe=False)
    await client.send(wire.encode_pingreq())
    assert await client.packet() == wire.PingResp()
    await client.send(wire.encode_disconnect())
    assert await client.expect_closed() == []
    await sim.broker.wait_for_close("disconnect")
    assert sim.broker.session_count == 0


async def test_unsubscribe_stops_reports(sim: SimulatedPrinter, clients: ClientPool) -> None:
    client = await clients.session(sim)
    await sim.broker.wait_for_subscribers(1)
    await client.send(wire.encode_unsubscribe(9, [sim.broker.report_topic]))
    assert await client.packet() == wire.UnsubAck(9)  # any report queued before it is gone
    assert sim.broker.subscriber_count == 0
    await client.publish(pushall())
    await client.send(wire.encode_pingreq())
    assert await client.packet() == wire.PingResp()  # and no report came before the pong


async def test_malformed_packet_closes_only_that_connection(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    observer = await clients.session(sim)
    bad = await clients.session(sim, subscribe=False)
    await bad.send(b"\x82\x05\x00\x01\x00\x01#")  # SUBSCRIBE, filter length says 1, no QoS
    assert await bad.expect_closed() == []
    assert sim.broker.closes["malformed"] == 1
    await assert_still_served(observer)


async def test_oversized_packet_is_refused_from_its_header(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    client = await clients.session(sim, subscribe=False)
    # A PUBLISH announcing 2 MiB: refused as soon as the length is read, nothing buffered.
    await client.send(b"\x30\x80\x80\x80\x01")
    assert await client.expect_closed() == []
    assert sim.broker.closes["malformed"] == 1


async def test_mqtt_31_client_gets_connack_1(sim: SimulatedPrinter, clients: ClientPool) -> None:
    old = await clients.open(sim)
    await old.send(
        wire.encode_connect(
            "old", username="bblp", password=sim.access_code, protocol_name="MQIsdp",
            protocol_level=3,
        )
    )  # fmt: skip
    assert await old.packet() == wire.ConnAck(1)
    assert await old.expect_closed() == []
    assert sim.broker.closes["bad_protocol"] == 1


async def test_empty_client_id_is_accepted_and_never_kicks(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    first = await clients.open(sim)
    assert await first.connect("") is not None  # "" -> connect_packet makes a random id
    a = await clients.open(sim)
    await a.send(wire.encode_connect("", username="bblp", password=sim.access_code))
    b = await clients.open(sim)
    await b.send(wire.encode_connect("", username="bblp", password=sim.access_code))
    assert await a.packet() == wire.ConnAck(0)
    assert await b.packet() == wire.ConnAck(0)
    await sim.broker.wait_for_sessions(3)
    assert "kicked" not in sim.broker.closes


async def test_silent_connection_is_closed_after_the_connect_timeout(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    sim.broker.rules.connect_timeout = 0.2
    idle = await clients.open(sim)
    assert await idle.expect_closed() == []
    assert sim.broker.closes["connect_timeout"] == 1


async def test_keepalive_is_not_enforced_by_default_but_can_be(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    assert sim.broker.rules.enforce_keepalive is False  # like real firmware
    sim.broker.rules.enforce_keepalive = True
    client = await clients.open(sim)
    await client.send(wire.encode_connect("ka", username="bblp", password=sim.access_code,
                                          keepalive=1))  # fmt: skip
    assert await client.packet() == wire.ConnAck(0)
    # Silent for 1.5 x 1 s: closed.
    assert await client.expect_closed(timeout=5) == []
    assert sim.broker.closes["keepalive_timeout"] == 1


async def test_lenient_early_packets_wait_for_connack(
    sim_factory: SimFactory, clients: ClientPool
) -> None:
    sim = await sim_factory()
    sim.broker.rules.drop_on_early_packet = False  # a mosquitto-like broker
    client = await clients.open(sim)
    await client.send(client.connect_packet(), client.subscribe_packet())
    assert await client.packet() == wire.ConnAck(0)
    assert isinstance(await client.packet(), wire.SubAck)


async def test_second_connect_on_a_session_is_dropped(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    client = await clients.session(sim, subscribe=False)
    await client.send(client.connect_packet())
    assert await client.expect_closed() == []
    assert sim.broker.closes["second_connect"] == 1


async def test_sessions_are_counted_and_awaitable(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    a = await clients.session(sim)
    await clients.session(sim, subscribe=False)
    await sim.broker.wait_for_sessions(2)
    assert sim.broker.subscriber_count == 1
    stats = sim.broker.stats
    assert stats.sessions == 2
    assert stats.connections == 2
    await a.close()  # no DISCONNECT
    await sim.broker.wait_for_close("client_closed")
    await sim.broker.wait_for_sessions(1)
    with pytest.raises(TimeoutError):
        await sim.broker.wait_for_sessions(5, timeout=0.05)
    with pytest.raises(ValueError):
        await sim.broker.wait_for_close("no_such_reason")
    # The event log names clients, never the access code.
    assert all(sim.access_code not in event for _, event in sim.broker.events)
    assert sim.access_code not in repr(sim) + repr(sim.broker)


async def test_requests_reach_the_model(sim: SimulatedPrinter, clients: ClientPool) -> None:
    client = await clients.session(sim)
    await client.publish(b'{"system":{"sequence_id":"5","command":"ledctrl","led_node":'
                         b'"chamber_light","led_mode":"off"}}')  # fmt: skip
    await sim.broker.wait_for_requests(1)
    assert ("system", "ledctrl") in sim.model.logged_commands()
    await asyncio.wait_for(sim.broker.wait_for_requests(1), 1)


async def test_full_report_on_subscribe_is_switchable(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    sim.broker.rules.push_full_on_subscribe = True  # what Studio-compatibility shims do
    client = await clients.session(sim)
    first = await client.next_publish()
    assert json.loads(first.payload)["print"]["msg"] == 0


async def test_x1c_delivers_any_publish_like_a_general_broker(
    sim_factory: SimFactory, clients: ClientPool
) -> None:
    x1c = await sim_factory("x1c")
    listener = await clients.session(x1c, subscribe=False)
    await listener.subscribe("lab/+/status")
    talker = await clients.session(x1c, subscribe=False)
    await talker.publish(b"hello", topic="lab/bench/status", qos=1)
    assert await talker.packet() == wire.PubAck(7)
    received = await listener.next_publish()
    assert (received.topic, received.payload) == ("lab/bench/status", b"hello")
