"""Twelve simulated printers (A1, P1S, X1C) watched by `bambu-lan serve` with its dashboard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bambu_lan import PrinterConfig, Secret
from bambu_lan.printer import Printer
from bambu_lan.protocol.events import Event, EventKind
from bambu_lan.serve.daemon import Daemon, build_sinks
from bambu_lan.serve.history import HistorySink
from bambu_lan.serve.hub import Sink, WatchedPrinter
from bambu_lan.serve.settings import ServeSettings
from bambu_lan.serve.web.live import LiveCards
from bambu_lan.serve.web.sink import WebSink
from bambu_lan.sim import SimFleet, SimulatedPrinter
from bambu_lan.trust import TrustConfig

TOKEN = "correct-horse-battery"
HTML_JOB = '<img src=x onerror="window.__pwned=1"><b>Benchy</b> & "friends"'


class EventProbe(Sink):
    """The last sink: when it sees an event, every other sink has handled it."""

    name = "probe"

    def __init__(self) -> None:
        self.seen: list[Event] = []
        self._changed = asyncio.Condition()

    def event(self, printer: WatchedPrinter, event: Event) -> None:
        self.seen.append(event)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, serial: str, kind: EventKind, timeout: float = 60) -> Event:
        def found() -> Event | None:
            return next((e for e in self.seen if e.serial == serial and e.kind is kind), None)

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        event = found()
        assert event is not None
        return event


@dataclass
class RunningFarm:
    sims: list[SimulatedPrinter]
    daemon: Daemon
    names: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.daemon.http_port}/"

    @property
    def web(self) -> WebSink:
        return next(s for s in self.daemon.hub.sinks if isinstance(s, WebSink))

    @property
    def history(self) -> HistorySink:
        return next(s for s in self.daemon.hub.sinks if isinstance(s, HistorySink))

    @property
    def probe(self) -> EventProbe:
        return next(s for s in self.daemon.hub.sinks if isinstance(s, EventProbe))

    @property
    def live(self) -> LiveCards:
        assert self.web.dashboard is not None
        return self.web.dashboard.live

    def printer(self, index: int) -> Printer:
        return self.daemon.hub.printers[self.sims[index].serial].printer


@contextlib.asynccontextmanager
async def running_farm(
    cert_dir: Path,
    *,
    secret: str | None = TOKEN,
    time_scale: float = 4.0,
    layout: tuple[tuple[str, int], ...] = (("a1", 6), ("p1s", 3), ("x1c", 3)),
    history_dir: Path | None = None,
    rtsps_interval: float | None = None,
) -> AsyncIterator[RunningFarm]:
    """``serve --http-port 0`` watching simulated printers: by default 12 (6 A1, 3 P1S,
    3 X1C) named "Bay 01" .. "Bay 12", all idle and connected. The X1Cs have no camera (their
    reports say the live view is off) unless ``rtsps_interval`` is given: then each has its
    RTSPS camera sending a picture that often (the simulator encodes with ffmpeg)."""
    async with contextlib.AsyncExitStack() as stack:
        sims: list[SimulatedPrinter] = []
        for i, (model, count) in enumerate(layout):
            fleet = SimFleet(
                count,
                model,
                host_mode="port",
                cert_dir=cert_dir,
                time_scale=time_scale,
                seed=10 * (i + 1),
                camera_port=0 if model in ("a1", "p1s") or rtsps_interval else None,
                camera_interval=rtsps_interval if rtsps_interval and model == "x1c" else 1.0,
            )
            await stack.enter_async_context(fleet)
            sims.extend(fleet.printers)
        names = {p.serial: f"Bay {i + 1:02d}" for i, p in enumerate(sims)}
        configs = [
            PrinterConfig(
                host=p.host,
                serial=p.serial,
                access_code=Secret(p.access_code),
                port=p.port,
                trust=TrustConfig(ca_file=p.ca_path),
                name=names[p.serial],
                camera_port=p.camera_port,
            )
            for p in sims
        ]
        settings = ServeSettings(
            http_port=0, web_token=Secret(secret) if secret else None, history=False
        )
        sinks = build_sinks(settings)
        if history_dir is not None:  # serve's SQLite history, in a folder of the test's own
            database = history_dir / "history.sqlite3"
            sinks.append(HistorySink(f"sqlite:///{database}", spool=history_dir / "pending.jsonl"))
        daemon = Daemon(settings, configs, sinks=[*sinks, EventProbe()])
        await daemon.start()
        stack.push_async_callback(daemon.stop)
        running = RunningFarm(sims, daemon, names)
        await asyncio.gather(
            *(running.printer(i).wait_for_state(timeout=60) for i in range(len(sims)))
        )
        yield running
