"""Faults on demand: dropped sockets, silence, garbage, slow or refused CONNACKs, no PUBACK."""

from __future__ import annotations

import json
import math

import pytest
from tests.sim.conftest import ClientPool
from tests.sim.support import RawClient, is_full_report, pushall, pushing_start

from bambu_lan.sim import SimulatedPrinter
from bambu_lan.sim import mqtt_wire as wire
from bambu_lan.sim.broker import GARBAGE_KINDS, GarbageKind


async def publishes_until_pong(client: RawClient) -> list[wire.Publish]:
    """Ping and collect the PUBLISHes that arrive before the PINGRESP.

    The broker handles one connection's packets in order and the printer answers a request
    at once, so whatever a request triggered is written before the PINGRESP that follows it.
    """
    await client.send(wire.encode_pingreq())
    seen: list[wire.Publish] = []
    while True:
        packet = await client.packet()
        assert packet is not None, "closed while waiting for PINGRESP"
        if isinstance(packet, wire.PingResp):
            return seen
        if isinstance(packet, wire.Publish):
            seen.append(packet)


async def test_drop_connections_resets_everyone_then_clients_can_return(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    a = await clients.session(sim)
    b = await clients.session(sim)
    await sim.broker.wait_for_sessions(2)
    assert sim.drop_connections() == 2
    await a.expect_closed()
    await b.expect_closed()
    assert sim.broker.closes["dropped"] == 2
    await sim.broker.wait_for_sessions(0)
    again = await clients.session(sim)
    assert (await again.full_report())["print"]["msg"] == 0


async def test_go_silent_until_pushing_start(sim: SimulatedPrinter, clients: ClientPool) -> None:
    client = await clients.session(sim)
    sim.go_silent("start")
    assert sim.broker.silenced_sessions == 1
    await publishes_until_pong(client)  # drain what was written before the silence
    await client.publish(pushall())
    assert await publishes_until_pong(client) == []  # socket open, pings answered, no data
    await client.publish(pushing_start())  # what a watchdog sends
    await sim.broker.wait_for(lambda: sim.broker.silenced_sessions == 0)
    assert (await client.full_report())["print"]["msg"] == 0


async def test_go_silent_until_reconnect(sim: SimulatedPrinter, clients: ClientPool) -> None:
    stuck = await clients.session(sim)
    sim.go_silent("reconnect")
    await publishes_until_pong(stuck)
    await stuck.publish(pushing_start())
    await stuck.publish(pushall())
    assert await publishes_until_pong(stuck) == []  # pushing.start does not help here
    assert sim.broker.silenced_sessions == 1
    assert ("pushing", "start") in sim.model.logged_commands()
    fresh = await clients.session(sim)  # only a new session receives
    assert (await fresh.full_report())["print"]["msg"] == 0
    with pytest.raises(ValueError):
        sim.go_silent("never")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", GARBAGE_KINDS)
async def test_send_garbage_reaches_subscribers(
    sim: SimulatedPrinter, clients: ClientPool, kind: GarbageKind
) -> None:
    client = await clients.session(sim)
    await sim.broker.wait_for_subscribers(1)
    payload = sim.send_garbage(kind)
    while (await client.next_publish()).payload != payload:
        pass  # regular reports may come first
    checks = {
        "random": lambda: 16 <= len(payload) <= 256,
        "non_utf8": lambda: _fails(lambda: payload.decode("utf-8")),
        "truncated_json": lambda: _fails(lambda: json.loads(payload)),
        "trailing_nul": lambda: (
            payload.endswith(b"\x00") and is_full_report(payload.rstrip(b"\x00"))
        ),
        "not_json": lambda: _fails(lambda: json.loads(payload)),
    }
    assert checks[kind]()
    # The connection survives: garbage is the client's problem, not the broker's.
    assert (await client.full_report())["print"]["msg"] == 0


def _fails(fn: object) -> bool:
    try:
        fn()  # type: ignore[operator]
    except ValueError:
        return True
    return False


async def test_unknown_garbage_kind(sim: SimulatedPrinter) -> None:
    with pytest.raises(ValueError, match="known"):
        sim.send_garbage("lorem")  # type: ignore[arg-type]


async def test_delay_connack(sim: SimulatedPrinter, clients: ClientPool) -> None:
    sim.delay_connack(0.4)
    client = await clients.open(sim)
    started = sim.broker.loop.time()
    assert await client.connect() == wire.ConnAck(0)
    assert sim.broker.loop.time() - started >= 0.4
    sim.delay_connack(None)
    assert sim.broker.connack_delay == pytest.approx(0.1)
    with pytest.raises(ValueError):
        sim.delay_connack(-1)


async def test_connack_that_never_comes(sim: SimulatedPrinter, clients: ClientPool) -> None:
    sim.delay_connack(math.inf)
    client = await clients.open(sim)
    await client.send(client.connect_packet())
    with pytest.raises(TimeoutError):
        await client.packet(timeout=0.3)
    # Other packets are still "early" and close the connection.
    await client.send(wire.encode_pingreq())
    assert await client.expect_closed() == []
    assert sim.broker.closes["early_packet"] == 1


async def test_boot_window_refuses_with_connack_3(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    before = await clients.session(sim)
    sim.boot_window(60)
    booting = await clients.open(sim)  # TLS works ...
    assert await booting.connect() == wire.ConnAck(3)  # ... MQTT says "server unavailable"
    assert await booting.expect_closed() == []
    assert sim.broker.closes["boot_window"] == 1
    assert (await before.full_report())["print"]["msg"] == 0  # sessions open before stay
    sim.boot_window(0)
    await clients.session(sim)


async def test_reboot_drops_everyone_and_opens_a_boot_window(
    sim: SimulatedPrinter, clients: ClientPool
) -> None:
    client = await clients.session(sim)
    assert sim.reboot(boot_seconds=60) == 1
    await client.expect_closed()
    retry = await clients.open(sim)
    assert await retry.connect() == wire.ConnAck(3)


async def test_omit_puback(sim: SimulatedPrinter, clients: ClientPool) -> None:
    client = await clients.session(sim, subscribe=False)
    sim.omit_puback()
    await client.publish(pushall(), qos=1, packet_id=5)
    await client.send(wire.encode_pingreq())
    assert await client.packet() == wire.PingResp()  # no PUBACK before it
    await sim.broker.wait_for_requests(1)  # the request itself was still handled
    sim.omit_puback(False)
    await client.publish(pushall(), qos=1, packet_id=6)
    assert await client.packet() == wire.PubAck(6)


async def test_slow_consumer_is_dropped(sim: SimulatedPrinter, clients: ClientPool) -> None:
    sim.broker.rules.max_write_buffer = 64 * 1024
    lazy = await clients.session(sim)  # and then never reads
    await sim.broker.wait_for_subscribers(1)
    big = b"x" * (512 * 1024)
    for _ in range(64):  # far more than the socket buffers hold
        sim.broker.publish_report(big)
        if sim.broker.closes.get("slow_consumer"):
            break
    assert sim.broker.closes["slow_consumer"] == 1
    await lazy.close()
