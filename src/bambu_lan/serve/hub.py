"""The hub: watches the farm and fans every update out to independent sinks.

One ``Hub`` owns the printers (one session each, through the library) and, for every update,
calls each sink's ``state`` / ``event`` method synchronously on the event loop. A sink must
not block there: it keeps what it needs (the latest state, a queue) and does its I/O in its
own tasks, so a slow broker or a hanging notifier never delays the others. An exception in a
sink is logged once per sink and kind, counted, and never stops the hub.

Each printer is read through ``Printer.updates()`` (``_Watch``): states and events in the
order they happened, so a sink sees a job's last state before its ``job_finished``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bambu_lan.config import PrinterConfig
from bambu_lan.printer import CommandResult, Printer, PrinterOptions, UpdateStream
from bambu_lan.protocol.events import Event, EventKind
from bambu_lan.protocol.state import PrinterState

if TYPE_CHECKING:
    from aiohttp import web

    from bambu_lan.camera import CameraFrame
    from bambu_lan.session import ConnectionStatus

log = logging.getLogger("bambu_lan.serve")

#: Commands a sink may send on a user's behalf (Home Assistant buttons, the web page).
ACTIONS = ("pause", "resume", "stop", "speed", "light")
#: How each job-ending event is recorded (history, metrics, the web page): ``job_ended`` is a
#: job that ended unseen (serve was away, or it vanished), so its outcome is unknown.
JOB_OUTCOMES = {
    EventKind.JOB_FINISHED: "finished",
    EventKind.JOB_FAILED: "failed",
    EventKind.JOB_CANCELLED: "cancelled",
    EventKind.JOB_ENDED: "unknown",
}


class Sink:
    """A consumer of the farm's updates. Subclass it and override what you need.

    Called by the hub, all on the event loop:

    * ``await start(hub)`` once, before any update (connect to a broker, open a database);
    * ``printer_added(p)`` / ``printer_removed(p)`` when the watched set changes (at start and
      on a config reload);
    * ``state(p, state)`` for each new snapshot, ``event(p, event)`` for each event
      (including ``connected`` / ``disconnected``): synchronous, must not block;
    * ``health()``: a small JSON-ready dict shown in the health endpoint (``ok`` False marks
      the sink degraded);
    * ``setup_http(app)``: add routes to the ``--http-port`` aiohttp application;
    * ``await stop()`` once at shutdown: flush, mark printers offline, close.
    """

    name = "sink"

    async def start(self, hub: Hub) -> None:
        return None

    async def stop(self) -> None:
        return None

    def printer_added(self, printer: WatchedPrinter) -> None:
        return None

    def printer_removed(self, printer: WatchedPrinter) -> None:
        return None

    def state(self, printer: WatchedPrinter, state: PrinterState) -> None:
        return None

    def event(self, printer: WatchedPrinter, event: Event) -> None:
        return None

    def health(self) -> dict[str, Any]:
        return {"ok": True}

    def setup_http(self, app: web.Application) -> None:
        return None


class WatchedPrinter:
    """One printer as the hub sees it: its settings, the live handle and a summary."""

    def __init__(self, config: PrinterConfig, printer: Printer) -> None:
        self.config = config
        self.printer = printer
        self.online = False
        self.state: PrinterState | None = None
        self.events_seen = 0
        self.states_seen = 0
        self.online_since: float | None = None
        self.offline_since: float | None = time.time()
        self._picture: asyncio.Future[CameraFrame] | None = None
        self._picture_waiters = 0

    @property
    def serial(self) -> str:
        return self.config.serial

    @property
    def name(self) -> str:
        """The config file's name for it, or its serial."""
        return self.config.label

    @property
    def model(self) -> str:
        """The model ("A1"), from get_version or the serial; "" when unknown."""
        if self.printer.info is not None and self.printer.info.model:
            return self.printer.info.model
        if self.state is not None and self.state.model:
            return self.state.model
        return ""

    @property
    def firmware(self) -> str:
        if self.printer.info is not None:
            return self.printer.info.firmware
        return (self.state.firmware if self.state else None) or ""

    @property
    def status(self) -> ConnectionStatus:
        return self.printer.status

    async def camera_picture(self, timeout: float) -> CameraFrame:
        """One camera picture (``Camera.snapshot``) for any sink; sinks asking at the same
        time share it. Without a live viewer an X1/P2S/H2 picture costs an RTSPS session and an
        ffmpeg, and a printer's camera takes few connections: the web page and Home
        Assistant's pictures never open two at once. Raises ``BambuError`` (why there is none).
        """
        pending = self._picture
        if pending is None:
            pending = asyncio.ensure_future(self.printer.camera.snapshot(timeout=timeout))
            self._picture = pending
            pending.add_done_callback(self._picture_taken)
        self._picture_waiters += 1
        try:
            return await asyncio.shield(pending)
        finally:
            self._picture_waiters -= 1
            if not self._picture_waiters and not pending.done():
                pending.cancel()  # the last one gave up: so does the camera
                if self._picture is pending:
                    self._picture = None  # the next asks anew (the callback comes later)

    def _picture_taken(self, future: asyncio.Future[CameraFrame]) -> None:
        if self._picture is future:
            self._picture = None
        if not future.cancelled():
            future.exception()  # retrieved: a failure nobody waits for any more is not logged

    async def command(self, action: str, value: Any = None) -> CommandResult:
        """Send one of ``ACTIONS`` with the library's checks; raises ``BambuError`` (e.g.
        ``DeveloperModeRequired``, ``CommandRejected``, ``NotConnected``) on refusal."""
        if action == "pause":
            return await self.printer.pause()
        if action == "resume":
            return await self.printer.resume()
        if action == "stop":
            return await self.printer.stop()
        if action == "speed":
            return await self.printer.set_speed(int(value))
        if action == "light":
            on = value if isinstance(value, bool) else str(value).lower() in ("on", "1", "true")
            return await self.printer.set_light(on)
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")


class Hub:
    """The watched printers and the sinks their updates go to."""

    def __init__(
        self,
        configs: Iterable[PrinterConfig] = (),
        *,
        sinks: Sequence[Sink] = (),
        options: PrinterOptions | None = None,
    ) -> None:
        self.options = options or PrinterOptions()
        self.sinks: list[Sink] = list(sinks)
        self.printers: dict[str, WatchedPrinter] = {}
        self._configs: dict[str, PrinterConfig] = {}
        for cfg in configs:
            if cfg.serial in self._configs:
                raise ValueError(f"printer {cfg.serial} is listed twice")
            self._configs[cfg.serial] = cfg
        self._watches: dict[str, _Watch] = {}
        self._sink_errors: dict[tuple[str, str], int] = {}
        self.started_at = time.time()
        self.running = False

    # -- lifecycle --

    def add_sink(self, sink: Sink) -> None:
        if self.running:
            raise RuntimeError("add sinks before the hub starts")
        self.sinks.append(sink)

    async def start(self) -> None:
        """Start every sink, then every printer (in the background: none waits for another)."""
        for sink in self.sinks:
            await sink.start(self)
        self.running = True
        for cfg in self._configs.values():
            self._add(cfg)

    async def stop(self) -> None:
        """Disconnect every printer, then stop the sinks (they mark printers offline)."""
        self.running = False
        watches = list(self._watches.values())
        self._watches.clear()
        await asyncio.gather(*(w.close() for w in watches))
        for sink in self.sinks:
            try:
                await sink.stop()
            except Exception:
                log.exception("sink %s failed to stop cleanly", sink.name)

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def apply(self, configs: Iterable[PrinterConfig]) -> tuple[list[str], list[str]]:
        """Watch exactly ``configs`` from now on: add the new, remove the gone, reconnect the
        changed; the others are left alone. Returns (added, removed) serials."""
        new = {cfg.serial: cfg for cfg in configs}
        removed = [s for s in self._configs if s not in new or new[s] != self._configs[s]]
        added = [s for s in new if s not in self._configs or new[s] != self._configs[s]]
        for serial in removed:
            del self._configs[serial]
            watch = self._watches.pop(serial, None)
            if watch is not None:
                await watch.close()
                self.printers.pop(serial, None)
                self._each("printer_removed", watch.watched)
        for serial in added:
            self._configs[serial] = new[serial]
            if self.running:
                self._add(new[serial])
        return added, removed

    def _add(self, cfg: PrinterConfig) -> None:
        watch = _Watch(self, cfg)
        self._watches[cfg.serial] = watch
        self.printers[cfg.serial] = watch.watched
        self._each("printer_added", watch.watched)
        watch.start()

    # -- fan-out --

    def _each(self, method: str, *args: Any) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)(*args)
            except Exception:
                key = (sink.name, method)
                count = self._sink_errors.get(key, 0)
                self._sink_errors[key] = count + 1
                if count == 0:
                    log.exception("sink %s failed in %s (logged once, then counted)", *key)

    def publish_state(self, watched: WatchedPrinter, state: PrinterState) -> None:
        watched.state = state
        watched.states_seen += 1
        self._each("state", watched, state)

    def publish_event(self, watched: WatchedPrinter, event: Event) -> None:
        watched.events_seen += 1
        if event.kind in (EventKind.CONNECTED, EventKind.RECONNECTED):
            watched.online, watched.online_since, watched.offline_since = True, time.time(), None
        elif event.kind is EventKind.DISCONNECTED:
            watched.online, watched.online_since, watched.offline_since = False, None, time.time()
        self._each("event", watched, event)

    # -- views --

    def health(self) -> dict[str, Any]:
        """For the health endpoint: ok unless a sink says otherwise."""
        sinks: dict[str, Any] = {}
        for sink in self.sinks:
            try:
                sinks[sink.name] = sink.health()
            except Exception as exc:
                sinks[sink.name] = {"ok": False, "error": str(exc)}
        online = sum(1 for p in self.printers.values() if p.online)
        return {
            "ok": self.running and all(s.get("ok", True) for s in sinks.values()),
            "uptime_seconds": round(time.time() - self.started_at, 1),
            "printers": len(self.printers),
            "printers_online": online,
            "sinks": sinks,
            "sink_errors": {f"{s}.{m}": n for (s, m), n in self._sink_errors.items()},
        }


class _Watch:
    """One printer's stream into the hub: the single place that knows the library's stream
    API."""

    def __init__(self, hub: Hub, cfg: PrinterConfig) -> None:
        self.hub = hub
        self.printer = Printer.from_config(cfg, hub.options)
        self.watched = WatchedPrinter(cfg, self.printer)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        updates = self.printer.updates()  # before start(): the whole story of the connection
        self.printer.start()
        self._task = asyncio.get_running_loop().create_task(
            self._read(updates), name=f"serve-updates-{self.watched.serial}"
        )

    async def _read(self, updates: UpdateStream) -> None:
        hub, watched = self.hub, self.watched
        async for update in updates:
            if isinstance(update, Event):
                hub.publish_event(watched, update)
            else:
                hub.publish_state(watched, update)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.printer.close()
        if self.watched.online:
            self.hub.publish_event(
                self.watched,
                Event(
                    EventKind.DISCONNECTED,
                    self.watched.serial,
                    f"stopped watching {self.watched.name}",
                    {"reason": "stopped watching"},
                ),
            )
