"""Notifications through apprise to a local HTTP receiver: what is sent to whom, quiet hours,
retries, a hanging notifier, a printer offline for too long."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bambu_lan.config import Secret
from bambu_lan.protocol.events import EventKind
from bambu_lan.protocol.state import JobState
from bambu_lan.serve.notify import NotifySink, describe_url, in_quiet_hours
from bambu_lan.serve.settings import NotifyRule
from bambu_lan.sim import SimulatedPrinter

from .support import RecordingSink
from .test_daemon import daemon_for, write_config


@dataclass
class Receiver:
    """A local HTTP endpoint that apprise's json:// plugin posts to."""

    port: int = 0
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)  # path -> failures to answer
    hang: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str, **query: str) -> Secret:
        extra = "".join(f"&{k}={v}" for k, v in query.items())
        return Secret(f"json://127.0.0.1:{self.port}/{path}?token=sekret-token{extra}")

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path.strip("/")
        if path in self.hang:
            await asyncio.sleep(3600)
        if self.fail_first.get(path, 0) > 0:
            self.fail_first[path] -= 1
            return web.Response(status=500)
        self.received.setdefault(path, []).append(await request.json())
        self.changed.set()
        return web.Response(text="ok")

    async def wait(self, path: str, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while len(self.received.get(path, [])) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.received[path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = runner.addresses[0][1]
    yield rec
    await runner.cleanup()


def rule(*urls: Secret, **kwargs: Any) -> NotifyRule:
    return NotifyRule(urls=urls, **kwargs)


async def test_job_events_reach_the_right_rules(
    sim: SimulatedPrinter, receiver: Receiver, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    sink = NotifySink(
        [
            rule(receiver.url("all")),
            rule(receiver.url("other"), printers=frozenset({"garage"})),
            rule(receiver.url("failures"), events=frozenset({"job_failed"})),
        ]
    )
    rec = RecordingSink()
    daemon = daemon_for(config, sink, rec)
    await daemon.start()
    try:
        await rec.wait_for(lambda: sim.serial in rec.states)
        sim.model.start_print(layers=2, name="cube", layer_seconds=1, prepare_seconds=0.5)
        got = await receiver.wait("all")
        assert got[0]["title"] == "workshop: print finished"
        assert "cube finished" in got[0]["message"] and got[0]["type"] == "success"
        sim.model.start_print(layers=40, name="doomed", layer_seconds=5, prepare_seconds=0.5)
        await rec.wait_for(lambda: rec.states[sim.serial].job.state is JobState.RUNNING)
        sim.model.run_out_of_filament()
        await rec.wait_for(lambda: EventKind.JOB_PAUSED in rec.kinds(sim.serial))
        paused = await receiver.wait("all", 2)
        assert paused[1]["title"] == "workshop: print paused"
        assert "filament" in paused[1]["message"].lower()
        sim.model.fail(print_error=0x0300_4000)  # a real failure, not a cancellation
        failed = await receiver.wait("failures")
        assert failed[0]["title"] == "workshop: print FAILED" and failed[0]["type"] == "failure"
        await receiver.wait("all", 3)
    finally:
        await daemon.stop()
    assert "other" not in receiver.received  # a rule for another printer
    assert len(receiver.received["failures"]) == 1  # only the failure
    assert sink.sent == 4 and sink.failed == 0


async def test_quiet_hours_hold_back_all_but_failures(
    sim: SimulatedPrinter, receiver: Receiver, tmp_path: Path
) -> None:
    def at_night() -> datetime:
        return datetime(2026, 11, 29, 23, 30)

    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    sink = NotifySink([rule(receiver.url("q"), quiet_hours=(22 * 60, 7 * 60))], clock=at_night)
    rec = RecordingSink()
    daemon = daemon_for(config, sink, rec)
    await daemon.start()
    try:
        await rec.wait_for(lambda: sim.serial in rec.states)
        sim.model.start_print(layers=2, name="quiet", layer_seconds=1, prepare_seconds=0.5)
        await rec.wait_for(lambda: EventKind.JOB_FINISHED in rec.kinds(sim.serial))
        sim.model.start_print(layers=40, name="loud", layer_seconds=5, prepare_seconds=0.5)
        await rec.wait_for(lambda: rec.kinds(sim.serial).count(EventKind.JOB_STARTED) == 2)
        sim.model.fail(print_error=0x0300_4000)  # a real failure, not a cancellation
        got = await receiver.wait("q")
    finally:
        await daemon.stop()
    assert [m["title"] for m in got] == ["workshop: print FAILED"]
    assert sink.held == 1


def test_quiet_hours_and_urls() -> None:
    night = rule(Secret("x://"), quiet_hours=(22 * 60, 7 * 60))
    assert in_quiet_hours(night, 23 * 60) and in_quiet_hours(night, 60)
    assert not in_quiet_hours(night, 12 * 60) and not in_quiet_hours(night, 7 * 60)
    day = rule(Secret("x://"), quiet_hours=(12 * 60, 13 * 60))
    assert in_quiet_hours(day, 12 * 60 + 30) and not in_quiet_hours(day, 13 * 60)
    assert describe_url("tgram://123:SECRETTOKEN@chat/456") == "tgram://chat"


async def test_a_failing_notifier_is_retried_and_a_hanging_one_never_blocks(
    sim: SimulatedPrinter,
    receiver: Receiver,
    tmp_path: Path,
    serve_logs: pytest.LogCaptureFixture,
) -> None:
    serve_logs.set_level(logging.INFO, logger="bambu_lan.serve.notify")
    receiver.fail_first["flaky"] = 2
    receiver.hang.add("hangs")
    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    sink = NotifySink(
        [rule(receiver.url("hangs")), rule(receiver.url("flaky")), rule(receiver.url("fine"))],
        tries=3, timeout=1.0, backoff=(0.1,),
    )  # fmt: skip
    rec = RecordingSink()
    daemon = daemon_for(config, sink, rec)
    await daemon.start()
    try:
        await rec.wait_for(lambda: sim.serial in rec.states)
        sim.model.start_print(layers=2, name="cube", layer_seconds=1, prepare_seconds=0.5)
        await receiver.wait("fine")
        await receiver.wait("flaky")  # third try
        await rec.wait_for(lambda: sink.failed == 1, timeout=20)  # the hanging one gave up
        assert daemon.hub.printers[sim.serial].online and daemon.health()["ok"]
    finally:
        await daemon.stop()
    text = "\n".join(r.getMessage() for r in serve_logs.records)
    assert "sent on try 3" in text
    assert "failed after 3 tries (no answer within 1 s)" in text
    assert "sekret-token" not in text  # URLs are logged without their secrets


async def test_offline_too_long_then_back_online(
    sim_factory, receiver: Receiver, tmp_path: Path
) -> None:
    """The printer comes back through a reconnect (``reconnected``, not ``connected``)."""
    sim = await sim_factory(serial="01S00A000000051")
    config = write_config(tmp_path / "c.toml", {"workshop": sim})
    sink = NotifySink([rule(receiver.url("off"), offline_minutes=0.01)])  # 0.6 s
    rec = RecordingSink()
    daemon = daemon_for(config, sink, rec)
    await daemon.start()
    try:
        await rec.wait_for(lambda: EventKind.CONNECTED in rec.kinds(sim.serial))
        await sim.stop()
        got = await receiver.wait("off")
        assert got[0]["title"] == "workshop: offline" and "offline for" in got[0]["message"]
        await sim.start()  # the same port again
        got = await receiver.wait("off", count=2, timeout=30)
        assert EventKind.RECONNECTED in rec.kinds(sim.serial)
        assert [m["title"] for m in got] == ["workshop: offline", "workshop: back online"]
    finally:
        await daemon.stop()
