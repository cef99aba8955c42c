"""The daemon skeleton against simulated printers: every printer watched, one log line per
event, reload (add / remove / broken file), clean stop, health endpoint, sink isolation."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from bambu_lan.errors import ConfigError
from bambu_lan.protocol.events import Event, EventKind
from bambu_lan.protocol.state import PrinterState
from bambu_lan.serve.daemon import Daemon, read_farm_config, select_printers
from bambu_lan.serve.hub import Sink, WatchedPrinter
from bambu_lan.serve.logsink import LogSink
from bambu_lan.serve.settings import ServeSettings
from bambu_lan.sim import SimulatedPrinter

from .support import RecordingSink, write_config


def daemon_for(config: Path, *sinks: Sink, **settings: object) -> Daemon:
    farm = read_farm_config(config)
    chosen = farm.settings.with_options(**settings)
    return Daemon(chosen, select_printers(farm, chosen), config_file=config, sinks=list(sinks))


async def test_watches_every_printer_logs_each_event_and_marks_offline_on_stop(
    sim_factory, tmp_path: Path, serve_logs: pytest.LogCaptureFixture
) -> None:
    a = await sim_factory(serial="01S00A000000001")
    b = await sim_factory(serial="01S00A000000002")
    config = write_config(tmp_path / "c.toml", {"left": a, "right": b})
    rec = RecordingSink()
    daemon = daemon_for(config, LogSink(), rec)
    await daemon.start()
    try:
        await rec.wait_for(lambda: {a.serial, b.serial} <= set(rec.states))
        await rec.wait_for(lambda: all(s.complete for s in rec.states.values()))
        a.model.start_print(layers=2, name="cube", layer_seconds=1, prepare_seconds=0.5)
        await rec.wait_for(lambda: EventKind.JOB_FINISHED in rec.kinds(a.serial), timeout=30)
        assert EventKind.JOB_STARTED in rec.kinds(a.serial)
        assert EventKind.JOB_STARTED not in rec.kinds(b.serial)
        assert daemon.hub.printers[a.serial].online
    finally:
        await daemon.stop()
    lines = [r.getMessage() for r in serve_logs.records if r.name == "bambu_lan.serve.events"]
    assert f"left ({a.serial}) job_started: cube started" in lines
    assert any(line.startswith(f"left ({a.serial}) job_finished:") for line in lines)
    assert any(line.startswith(f"right ({b.serial}) connected:") for line in lines)
    # Stopping marked every printer offline, then stopped the sinks.
    for serial in (a.serial, b.serial):
        assert rec.kinds(serial)[-1] is EventKind.DISCONNECTED
    assert rec.stopped
    assert not any(p.online for p in daemon.hub.printers.values())
    # The access codes never reached the log.
    text = "\n".join(r.getMessage() for r in serve_logs.records)
    assert a.access_code not in text and b.access_code not in text


async def test_reload_adds_and_removes_printers_without_dropping_the_others(
    sim_factory, tmp_path: Path, serve_logs: pytest.LogCaptureFixture
) -> None:
    a = await sim_factory(serial="01S00A000000011")
    b = await sim_factory(serial="01S00A000000012")
    c = await sim_factory(serial="01S00A000000013")
    config = write_config(tmp_path / "c.toml", {"a": a, "b": b})
    rec = RecordingSink()
    daemon = daemon_for(config, rec)
    await daemon.start()
    try:
        await rec.wait_for(lambda: {a.serial, b.serial} <= set(rec.states))
        kept = daemon.hub.printers[b.serial]
        write_config(config, {"b": b, "c": c})
        assert await daemon.reload()
        assert set(daemon.hub.printers) == {b.serial, c.serial}
        assert rec.removed == [a.serial] and rec.added[-1] == c.serial
        await rec.wait_for(lambda: c.serial in rec.states)
        # b was left alone: the same handle, one connection all along, never disconnected.
        assert daemon.hub.printers[b.serial] is kept
        assert kept.status.connects == 1
        assert EventKind.DISCONNECTED not in rec.kinds(b.serial)
        assert b.broker.closes.get("disconnect", 0) == 0
        # a's session was closed cleanly.
        await rec.wait_for(lambda: a.broker.closes.get("disconnect", 0) >= 1)
    finally:
        await daemon.stop()
    assert any("1 added, 1 removed" in r.getMessage() for r in serve_logs.records)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[printers.a\nhost=", "not valid TOML"),
        ('[printers.a]\nhost = "127.0.0.1"\nserial = "bad"\naccess_code = "12345678"\n', "serial"),
        ("[serve]\nshard = 'x'\n", "shard"),
        ("[serve]\nbogus = 1\n", "unknown key"),
    ],
)
async def test_a_broken_file_on_reload_keeps_the_running_config(
    sim: SimulatedPrinter,
    tmp_path: Path,
    serve_logs: pytest.LogCaptureFixture,
    text: str,
    why: str,
) -> None:
    config = write_config(tmp_path / "c.toml", {"a": sim})
    rec = RecordingSink()
    daemon = daemon_for(config, rec)
    await daemon.start()
    try:
        await rec.wait_for(lambda: sim.serial in rec.states)
        config.write_text(text)
        assert not await daemon.reload()
        assert set(daemon.hub.printers) == {sim.serial}
        assert daemon.hub.printers[sim.serial].online
        health = daemon.health()
        assert why in health["last_reload_error"] and health["reload_errors"] == 1
    finally:
        await daemon.stop()
    errors = [r for r in serve_logs.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "config reload failed, keeping the running config" in errors[0].getMessage()
    assert why in errors[0].getMessage()


async def test_health_endpoint_reports_printers_and_sinks(
    sim: SimulatedPrinter, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", {"a": sim})
    rec = RecordingSink()
    daemon = daemon_for(config, rec, http_port=0)
    await daemon.start()
    try:
        await rec.wait_for(lambda: EventKind.CONNECTED in rec.kinds(sim.serial))
        assert daemon.http_port
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{daemon.http_port}/healthz"
            async with session.get(url) as response:
                assert response.status == 200
                data = await response.json()
    finally:
        await daemon.stop()
    assert data["ok"] is True
    assert data["printers"] == 1 and data["printers_online"] == 1
    assert data["sinks"]["recording"] == {"ok": True}


class BrokenSink(Sink):
    name = "broken"

    def state(self, printer: WatchedPrinter, state: PrinterState) -> None:
        raise RuntimeError("boom")


async def test_a_failing_sink_is_logged_once_and_never_stops_the_others(
    sim: SimulatedPrinter, tmp_path: Path, serve_logs: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path / "c.toml", {"a": sim})
    rec = RecordingSink()
    daemon = daemon_for(config, BrokenSink(), rec)
    await daemon.start()
    try:
        await rec.wait_for(lambda: sim.serial in rec.states)
        first = rec.states[sim.serial]
        await rec.wait_for(lambda: rec.states[sim.serial] is not first)
        errors = daemon.health()["sink_errors"]["broken.state"]
        assert errors >= 2
    finally:
        await daemon.stop()
    logged = [r for r in serve_logs.records if "sink broken failed in state" in r.getMessage()]
    assert len(logged) == 1


def test_printer_selection_and_shards(tmp_path: Path, sim_cert_dir: Path) -> None:
    class Fake:  # the CA file must exist: a printer's settings are checked before use
        host, port, ca_path = "127.0.0.1", 8883, sim_cert_dir / "ca.pem"
        access_code = "12345678"

        def __init__(self, serial: str) -> None:
            self.serial = serial

    fakes = {f"p{i}": Fake(f"01S00A{i:09d}") for i in range(20)}
    config = write_config(tmp_path / "c.toml", fakes.items())
    farm = read_farm_config(config)
    assert len(select_printers(farm, ServeSettings())) == 20
    chosen = select_printers(farm, ServeSettings(printers=("p3", "p4")))
    assert [c.name for c in chosen] == ["p3", "p4"]
    from bambu_lan.errors import ConfigError

    with pytest.raises(ConfigError, match="no printer named 'nope'"):
        select_printers(farm, ServeSettings(printers=("nope",)))


async def test_cli_serve_reloads_on_sighup_and_stops_cleanly_on_sigterm(
    sim_factory, tmp_path: Path
) -> None:
    a = await sim_factory(serial="01S00A000000021")
    b = await sim_factory(serial="01S00A000000022")
    config = write_config(tmp_path / "c.toml", {"a": a})
    exe = Path(sys.executable).parent / "bambu-lan"
    env = {**os.environ, "BAMBU_CONFIG": str(config)}
    proc = await asyncio.create_subprocess_exec(
        str(exe), "serve", "--http-port", "0", "--no-history",
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    seen: list[str] = []

    async def wait_line(text: str) -> str:
        async with asyncio.timeout(20):
            while True:
                raw = await proc.stderr.readline()  # type: ignore[union-attr]
                if not raw:
                    raise AssertionError(f"serve exited; it said: {seen}")
                line = raw.decode()
                seen.append(line)
                if text in line:
                    return line

    try:
        await wait_line(f"a ({a.serial}) connected")
        await wait_line("objects kept out of the garbage collector's way")  # a has its state
        write_config(config, {"a": a, "b": b})
        proc.send_signal(signal.SIGHUP)
        await wait_line("1 added, 0 removed")
        await wait_line(f"b ({b.serial}) connected")
        await wait_line("objects kept out of the garbage collector's way")  # again: b is in
        config.write_text("not toml [")
        proc.send_signal(signal.SIGHUP)
        line = await wait_line("config reload failed")
        assert "keeping the running config" in line and "not valid TOML" in line
        proc.send_signal(signal.SIGTERM)
        await wait_line("stopped")
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # Both sessions ended with a DISCONNECT, and the log shows them going offline.
    assert a.broker.closes.get("disconnect", 0) >= 1
    assert b.broker.closes.get("disconnect", 0) >= 1
    text = "".join(seen)
    assert f"a ({a.serial}) disconnected" in text
    assert a.access_code not in text


@pytest.mark.parametrize("which", ["metrics_port", "http_port"])
async def test_a_port_in_use_is_refused_before_any_printer_connects(
    sim: SimulatedPrinter, tmp_path: Path, which: str
) -> None:
    """The ports are bound before the printers start: their connections (one ephemeral port
    each, a thousand in a farm) once took the port serve was about to listen on, and the
    1,000-printer benchmark lost its ``/metrics``."""
    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    with socket.create_server(("127.0.0.1", 0)) as taken:
        rec = RecordingSink()
        daemon = daemon_for(config, rec, **{which: taken.getsockname()[1]})
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
            await daemon.start()
    assert not rec.started and not daemon.hub.running
    assert sim.broker.stats.connections == 0


async def test_sinks_see_states_and_events_in_the_order_they_happened(
    sim: SimulatedPrinter, tmp_path: Path
) -> None:
    """The hub reads the printer's one ordered stream (``updates()``): when a sink hears
    ``job_finished``, the state it last got already shows the job finished, and the
    ``job_started`` came after a state with the job under way."""
    seen: list[tuple[str, str]] = []

    class Order(Sink):
        def state(self, printer: WatchedPrinter, state: PrinterState) -> None:
            seen.append(("state", state.job.state.value))

        def event(self, printer: WatchedPrinter, event: Event) -> None:
            seen.append(("event", event.kind.value))

    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    rec = RecordingSink()
    daemon = daemon_for(config, Order(), rec)
    await daemon.start()
    try:
        await rec.wait_for(lambda: sim.serial in rec.states)
        sim.model.start_print(layers=2, name="order", layer_seconds=1, prepare_seconds=0.5)
        await rec.wait_for(lambda: EventKind.JOB_FINISHED in rec.kinds(sim.serial), timeout=30)
    finally:
        await daemon.stop()
    started = seen.index(("event", "job_started"))
    finished = seen.index(("event", "job_finished"))
    last_state = lambda before: next(v for k, v in reversed(seen[:before]) if k == "state")  # noqa: E731
    assert last_state(started) in ("PREPARE", "RUNNING")
    assert last_state(finished) == "FINISH"
