"""Passing trouble is waited out, and no event is lost or doubled (issue 9's "done when").

Against the simulator over real sockets: a printer starting up (CONNACK 3) or at its session
limit (closed before CONNACK) is retried until it frees up, for ``Printer``, ``SyncPrinter``
and ``Farm``; the update stream tells why; a job that ends and another that starts while we
are away, and a job or alert already there at connect, are each announced once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bambu_lan import (
    AuthError,
    ConnectTimeout,
    Event,
    EventKind,
    Farm,
    PrinterConfig,
    PrinterState,
    Secret,
    SyncPrinter,
    TrustConfig,
    UpdateStream,
)
from bambu_lan.sim import SimThread, SimulatedPrinter

from .test_client_sim import FAST, client_for

K = EventKind
SESSION_LIMIT = "session limit"
STARTING_UP = "starting up"


async def next_event(
    stream: UpdateStream, match: Callable[[Event], bool], timeout: float = 15
) -> Event:
    """The next event on ``stream`` that ``match``es (states and other events skipped)."""
    async with asyncio.timeout(timeout):
        async for update in stream:
            if isinstance(update, Event) and match(update):
                return update
    raise AssertionError("the stream ended")


def kind(*kinds: EventKind) -> Callable[[Event], bool]:
    return lambda event: event.kind in kinds


def events_of(updates: list[Any]) -> list[Event]:
    return [u for u in updates if isinstance(u, Event)]


@pytest.mark.parametrize("trouble", ["boot_window", "session_limit"])
async def test_printer_waits_until_the_printer_frees_up(
    sim: SimulatedPrinter, trouble: str
) -> None:
    if trouble == "boot_window":
        sim.boot_window(1.0)
    else:
        sim.broker.rules.max_sessions = 0  # the sessions are all taken
    printer = client_for(sim)
    updates = printer.updates()  # before the first attempt: the stream tells the whole story
    connecting = asyncio.get_running_loop().create_task(printer.connect(timeout=30))
    try:
        retry = await next_event(updates, kind(K.RETRYING, K.CONNECTED))
        assert retry.kind is K.RETRYING
        assert (STARTING_UP if trouble == "boot_window" else SESSION_LIMIT) in retry.message
        assert retry.message.endswith(" s") or retry.message.endswith("retrying")
        assert not connecting.done()
        sim.broker.rules.max_sessions = 4  # (a boot window ends by itself)
        await connecting
        state = await printer.wait_for_state(timeout=10)
        assert state.complete
        await next_event(updates, kind(K.CONNECTED))
    finally:
        connecting.cancel()
        await printer.close()


async def test_connect_gives_up_at_the_callers_deadline_naming_the_cause(
    sim: SimulatedPrinter,
) -> None:
    sim.broker.rules.max_sessions = 0
    printer = client_for(sim)
    with pytest.raises(ConnectTimeout) as caught:
        await printer.connect(timeout=1.0)
    assert isinstance(caught.value, TimeoutError)
    assert "closed the connection before answering CONNECT" in str(caught.value)
    assert caught.value.hint  # what to do about a full printer


async def test_a_wrong_access_code_fails_at_once_even_with_a_long_deadline(
    sim: SimulatedPrinter,
) -> None:
    printer = client_for(sim, access_code="00000000")
    async with asyncio.timeout(5):
        with pytest.raises(AuthError):
            await printer.connect(timeout=60)


async def test_farm_gets_every_state_once_the_printers_free_up(
    sim_factory: Any, sim_cert_dir: Path
) -> None:
    booting = await sim_factory(serial="039SIM000000101")
    full = await sim_factory(serial="039SIM000000102")
    fine = await sim_factory(serial="039SIM000000103")
    booting.boot_window(1.0)
    full.broker.rules.max_sessions = 0
    configs = [
        PrinterConfig(
            host=s.host,
            serial=s.serial,
            access_code=Secret(s.access_code),
            port=s.port,
            trust=TrustConfig(ca_file=s.ca_path),
        )
        for s in (booting, full, fine)
    ]
    from bambu_lan import PrinterOptions

    async with Farm(configs, PrinterOptions(session=FAST)) as farm:
        async with asyncio.timeout(15):
            async for event in farm.events():
                if event.kind is K.RETRYING and event.serial == full.serial:
                    assert SESSION_LIMIT in event.message
                    break
        full.broker.rules.max_sessions = 4
        states = await farm.wait_for_states(timeout=20)
    assert {serial: state.complete for serial, state in states.items()} == {
        booting.serial: True,
        full.serial: True,
        fine.serial: True,
    }


@pytest.mark.parametrize("trouble", ["boot_window", "session_limit"])
def test_sync_printer_waits_until_the_printer_frees_up(
    sim_thread: SimThread[SimulatedPrinter], trouble: str
) -> None:
    sim = sim_thread.target
    if trouble == "boot_window":
        sim_thread.call(lambda: sim.boot_window(1.0))
    else:
        sim_thread.call(lambda: setattr(sim.broker.rules, "max_sessions", 0))
    printer = SyncPrinter(
        sim.host,
        sim.serial,
        sim.access_code,
        port=sim.port,
        ca_file=sim.ca_path,
        options=client_for(sim).options,
    )
    updates = printer.updates(timeout=15)
    printer.start()
    try:
        for update in updates:
            if isinstance(update, Event) and update.kind is K.RETRYING:
                assert (STARTING_UP if trouble == "boot_window" else SESSION_LIMIT) in (
                    update.message
                )
                break
        else:
            raise AssertionError("no retry notice")
        sim_thread.call(lambda: setattr(sim.broker.rules, "max_sessions", 4))
        printer.connect(timeout=30)
        assert printer.wait_for_state(timeout=10).complete
        assert any(isinstance(u, PrinterState) and u.complete for u in updates)
    finally:
        printer.close()


async def test_job_a_finishes_and_job_b_starts_during_an_outage(sim: SimulatedPrinter) -> None:
    async with client_for(sim) as printer:
        await printer.wait_for_state()
        updates = printer.updates()
        sim.model.start_print(layers=100, name="job A", file="a.gcode.3mf", layer_seconds=30)
        started = await next_event(updates, kind(K.JOB_STARTED))
        assert started.data["name"] == "job A"
        # An outage: the connection drops and the printer refuses us for a while.
        sim.broker.rules.max_sessions = 0
        sim.drop_connections()
        await next_event(updates, kind(K.DISCONNECTED))
        await next_event(updates, kind(K.RETRYING))
        sim.model.finish_now()
        sim.model.start_print(layers=100, name="job B", file="b.gcode.3mf", layer_seconds=30)
        sim.broker.rules.max_sessions = 4
        ended = await next_event(updates, _job_event)
        assert ended.kind is K.JOB_ENDED
        assert ended.data == {"file": "a.gcode.3mf", "outcome": "unknown"}
        new = await next_event(updates, _job_event)
        assert new.kind is K.JOB_STARTED and new.data["name"] == "job B"
        assert "present_at_connect" not in new.data
        # Resyncs and another reconnect repeat nothing.
        await printer.refresh()
        sim.drop_connections()
        await next_event(updates, kind(K.RESYNCED))
        sim.model.finish_now()
        finished = await next_event(updates, _job_event)
        assert finished.kind is K.JOB_FINISHED and finished.data["file"] == "b.gcode.3mf"


def _job_event(event: Event) -> bool:
    return event.kind.value.startswith("job_")


async def test_an_alert_and_a_job_present_at_connect_are_announced_once(
    sim: SimulatedPrinter,
) -> None:
    sim.model.raise_hms("0300_0100_0001_0007")
    sim.model.start_print(layers=100, name="long", layer_seconds=30)
    printer = client_for(sim)
    updates = printer.updates()
    seen: list[Event] = []

    async def until(match: Callable[[Event], bool]) -> None:
        seen.append(await next_event(updates, lambda e: seen.append(e) is None and match(e)))
        seen.pop()  # appended twice: once by the filter, once here

    async with printer:
        await until(kind(K.HMS_RAISED))
        await printer.refresh()
        sim.drop_connections()
        await until(kind(K.RESYNCED))
        sim.model.clear_hms()
        await until(kind(K.HMS_CLEARED))
    kinds = [e.kind for e in seen]
    assert kinds.count(K.HMS_RAISED) == 1 and kinds.count(K.JOB_STARTED) == 1
    assert kinds.count(K.HMS_CLEARED) == 1
    raised = next(e for e in seen if e.kind is K.HMS_RAISED)
    started = next(e for e in seen if e.kind is K.JOB_STARTED)
    assert raised.data["present_at_connect"] is True and started.data["present_at_connect"]
    assert kinds.index(K.CONNECTED) < kinds.index(K.HMS_RAISED)
    assert kinds.index(K.RECONNECTED) < kinds.index(K.RESYNCED) < kinds.index(K.HMS_CLEARED)


async def test_a_job_that_ends_right_after_connecting_is_not_missed(
    sim: SimulatedPrinter,
) -> None:
    """The printer does not answer get_version; the job ends within a second of connecting:
    the stream still has the job, found at connect, and its end."""
    sim.broker.leave_unanswered("get_version")
    sim.model.start_print(layers=100, name="nearly done", layer_seconds=30)
    printer = client_for(sim)
    updates = printer.updates()
    async with printer:
        first = await next_event(updates, _job_event)
        sim.model.finish_now()
        end = await next_event(updates, _job_event)
    assert first.kind is K.JOB_STARTED and first.data["present_at_connect"] is True
    assert end.kind is K.JOB_FINISHED
    assert printer.info is None  # get_version really went unanswered
