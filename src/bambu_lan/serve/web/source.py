"""What the dashboard needs from the farm, and an adapter over the library's ``Farm``.

The web app never touches a ``Printer`` or a session: it reads ``PrinterEntry`` snapshots,
learns which printers changed from an async stream of serials, sends commands through one
callback and reads job history and camera pictures when the source has them. ``serve`` plugs
its hub in here; ``FarmSource`` does the same over a bare ``Farm`` (tests, the demo).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bambu_lan.protocol.events import Event, EventKind
from bambu_lan.serve.hub import JOB_OUTCOMES

if TYPE_CHECKING:
    from bambu_lan.farm import Farm
    from bambu_lan.protocol.state import PrinterState
    from bambu_lan.session import ConnectionStatus

#: The controls a page may send, with the kind of value each takes.
ACTIONS = ("pause", "resume", "stop", "light", "speed")


@dataclass(frozen=True, slots=True)
class PrinterEntry:
    """One printer as the page shows it: a name, its latest state, its connection."""

    serial: str
    name: str
    state: PrinterState | None
    online: bool
    connection: str  # "connected", "connecting", "offline: <why>" (never a secret)
    has_camera: bool = False  # a picture may be had: the page asks for one
    camera_note: str = ""  # why there is none now, and what to do (plain text)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job of the history, as the history page lists it."""

    serial: str
    printer: str
    name: str
    file: str
    started_at: float | None  # time.time()
    ended_at: float | None
    outcome: str  # finished, failed, cancelled, unknown, running
    layers: int | None = None
    alerts: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """What the page calls the job (its name, else its file)."""
        return job_label(self.name, self.file)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)


def job_label(name: str | None, file: str | None) -> str:
    """A job as the page names it: the printer's name for it, else its file, else a word
    (a job started from the printer's screen, or seen before its first full report)."""
    return name or file or "unnamed job"


def connection_label(online: bool, status: ConnectionStatus) -> str:
    """A printer's connection in a word or two ("offline: <why>")."""
    if online:
        return "connected"
    if status.error is not None:
        return f"offline: {status.last_error}"
    return "offline" if status.connects else "connecting"


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    serial: str | None = None
    outcome: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 1000


class DashboardSource(Protocol):
    """Everything the web app reads from and sends to the farm."""

    def printers(self) -> Mapping[str, PrinterEntry]:
        """Every printer, now, by serial (in the order to show them by default)."""
        ...

    def updates(self) -> AsyncIterator[str]:
        """Serials of printers whose entry changed, as they change (repeats are fine)."""
        ...

    async def command(self, serial: str, action: str, value: int | bool | None) -> str:
        """Send a control; return the printer's answer in words, or raise ``BambuError``."""
        ...

    async def history(self, query: HistoryQuery) -> Sequence[JobRecord] | None:
        """Jobs matching ``query``, newest first; None when there is no history database."""
        ...

    async def snapshot(self, serial: str) -> bytes | None:
        """The latest camera picture (JPEG), or None without a camera; raises ``BambuError``
        saying why when the camera gives none."""
        ...

    def mjpeg(self, serial: str) -> AsyncIterator[bytes] | None:
        """JPEG frames of the live camera from one shared upstream, or None without one; its
        first step raises ``BambuError`` saying why when the camera gives none."""
        ...


class FarmSource:
    """A ``DashboardSource`` over the library's ``Farm``.

    Changes are found once a second by comparing each printer's snapshot object (states are
    immutable, copy-on-write, so ``is`` tells a change) and connection state: a thousand
    printers cost about 0.1 ms per second. Job history is kept in memory from the farm's events
    (``serve`` replaces it with its database).
    """

    def __init__(
        self, farm: Farm, names: Mapping[str, str] | None = None, *, interval: float = 1.0
    ) -> None:
        self.farm = farm
        self.names = dict(names or {})
        self.interval = interval
        self.jobs = JobLog()
        self._history_tasks: list[asyncio.Task[None]] = []

    def printers(self) -> dict[str, PrinterEntry]:
        out: dict[str, PrinterEntry] = {}
        for serial, printer in self.farm.printers.items():
            status = printer.status
            out[serial] = PrinterEntry(
                serial=serial,
                name=self.names.get(serial) or printer.config.label,
                state=printer.state,
                online=status.connected,
                connection=connection_label(status.connected, status),
            )
        return out

    async def updates(self) -> AsyncIterator[str]:
        self._start_history()
        seen: dict[str, tuple[object, bool]] = {}
        while True:
            for serial, printer in self.farm.printers.items():
                key = (printer.state, printer.status.connected)
                previous = seen.get(serial)
                if previous is None or previous[0] is not key[0] or previous[1] != key[1]:
                    seen[serial] = key
                    yield serial
            await asyncio.sleep(self.interval)

    async def command(self, serial: str, action: str, value: int | bool | None) -> str:
        printer = self.farm[serial]
        if action == "pause":
            result = await printer.pause()
        elif action == "resume":
            result = await printer.resume()
        elif action == "stop":
            result = await printer.stop()
        elif action == "light":
            result = await printer.set_light(bool(value))
        elif action == "speed":
            result = await printer.set_speed(int(value or 0))
        else:
            raise ValueError(f"unknown action {action!r}")
        return "accepted, confirmed by the printer" if result.confirmed else "accepted"

    # -- history kept from events --

    def _start_history(self) -> None:
        if not self._history_tasks:
            # Each printer's own event subscription: the farm's merged queue has one reader,
            # and that belongs to whoever runs the farm.
            loop = asyncio.get_running_loop()
            self._history_tasks = [
                loop.create_task(self._collect(printer.events()))
                for printer in self.farm.printers.values()
            ]

    async def _collect(self, events: AsyncIterator[Event]) -> None:
        async for event in events:
            printer = self.farm.printers.get(event.serial)
            name = self.names.get(event.serial) or (
                printer.config.label if printer else event.serial
            )
            self.jobs.record(event, name, printer.state if printer else None)

    async def history(self, query: HistoryQuery) -> list[JobRecord]:
        self._start_history()
        return self.jobs.find(query)

    async def snapshot(self, serial: str) -> bytes | None:
        return None

    def mjpeg(self, serial: str) -> AsyncIterator[bytes] | None:
        return None

    async def aclose(self) -> None:
        for task in self._history_tasks:
            task.cancel()
        for task in self._history_tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._history_tasks.clear()


class JobLog:
    """Jobs seen start and end, in memory (until ``serve``'s history database takes over)."""

    def __init__(self, size: int = 10_000) -> None:
        self._ended: deque[JobRecord] = deque(maxlen=size)
        self._running: dict[str, JobRecord] = {}

    def record(self, event: Event, name: str, state: PrinterState | None) -> None:
        serial = event.serial
        job = state.job if state else None
        if event.kind is EventKind.JOB_STARTED:
            self._running[serial] = JobRecord(
                serial=serial,
                printer=name,
                name=(job.name if job else "") or str(event.data.get("name") or ""),
                file=(job.file if job else "") or str(event.data.get("file") or ""),
                started_at=event.at,
                ended_at=None,
                outcome="running",
            )
        elif event.kind in JOB_OUTCOMES:
            started = self._running.pop(serial, None)
            self._ended.append(
                JobRecord(
                    serial=serial,
                    printer=name,
                    name=(started.name if started else "") or (job.name if job else ""),
                    file=(started.file if started else "") or (job.file if job else ""),
                    started_at=started.started_at if started else None,
                    ended_at=event.at,
                    outcome=JOB_OUTCOMES[event.kind],
                    layers=job.total_layers if job else None,
                )
            )

    def find(self, query: HistoryQuery) -> list[JobRecord]:
        return filter_jobs([*self._running.values(), *reversed(self._ended)], query)

    def running(self) -> list[JobRecord]:
        """The jobs under way now (no database has those yet)."""
        return list(self._running.values())


def filter_jobs(jobs: Sequence[JobRecord], query: HistoryQuery) -> list[JobRecord]:
    """The jobs matching ``query`` (for sources that keep their history in memory)."""
    out: list[JobRecord] = []
    for job in jobs:
        if query.serial and job.serial != query.serial:
            continue
        if query.outcome and job.outcome != query.outcome:
            continue
        when = job.started_at if job.started_at is not None else job.ended_at
        if query.since is not None and (when is None or when < query.since):
            continue
        if query.until is not None and (when is None or when >= query.until):
            continue
        out.append(job)
        if len(out) >= query.limit:
            break
    return out


def as_dict(job: JobRecord) -> dict[str, Any]:
    return {
        "serial": job.serial,
        "printer": job.printer,
        "name": job.name,
        "file": job.file,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "duration_s": job.duration,
        "outcome": job.outcome,
        "layers": job.layers,
        "alerts": list(job.alerts),
    }
