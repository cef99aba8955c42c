"""Many printers in one Farm, and the blocking facade."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.conftest import SimFactory

from bambu_lan import (
    AuthError,
    EventKind,
    Farm,
    Printer,
    PrinterConfig,
    PrinterOptions,
    Secret,
    SyncPrinter,
)
from bambu_lan.printer import merge_updates
from bambu_lan.session import SessionOptions
from bambu_lan.sim import SimFleet, SimThread, SimulatedPrinter
from bambu_lan.trust import TrustConfig


async def test_farm_of_100_printers_reaches_full_state(sim_cert_dir: Path) -> None:
    async with SimFleet(
        100, "a1", host_mode="address", port=0, cert_dir=sim_cert_dir, time_scale=5, seed=3
    ) as fleet:
        configs = [
            PrinterConfig(
                host=p.host,
                serial=p.serial,
                access_code=Secret(p.access_code),
                port=p.port,
                trust=TrustConfig(ca_file=p.ca_path),
            )
            for p in fleet.printers
        ]
        assert len({c.host for c in configs}) == 100  # one loopback address each
        async with Farm(configs, PrinterOptions()) as farm:
            states = await farm.wait_for_states(timeout=60)
            assert len(states) == 100
            assert {s.serial for s in states.values()} == {p.serial for p in fleet.printers}
            assert all(s.complete for s in states.values())
            # One session per printer.
            assert all(p.broker.session_count == 1 for p in fleet.printers)
            # Events from several printers arrive on one stream.
            fleet.printers[0].model.start_print(layers=2, name="a")
            fleet.printers[99].model.start_print(layers=2, name="b")
            started: set[str] = set()
            async for event in farm.events():
                if event.kind is EventKind.JOB_STARTED:
                    started.add(event.serial)
                if len(started) == 2:
                    break
            assert started == {fleet.printers[0].serial, fleet.printers[99].serial}


def test_sync_printer_state_events_and_commands(sim_cert_dir: Path) -> None:
    simulated = SimulatedPrinter("a1", cert_dir=sim_cert_dir, time_scale=50, seed=2)
    runner = SimThread(simulated)
    with runner:
        sim = simulated
        with SyncPrinter(
            sim.host, sim.serial, sim.access_code, port=sim.port, ca_file=sim.ca_path
        ) as printer:
            state = printer.wait_for_state(timeout=10)
            assert state.complete and state.serial == sim.serial
            result = printer.set_light(True)
            assert result.confirmed
            assert printer.state is not None and printer.state.lights["chamber_light"] == "on"
            events = printer.events(timeout=20)
            runner.call(lambda: sim.model.start_print(layers=3, name="sync"))
            kinds = []
            for event in events:
                kinds.append(event.kind)
                if event.kind is EventKind.JOB_FINISHED:
                    break
            assert EventKind.JOB_STARTED in kinds
            assert kinds[-1] is EventKind.JOB_FINISHED
        # Closed cleanly: the simulator saw a DISCONNECT.
        assert runner.call(lambda: sim.broker.closes.get("disconnect", 0)) >= 1


async def test_farm_events_outlive_a_printer_that_gives_up_and_end_at_close(
    sim_factory: SimFactory,
) -> None:
    # The farm's one merged stream ends only when every printer has ended: one printer
    # refusing our code (its session gives up) must not end the others' events.
    good = await sim_factory(host="127.0.0.1", port=0)
    refusing = await sim_factory(
        host="127.0.0.1", port=0, access_code="87654321", serial="039SIM000000002"
    )
    fast = SessionOptions(
        connect_timeout=3, connack_timeout=3, auth_retry_delay=0.05, max_auth_failures=1
    )
    configs = [
        PrinterConfig(
            host=sim.host,
            serial=sim.serial,
            access_code=Secret(good.access_code),
            port=sim.port,
            trust=TrustConfig(ca_file=sim.ca_path),
        )
        for sim in (good, refusing)
    ]
    farm = Farm(configs, PrinterOptions(session=fast))
    async with farm:
        events = farm.events()
        with pytest.raises(AuthError):
            await farm[refusing.serial].wait_for_state(20)  # gave up: its stream has ended
        await farm[good.serial].wait_for_state(20)
        good.model.start_print(layers=2, name="after")
        started = None
        async with asyncio.timeout(20):
            async for event in events:
                if event.kind is EventKind.JOB_STARTED:
                    started = event
                    break
        assert started is not None and started.serial == good.serial
        closing = asyncio.get_running_loop().create_task(farm.close())
        async with asyncio.timeout(20):
            rest = [event async for event in events]  # ends: the farm closed
        await closing
    assert all(event.serial == good.serial for event in rest)


async def test_updates_asked_for_after_a_printer_gave_up_end_at_once(
    sim_factory: SimFactory,
) -> None:
    # A stream made after the connection has ended (gave up) used to wait forever.
    refusing = await sim_factory(host="127.0.0.1", port=0, access_code="87654321")
    fast = SessionOptions(
        connect_timeout=3, connack_timeout=3, auth_retry_delay=0.05, max_auth_failures=1
    )
    cfg = PrinterConfig(
        host=refusing.host,
        serial=refusing.serial,
        access_code=Secret("12345678"),
        port=refusing.port,
        trust=TrustConfig(ca_file=refusing.ca_path),
    )
    printer = Printer.from_config(cfg, PrinterOptions(session=fast))
    printer.start()
    try:
        with pytest.raises(AuthError):
            await printer.wait_for_state(20)
        async with asyncio.timeout(10):
            assert [u async for u in printer.updates(states=False)] == []
            assert [u async for u in merge_updates([printer], 8)] == []
            assert [u async for u in merge_updates([], 8)] == []
    finally:
        await printer.close()
