"""The client against the strict simulated A1: wire sequence, faults, events, commands, trust.

Tests marked ``every_profile`` run against every simulator profile (A1, A1 mini, P1S, X1C …):
the state, event and command paths, where the models differ in report style (deltas or full
reports), AMS kind, lights and sensors. Trust, auth and fault handling are model-independent
and run against the A1 only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bambu_lan import (
    AuthError,
    CommandRejected,
    DeveloperModeRequired,
    EventKind,
    JobState,
    Printer,
    PrinterOptions,
    SessionOptions,
    TrustError,
)
from bambu_lan.protocol.events import Event
from bambu_lan.session import LinkState
from bambu_lan.sim import SimulatedPrinter

FAST = SessionOptions(
    connect_timeout=3,
    connack_timeout=3,
    backoff_initial=0.05,
    backoff_max=0.2,
    auth_retry_delay=0.2,
    trust_retry_delay=0.2,
)


def assert_no_credentials_sent(sim: SimulatedPrinter) -> None:
    stats = sim.broker.stats
    assert stats.connections >= 1  # TLS handshakes happened
    assert stats.sessions == 0 and stats.requests == 0
    # Every connection ended from the client side before CONNECT: no auth outcome at all.
    assert set(stats.closes) <= {"client_closed", "tls_error", "tls_handshake"}, stats.closes


def client_for(sim: SimulatedPrinter, *, session: SessionOptions = FAST, **kwargs: Any) -> Printer:
    kwargs.setdefault("ca_file", sim.ca_path)
    return Printer(
        sim.host,
        sim.serial,
        kwargs.pop("access_code", sim.access_code),
        port=sim.port,
        options=PrinterOptions(session=session, command_timeout=3, confirm_timeout=3),
        **kwargs,
    )


async def wait_for(printer: Printer, predicate: Callable[[], bool], timeout: float = 10) -> None:
    assert await printer._live().wait_until(predicate, timeout), "condition not reached in time"


class EventLog:
    """Collects a printer's events in the background; awaits a kind without sleeping."""

    def __init__(self, printer: Printer) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.get_running_loop().create_task(self._collect(printer))

    async def _collect(self, printer: Printer) -> None:
        async for event in printer.events():
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]

    async def wait_for(self, kind: EventKind, count: int = 1, timeout: float = 10) -> None:
        async with self._changed:
            async with asyncio.timeout(timeout):
                await self._changed.wait_for(lambda: self.kinds().count(kind) >= count)

    def stop(self) -> None:
        self._task.cancel()


@pytest.fixture
async def events() -> AsyncIterator[Callable[[Printer], EventLog]]:
    logs: list[EventLog] = []

    def make(printer: Printer) -> EventLog:
        log = EventLog(printer)
        logs.append(log)
        return log

    yield make
    for log in logs:
        log.stop()


@pytest.mark.every_profile
async def test_wire_sequence_in_strict_mode(sim: SimulatedPrinter) -> None:
    async with client_for(sim) as printer:
        state = await printer.wait_for_state(timeout=10)
        assert state.complete
        assert state.serial == sim.serial
        # An early SUBSCRIBE, a wildcard or a foreign publish would have closed the session.
        assert dict(sim.broker.closes) == {}
        commands = sim.model.logged_commands()
        assert commands[:2] == [("info", "get_version"), ("pushing", "pushall")]
        await wait_for(printer, lambda: printer.info is not None)
        model_name = sim.profile.product_name.removeprefix("Bambu Lab ")
        assert printer.info is not None
        assert printer.info.model == model_name
        assert printer.info.firmware == sim.profile.firmware
        assert printer.state is not None and printer.state.model == model_name
        # No chamber sensor (A1, P1S): no reading rather than a made-up one.
        has_chamber = printer.state.temperatures.chamber is not None
        assert has_chamber == sim.profile.has_chamber_sensor
    # Clean shutdown: DISCONNECT was sent.
    await sim.broker.wait_for_close("disconnect")
    assert sim.broker.session_count == 0


async def test_handles_share_one_session(sim: SimulatedPrinter) -> None:
    async with client_for(sim) as first, client_for(sim) as second:
        await first.wait_for_state()
        await second.wait_for_state()
        assert sim.broker.session_count == 1
        assert first.state is second.state


@pytest.mark.every_profile
async def test_dropped_connection_reconnects_and_resyncs(
    sim: SimulatedPrinter, events: Callable[[Printer], EventLog]
) -> None:
    async with client_for(sim) as printer:
        await printer.wait_for_state()
        log = events(printer)
        sim.model.set_tray(0, 2, tray_type="PETG", color="FF0000FF", remain=42)
        sim.drop_connections()
        await log.wait_for(EventKind.DISCONNECTED)
        await log.wait_for(EventKind.RECONNECTED)
        await log.wait_for(EventKind.RESYNCED)
        # After the reconnect: get_version + pushall again.
        await sim.model.wait_until(
            lambda m: m.logged_commands().count(("pushing", "pushall")) >= 2, timeout=5
        )
        await wait_for(
            printer,
            lambda: (
                printer.state is not None
                and printer.state.ams[0].trays[2].type == "PETG"
                and printer.state.ams[0].trays[2].remain == 42
            ),
        )
        assert printer.status.connects == 2
        disconnected = next(e for e in log.events if e.kind is EventKind.DISCONNECTED)
        assert "closed the connection" in disconnected.message


@pytest.mark.every_profile
async def test_silent_printer_gets_pushing_start(sim: SimulatedPrinter) -> None:
    options = SessionOptions(watchdog=0.5, watchdog_grace=5.0, backoff_initial=0.05)
    async with client_for(sim, session=options) as printer:
        await printer.wait_for_state()
        sim.go_silent(recover_on="start")
        await wait_for(printer, lambda: printer.status.watchdog_kicks >= 1)
        assert ("pushing", "start") in sim.model.logged_commands()
        before = printer.status.messages
        await wait_for(printer, lambda: printer.status.messages > before)
        assert printer.status.connects == 1  # recovered without a reconnect


async def test_silent_printer_that_stays_silent_is_reconnected(sim: SimulatedPrinter) -> None:
    options = SessionOptions(watchdog=0.5, watchdog_grace=0.5, backoff_initial=0.05)
    async with client_for(sim, session=options) as printer:
        await printer.wait_for_state()
        sim.go_silent(recover_on="reconnect")
        await wait_for(printer, lambda: printer.status.connects >= 2)
        before = printer.status.messages
        await wait_for(printer, lambda: printer.status.messages > before)
        assert printer.status.watchdog_kicks >= 1


async def test_wrong_code_is_auth_error_promptly_and_bounded(sim: SimulatedPrinter) -> None:
    with pytest.raises(AuthError) as caught:
        async with client_for(sim, access_code="00000000"):
            pass
    assert "00000000" not in str(caught.value)
    assert sim.access_code not in str(caught.value)
    # Background use: the attempts stop after max_auth_failures.
    printer = client_for(sim, access_code="00000000")
    printer.start()
    try:
        await wait_for(printer, lambda: printer.status.state is LinkState.FAILED)
        assert printer.status.auth_failures == FAST.max_auth_failures
    finally:
        await printer.close()
    assert sim.broker.closes["bad_auth"] == 1 + FAST.max_auth_failures


async def test_garbage_payloads_are_survived(sim: SimulatedPrinter) -> None:
    async with client_for(sim) as printer:
        await printer.wait_for_state()
        for kind in ("random", "non_utf8", "truncated_json", "trailing_nul", "not_json"):
            sim.send_garbage(kind)  # type: ignore[arg-type]
        sim.model.set_tray(0, 1, tray_type="TPU", color="00FF00FF", remain=5)
        await wait_for(
            printer,
            lambda: printer.state is not None and printer.state.ams[0].trays[1].type == "TPU",
        )
        assert printer.status.connects == 1
        assert sum(printer.decode_problems.values()) >= 3


async def test_new_certificate_is_refused_by_the_pin(sim_factory: Any, tmp_path: Path) -> None:
    known = tmp_path / "known_printers"
    cert_dir = tmp_path / "printer-certs"
    first = await sim_factory(cert_dir=cert_dir)
    async with client_for(first, ca_file=None, known_printers=known) as printer:
        await printer.wait_for_state()
    assert first.serial in known.read_text()
    host, port, serial, code = first.host, first.port, first.serial, first.access_code
    await first.stop()
    # The printer comes back on the same address with a new certificate (reset / replaced).
    second = await sim_factory(
        cert_dir=cert_dir, new_identity=True, port=port, serial=serial, access_code=code
    )
    assert second.host == host
    with pytest.raises(TrustError, match="changed since it was pinned") as caught:
        async with client_for(second, ca_file=None, known_printers=known):
            pass
    assert caught.value.hint
    # No credentials were sent: the client hung up right after the TLS handshake.
    assert_no_credentials_sent(second)


async def test_serial_mismatch_is_refused_before_credentials(
    sim: SimulatedPrinter, sim_factory: Any
) -> None:
    other = await sim_factory(serial="039SIM000000999")
    printer = Printer(
        other.host,
        sim.serial,  # the wrong printer answers at this address
        other.access_code,
        port=other.port,
        ca_file=other.ca_path,
        options=PrinterOptions(session=FAST),
    )
    with pytest.raises(TrustError, match="presents serial 039SIM000000999"):
        async with printer:
            pass
    assert_no_credentials_sent(other)


@pytest.mark.every_profile
async def test_job_events_exactly_once_across_reconnects(
    sim: SimulatedPrinter, events: Callable[[Printer], EventLog]
) -> None:
    async with client_for(sim) as printer:
        await printer.wait_for_state()
        log = events(printer)
        sim.model.start_print(layers=6, name="benchy", layer_seconds=2)
        await log.wait_for(EventKind.JOB_STARTED)
        await log.wait_for(EventKind.LAYER_CHANGED, 2)
        sim.drop_connections()  # a reconnect mid-print
        await log.wait_for(EventKind.RECONNECTED)
        await log.wait_for(EventKind.JOB_FINISHED, timeout=20)
        # The final state repeats (deltas, a resync, another reconnect): no second event.
        await printer.refresh()
        sim.drop_connections()
        await log.wait_for(EventKind.RECONNECTED, 2)
        await printer.wait_for_state()
        await printer.refresh()
        kinds = log.kinds()
        assert kinds.count(EventKind.JOB_STARTED) == 1
        assert kinds.count(EventKind.JOB_FINISHED) == 1
        assert printer.state is not None and printer.state.job.state is JobState.FINISH
        # Layers only move forward and none repeats across the reconnects. The last one seen
        # may be below 6: on a starved machine the print can end while the client is away,
        # and a finished job reports no layer change.
        layers = [e.data["layer"] for e in log.events if e.kind is EventKind.LAYER_CHANGED]
        assert layers == sorted(set(layers)) and len(layers) >= 2 and layers[-1] <= 6
        assert printer.state.job.layer == 6


@pytest.mark.every_profile
async def test_pause_resume_stop_and_cancelled_event(
    sim: SimulatedPrinter, events: Callable[[Printer], EventLog]
) -> None:
    async with client_for(sim) as printer:
        await printer.wait_for_state()
        log = events(printer)
        sim.model.start_print(layers=500, name="long", layer_seconds=30)
        await wait_for(
            printer,
            lambda: printer.state is not None and printer.state.job.state is JobState.RUNNING,
        )
        result = await printer.pause()
        assert result.confirmed and result.reply is not None and result.reply.ok
        assert printer.state is not None and printer.state.job.state is JobState.PAUSE
        await printer.resume()
        await printer.set_speed(3)
        assert printer.state.speed.level == 3 and printer.state.speed.name == "sport"
        await printer.stop()
        await log.wait_for(EventKind.JOB_CANCELLED)
        kinds = log.kinds()
        assert EventKind.JOB_PAUSED in kinds and EventKind.JOB_RESUMED in kinds
        assert EventKind.JOB_FAILED not in kinds
        # A command the printer refuses: a clear error with the printer's reason.
        with pytest.raises(CommandRejected) as caught:
            await printer.send_raw("print", "print_speed", {"param": "9"})
        assert caught.value.reason


@pytest.mark.every_profile
async def test_developer_mode_off(sim_factory: Any) -> None:
    sim = await sim_factory(dev_mode=False)
    async with client_for(sim) as printer:
        await printer.wait_for_state()
        sim.model.start_print(layers=50, name="job", layer_seconds=30)
        with pytest.raises(DeveloperModeRequired) as caught:
            await printer.pause()
        assert caught.value.err_code == 84033543
        assert "Developer Mode" in caught.value.hint
        # The light still works without Developer Mode.
        result = await printer.set_light(True)
        assert result.confirmed
        assert printer.state is not None and printer.state.lights["chamber_light"] == "on"
        await wait_for(
            printer,
            lambda: (
                printer.state is not None
                and any(a.short == "0500_0500_0001_0007" for a in printer.state.hms)
            ),
        )


@pytest.mark.every_profile
async def test_gcode_changes_targets(sim: SimulatedPrinter) -> None:
    async with client_for(sim) as printer:
        await printer.wait_for_state()
        result = await printer.gcode(["M140 S60", "M104 S210"])
        assert result.reply is not None and result.reply.ok
        await wait_for(
            printer,
            lambda: (
                printer.state is not None
                and printer.state.temperatures.bed_target == 60
                and printer.state.temperatures.nozzle_target == 210
            ),
        )


async def test_repr_and_errors_never_show_the_code(sim: SimulatedPrinter) -> None:
    printer = client_for(sim)
    assert sim.access_code not in repr(printer)
    assert sim.access_code not in repr(printer.config)
    async with printer:
        await printer.wait_for_state()
        assert sim.access_code not in repr(printer.status)
        assert sim.access_code not in str(printer.state.to_dict() if printer.state else "")


async def test_close_while_connecting_leaves_no_session_behind(sim: SimulatedPrinter) -> None:
    sim.delay_connack(30)  # the printer takes its time to answer CONNECT
    printer = client_for(sim)
    printer.start()
    await sim.broker.wait_for(lambda: sim.broker.connection_count >= 1)
    await printer.close()
    # The half-open connection is closed by us, not left to hold one of the A1's slots.
    await sim.broker.wait_for(lambda: sim.broker.connection_count == 0)
    assert sim.broker.session_count == 0


async def test_a_failing_report_handler_does_not_end_the_session(
    sim: SimulatedPrinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bambu_lan.protocol.core import PrinterCore, Step

    original = PrinterCore.feed
    failures = {"left": 1}

    def feed_failing_once(self: PrinterCore, payload: bytes, now: float) -> Step:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("injected handler bug")
        return original(self, payload, now)

    async with client_for(sim) as printer:
        await printer.wait_for_state()
        monkeypatch.setattr(PrinterCore, "feed", feed_failing_once)
        sim.model.set_tray(0, 3, tray_type="ASA", color="123456FF", remain=9)
        await wait_for(printer, lambda: printer.status.handler_errors == 1)
        sim.model.set_tray(0, 3, tray_type="PC", color="123456FF", remain=8)
        await wait_for(
            printer,
            lambda: printer.state is not None and printer.state.ams[0].trays[3].type == "PC",
        )
        assert printer.status.connects == 1


async def test_wait_for_state_raises_the_real_cause_after_giving_up(
    sim: SimulatedPrinter,
) -> None:
    printer = client_for(sim, access_code="00000000")
    printer.start()
    try:
        with pytest.raises(AuthError):
            await printer.wait_for_state(timeout=10)
    finally:
        await printer.close()
