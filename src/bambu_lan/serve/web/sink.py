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
from bambu_lan.serve.text import safe
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

    from bambu_lan.camera import Camera, CameraKind, CameraOptions, FrameSubscription
    from bambu_lan.protocol.events import Event
    from bambu_lan.protocol.state import PrinterState
    from bambu_lan.serve.settings import ServeSettings
    from bambu_lan.serve.web.app import Dashboard

log = logging.getLogger("bambu_lan.serve.web")

SNAPSHOT_MAX_AGE = 5.0  # seconds a card picture is reused for other pages
# X1/P2S/H2: a picture without a live viewer costs an RTSPS session and an ffmpeg start.
RTSPS_SNAPSHOT_MAX_AGE = 30.0
SNAPSHOT_TIMEOUT = 10.0
CAMERA_RETRY = 60.0  # a camera that failed is tried again after this long
TOKEN_ENV = "BAMBU_WEB_TOKEN"  # noqa: S105 (a variable name, not a secret)


class WebSink(Sink):
    """Keeps the page's cards current from the hub's updates; sends its controls to the hub."""

    name = "web"

    def __init__(
        self,
        secret: Secret | None,
        *,
        bind: str = "127.0.0.1",
        port: int = 0,
        camera_options: CameraOptions | None = None,
    ) -> None:
        self.secret = secret
        self.bind = bind
        self.port = port
        self.camera_options = camera_options  # the live view's; None: the library's defaults
        self.hub: Hub | None = None
        self.jobs = JobLog()
        self._history_failed = False
        self._snapshots: dict[str, tuple[float, bytes]] = {}
        # serial -> (time.monotonic() of the last failure, why, in words)
        self._camera_failed: dict[str, tuple[float, str]] = {}
        self._live_views: dict[str, set[FrameSubscription]] = {}  # serial -> open live views
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
        if printer.serial in self._live_views:
            self._end_live_views_if_off(printer.serial)

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
            camera = self._camera(serial)
            note = self._note(serial, camera)
            out[serial] = PrinterEntry(
                serial=serial,
                name=watched.name,
                state=watched.state,
                online=watched.online,
                connection=connection_label(watched.online, watched.status),
                has_camera=camera is not None and not note,
                camera_note=note,
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

    def _camera(self, serial: str) -> tuple[WatchedPrinter, CameraKind] | None:
        """The printer and its kind of camera; None for unknown printers and models."""
        from bambu_lan.camera import camera_kind

        watched = self.hub.printers.get(serial) if self.hub is not None else None
        if watched is None:
            return None
        info = watched.printer.info
        kind = camera_kind(serial, info.model_code if info else "")
        return None if kind is None else (watched, kind)

    def camera_note(self, serial: str) -> str:
        """Why the page shows no camera picture now, in a sentence with what to do ("" when
        it works or has not been tried)."""
        return self._note(serial, self._camera(serial))

    def _note(self, serial: str, found: tuple[WatchedPrinter, CameraKind] | None) -> str:
        if found is None:
            return ""
        off = self._live_view_off(*found)
        if off:  # the printer says so itself: no connection tried
            return off
        failed = self._camera_failed.get(serial)
        if failed is not None and time.monotonic() - failed[0] < CAMERA_RETRY:
            return failed[1]
        return ""

    @staticmethod
    def _live_view_off(watched: WatchedPrinter, kind: CameraKind) -> str:
        """Why an X1/P2S/H2's report says its LAN live view is off, and what to do; or ""."""
        if kind != "rtsps" or watched.state is None:
            return ""
        from bambu_lan.camera_rtsp import LIVE_VIEW_HINT, live_view_problem

        problem = live_view_problem(watched.state.raw)
        return f"{problem}; {LIVE_VIEW_HINT}" if problem else ""

    def _camera_failure(self, serial: str, exc: BambuError) -> str:
        """Remember why the camera gave nothing (the cards say it, the endpoints answer it
        until ``CAMERA_RETRY`` has passed); the words, for the caller to raise."""
        note = f"{exc}; {exc.hint}" if exc.hint else str(exc)
        if self._camera_failed.get(serial, (0.0, ""))[1] != note:
            log.info("web: no camera picture from %s: %s", serial, safe(note, 400))
        self._camera_failed[serial] = (time.monotonic(), note)
        self._mark(serial)  # the card shows why instead of its picture
        return note

    def _camera_works(self, serial: str) -> None:
        if self._camera_failed.pop(serial, None) is not None:
            self._mark(serial)

    async def snapshot(self, serial: str) -> bytes | None:
        from bambu_lan.camera import CameraUnavailable

        found = self._camera(serial)
        if found is None:
            return None
        watched, kind = found
        note = self.camera_note(serial)
        if note:
            raise CameraUnavailable(note)
        cached = self._snapshots.get(serial)
        max_age = SNAPSHOT_MAX_AGE if kind == "jpeg" else RTSPS_SNAPSHOT_MAX_AGE
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return cached[1]
        try:  # shared with serve's other sinks: one picture at a time per printer
            frame = await watched.camera_picture(SNAPSHOT_TIMEOUT)
        except BambuError as exc:
            raise CameraUnavailable(self._camera_failure(serial, exc)) from None
        self._camera_works(serial)
        self._snapshots[serial] = (time.monotonic(), frame.jpeg)
        return frame.jpeg

    def mjpeg(self, serial: str) -> AsyncIterator[bytes] | None:
        found = self._camera(serial)
        if found is None:
            return None
        watched, kind = found
        if self.camera_options is None:
            camera = watched.printer.camera
        else:
            from bambu_lan.camera import Camera

            camera = Camera(watched.config, kind=kind, options=self.camera_options)
        return self._live(serial, camera)

    async def _live(self, serial: str, camera: Camera) -> AsyncIterator[bytes]:
        """The camera's frames as JPEG bytes, from the printer's one shared upstream (an
        X1/P2S/H2's RTSPS session and ffmpeg run while someone watches, then linger 10 s).
        A camera that gives nothing raises ``CameraUnavailable`` with why, before any frame;
        one that fails later ends the stream."""
        from bambu_lan.camera import CameraUnavailable

        note = self.camera_note(serial)
        if note:
            raise CameraUnavailable(note)
        try:
            frames = camera.frames()  # X1/P2S/H2 without ffmpeg: at once
        except BambuError as exc:
            raise CameraUnavailable(self._camera_failure(serial, exc)) from None
        streaming = False
        views = self._live_views.setdefault(serial, set())
        views.add(frames)
        try:
            with frames:
                async for frame in frames:
                    if not streaming:
                        streaming = True
                        self._camera_works(serial)
                    yield frame.jpeg
        except BambuError as exc:
            if not streaming:
                raise CameraUnavailable(self._camera_failure(serial, exc)) from None
            log.info("web: live camera of %s ended: %s", serial, safe(exc, 400))
        finally:
            views.discard(frames)
            if not views and self._live_views.get(serial) is views:
                del self._live_views[serial]

    def _end_live_views_if_off(self, serial: str) -> None:
        """The printer says its live view is off: its live views end now (their pages show
        why), rather than their sessions being retried while nobody sees a picture."""
        found = self._camera(serial)
        note = self._live_view_off(*found) if found is not None else ""
        if note:
            for frames in list(self._live_views.get(serial, ())):
                log.info("web: live camera of %s stopped: %s", serial, safe(note, 400))
                frames.close()


def create_sink(settings: ServeSettings) -> WebSink:
    """The web sink for ``serve``'s settings (``web_token``, else ``$BAMBU_WEB_TOKEN``)."""
    secret = settings.web_token
    if secret is None and os.environ.get(TOKEN_ENV):
        secret = Secret(os.environ[TOKEN_ENV])
    return WebSink(secret, bind=settings.bind, port=settings.http_port or 0)
