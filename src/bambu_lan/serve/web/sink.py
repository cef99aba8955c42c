"""The dashboard as one of ``serve``'s sinks: the hub's printers are the page's printers."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from bambu_lan.config import Secret
from bambu_lan.errors import BambuError
from bambu_lan.serve.hub import Hub, Sink, WatchedPrinter
from bambu_lan.serve.web.auth import how_to_log_in
from bambu_lan.serve.web.source import (
    HistoryQuery,
    JobLog,
    JobRecord,
    PrinterEntry,
    connection_label,
    filter_jobs,
)

if TYPE_CHECKING:
    from aiohttp import web

    from bambu_lan.camera import Camera, CameraFrame
    from bambu_lan.protocol.events import Event
    from bambu_lan.protocol.state import PrinterState
    from bambu_lan.serve.settings import ServeSettings
    from bambu_lan.serve.web.app import Dashboard

log = logging.getLogger("bambu_lan.serve.web")

SNAPSHOT_MAX_AGE = 5.0  # seconds a card picture is reused for other pages
SNAPSHOT_TIMEOUT = 10.0
CAMERA_RETRY = 60.0  # a camera that failed is tried again after this long
TOKEN_ENV = "BAMBU_WEB_TOKEN"  # noqa: S105 (a variable name, not a secret)


class WebSink(Sink):
    """Keeps the page's cards current from the hub's updates; sends its controls to the hub."""

    name = "web"

    def __init__(self, secret: Secret | None, *, bind: str = "127.0.0.1", port: int = 0) -> None:
        self.secret = secret
        self.bind = bind
        self.port = port
        self.hub: Hub | None = None
        self.jobs = JobLog()
        self._history_failed = False
        self._snapshots: dict[str, tuple[float, bytes]] = {}
        self._snapshot_tasks: dict[str, asyncio.Future[CameraFrame]] = {}
        self._camera_failed: dict[str, float] = {}  # serial -> time.monotonic() of a failure
        self.dashboard: Dashboard | None = None
        # Changed serials: a set, so a page that is not being served never grows a backlog.
        self._changed: set[str] = set()
        self._wake = asyncio.Event()

    # -- Sink --

    async def start(self, hub: Hub) -> None:
        self.hub = hub
        log.info("%s", how_to_log_in(bool(self.secret), f"http://{self.bind}:{self.port}/"))

    def setup_http(self, app: web.Application) -> None:
        from bambu_lan.serve.web.app import install

        self.dashboard = install(app, self, secret=self.secret)

    def printer_added(self, printer: WatchedPrinter) -> None:
        self._mark(printer.serial)

    def printer_removed(self, printer: WatchedPrinter) -> None:
        self._mark(printer.serial)

    def state(self, printer: WatchedPrinter, state: PrinterState) -> None:
        self._mark(printer.serial)

    def event(self, printer: WatchedPrinter, event: Event) -> None:
        self.jobs.record(event, printer.name, printer.state)
        self._mark(printer.serial)

    def _mark(self, serial: str) -> None:
        self._changed.add(serial)
        self._wake.set()

    def health(self) -> dict[str, Any]:
        pages = len(self.dashboard.live.subscribers) if self.dashboard else 0
        return {"ok": True, "open_pages": pages, "controls": bool(self.secret)}

    # -- DashboardSource --

    def printers(self) -> dict[str, PrinterEntry]:
        if self.hub is None:
            return {}
        out: dict[str, PrinterEntry] = {}
        for serial, watched in self.hub.printers.items():
            out[serial] = PrinterEntry(
                serial=serial,
                name=watched.name,
                state=watched.state,
                online=watched.online,
                connection=connection_label(watched.online, watched.status),
                has_camera=self._has_camera(serial),
            )
        return out

    async def updates(self) -> AsyncIterator[str]:
        while True:
            await self._wake.wait()
            self._wake.clear()
            changed, self._changed = self._changed, set()
            for serial in changed:
                yield serial

    async def command(self, serial: str, action: str, value: int | bool | None) -> str:
        if self.hub is None or serial not in self.hub.printers:
            raise KeyError(serial)
        result = await self.hub.printers[serial].command(action, value)
        return "accepted, confirmed by the printer" if result.confirmed else "accepted"

    async def history(self, query: HistoryQuery) -> Sequence[JobRecord] | None:
        """From serve's history database when it keeps one (plus the jobs under way and those
        still waiting to be written); else the jobs seen since serve started."""
        from bambu_lan.serve.history import HistorySink

        if self.hub is None:
            return []
        keeper = next((s for s in self.hub.sinks if isinstance(s, HistorySink)), None)
        if keeper is None:
            return self.jobs.find(query)
        try:
            stored = await keeper.store.query(
                serials=[query.serial] if query.serial else (),
                since=query.since,  # on the end time: a superset of the jobs started since
                limit=query.limit,
            )
        except Exception as exc:  # the database is down: say so in the log, show what we have
            if not self._history_failed:
                log.warning("web: cannot read the job history: %s", exc)
            self._history_failed = True
            stored = []
        else:
            self._history_failed = False
        seen = {r.job_id for r in stored}
        waiting = [r for r in reversed(keeper.pending) if r.job_id not in seen]
        records = [
            JobRecord(
                serial=r.serial,
                printer=r.printer,
                name=r.name,
                file=r.file,
                started_at=r.started_at,
                ended_at=r.ended_at,
                outcome=r.outcome,
                layers=r.layers or None,
                alerts=r.alerts,
            )
            for r in [*waiting, *stored]
        ]
        return filter_jobs([*self.jobs.running(), *records], query)

    def _camera(self, serial: str) -> Camera | None:
        """The printer's JPEG camera (A1, P1); None for RTSPS models and unknown printers."""
        from bambu_lan.camera import camera_kind

        if self.hub is None or serial not in self.hub.printers:
            return None
        printer = self.hub.printers[serial].printer
        info = printer.info
        if camera_kind(serial, info.model_code if info else "") != "jpeg":
            return None
        return printer.camera

    def _has_camera(self, serial: str) -> bool:
        failed = self._camera_failed.get(serial)
        if failed is not None and time.monotonic() - failed < CAMERA_RETRY:
            return False
        return self._camera(serial) is not None

    async def snapshot(self, serial: str) -> bytes | None:
        camera = self._camera(serial)
        if camera is None:
            return None
        cached = self._snapshots.get(serial)
        if cached is not None and time.monotonic() - cached[0] < SNAPSHOT_MAX_AGE:
            return cached[1]
        pending = self._snapshot_tasks.get(serial)
        if pending is None:  # one fetch per printer however many pages ask at once
            pending = asyncio.ensure_future(camera.snapshot(timeout=SNAPSHOT_TIMEOUT))
            self._snapshot_tasks[serial] = pending
            pending.add_done_callback(lambda _: self._snapshot_tasks.pop(serial, None))
        try:
            frame = await asyncio.shield(pending)
        except BambuError as exc:
            if serial not in self._camera_failed:
                log.info("web: no camera picture from %s: %s", serial, exc)
            self._camera_failed[serial] = time.monotonic()
            self._mark(serial)  # the card hides its picture
            return None
        if self._camera_failed.pop(serial, None) is not None:
            self._mark(serial)
        self._snapshots[serial] = (time.monotonic(), frame.jpeg)
        return frame.jpeg

    def mjpeg(self, serial: str) -> AsyncIterator[bytes] | None:
        camera = self._camera(serial)
        if camera is None:
            return None
        return _jpegs(camera)


async def _jpegs(camera: Camera) -> AsyncIterator[bytes]:
    """The camera's frames as JPEG bytes, from the shared upstream, until it fails."""
    try:
        with camera.frames() as frames:
            async for frame in frames:
                yield frame.jpeg
    except BambuError as exc:
        log.info("web: live camera of %s ended: %s", camera.config.label, exc)


def create_sink(settings: ServeSettings) -> WebSink:
    """The web sink for ``serve``'s settings (``web_token``, else ``$BAMBU_WEB_TOKEN``)."""
    secret = settings.web_token
    if secret is None and os.environ.get(TOKEN_ENV):
        secret = Secret(os.environ[TOKEN_ENV])
    return WebSink(secret, bind=settings.bind, port=settings.http_port or 0)
