"""The job history sink: follows each printer's job from start to end and writes one row per
job (``history_store``).

A job that ends while the database is unavailable (PostgreSQL down, SQLite locked, disk full)
is kept: in memory, and in a small spool file beside the default database, so that even a
restart of ``serve`` loses nothing. A writer task retries with backoff (1 s to 60 s) and logs
each new problem once, and the recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bambu_lan.protocol.events import Event, EventKind
from bambu_lan.protocol.state import PrinterState
from bambu_lan.serve.history_store import HistoryStore, JobRecord, open_store, redact_url
from bambu_lan.serve.hub import JOB_OUTCOMES, Hub, Sink, WatchedPrinter

log = logging.getLogger("bambu_lan.serve.history")

_PLATE = re.compile(r"plate_(\d+)")


@dataclass(slots=True)
class _OpenJob:
    serial: str
    printer: str
    model: str
    file: str
    name: str
    started_at: float
    seen_start: bool
    layers: int = 0
    layer_reached: int = 0
    plate: int | None = None
    filament: str = ""
    alerts: list[str] = field(default_factory=list)

    def note(self, state: PrinterState) -> None:
        job = state.job
        if self.file and job.file and job.file != self.file:
            return  # another job's state: this one ended unseen (``job_ended`` follows)
        self.file = job.file or self.file
        self.name = job.name or self.name
        self.layers = max(self.layers, job.total_layers)
        self.layer_reached = max(self.layer_reached, job.layer)
        gcode = state.raw.get("gcode_file")
        match = _PLATE.search(gcode if isinstance(gcode, str) else job.file)
        if match:
            self.plate = int(match[1])
        if not self.filament:
            self.filament = _filament(state)
        if state.print_error is not None:
            self.alert(f"print_error {state.print_error.hex}")

    def alert(self, text: str) -> None:
        if text not in self.alerts:
            self.alerts.append(text)

    def close(self, ended_at: float, outcome: str) -> JobRecord:
        return JobRecord(
            job_id=f"{self.serial}-{int(self.started_at * 1000)}",
            serial=self.serial,
            printer=self.printer,
            model=self.model,
            file=self.file,
            name=self.name,
            plate=self.plate,
            started_at=self.started_at,
            ended_at=ended_at,
            outcome=outcome,
            layers=self.layers,
            layer_reached=self.layer_reached,
            filament=self.filament,
            alerts=tuple(self.alerts),
            seen_start=self.seen_start,
        )


def _filament(state: PrinterState) -> str:
    tray_id = state.active_tray
    if tray_id is None:
        return ""
    trays = [t for unit in state.ams for t in unit.trays]
    if state.external_spool is not None:
        trays.append(state.external_spool)
    for tray in trays:
        if tray.tray_id == tray_id and not tray.empty:
            return " ".join(x for x in (tray.type, tray.color_hex) if x)
    return ""


class HistorySink(Sink):
    name = "history"

    def __init__(
        self,
        url: str,
        *,
        spool: Path | None = None,
        max_delay: float = 60.0,
        store: HistoryStore | None = None,
    ) -> None:
        self.url = url
        self.store: HistoryStore = store or open_store(url)
        self.spool = spool
        self.max_delay = max_delay
        self.pending: list[JobRecord] = []
        self.written = 0
        self.last_error = ""
        self._open: dict[str, _OpenJob] = {}
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    # -- lifecycle --

    async def start(self, hub: Hub) -> None:
        self.pending.extend(self._read_spool())
        if self.pending:
            log.info("history: %d job(s) kept from before, writing them", len(self.pending))
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        self._wake.set()

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self.pending:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), 5)
        if self.pending:
            log.warning(
                "history: %d job(s) not written yet%s",
                len(self.pending),
                f"; kept in {self.spool} for the next start" if self.spool else " (lost)",
            )
        with contextlib.suppress(Exception):
            await self.store.close()

    def health(self) -> dict[str, Any]:
        return {
            "ok": not self.last_error,
            "database": redact_url(self.store.url),
            "jobs_written": self.written,
            "jobs_pending": len(self.pending),
            "last_error": self.last_error,
        }

    # -- following jobs --

    def state(self, printer: WatchedPrinter, state: PrinterState) -> None:
        job = self._open.get(printer.serial)
        if job is None and state.job.state.active:
            # A job underway when we first see it (serve started mid-job): follow it from now.
            job = self._open[printer.serial] = self._new(printer, state, state.updated_at, False)
        if job is not None:
            job.note(state)

    def event(self, printer: WatchedPrinter, event: Event) -> None:
        if event.kind is EventKind.JOB_STARTED:
            old = self._open.get(printer.serial)
            job = self._new(printer, printer.state, event.at, True)
            if old is not None and not old.seen_start and event.at - old.started_at < 60:
                job.alerts = old.alerts  # the state of this very start arrived first
            self._open[printer.serial] = job
            return
        outcome = JOB_OUTCOMES.get(event.kind)
        if outcome is not None:
            found = self._open.pop(printer.serial, None)
            if found is None:  # not seen under way: what the event says, then the state
                found = self._new(printer, None, event.at, False)
                found.file = str(event.data.get("file") or "")
            job = found
            if printer.state is not None:
                job.note(printer.state)
            if event.kind is EventKind.JOB_FAILED and event.data.get("print_error"):
                job.alert(f"print_error {event.data['print_error']}")
            self.keep(job.close(event.at, outcome))
            return
        current = self._open.get(printer.serial)
        if current is None:
            return
        if event.kind is EventKind.HMS_RAISED:
            current.alert(str(event.data.get("code") or event.message))
        elif event.kind is EventKind.JOB_PAUSED and event.data.get("reason"):
            current.alert(f"paused: {event.data['reason']}")

    def _new(
        self, printer: WatchedPrinter, state: PrinterState | None, at: float, seen: bool
    ) -> _OpenJob:
        job = _OpenJob(
            serial=printer.serial,
            printer=printer.name,
            model=printer.model,
            file="",
            name="",
            started_at=at,
            seen_start=seen,
        )
        if state is not None:
            job.note(state)
        return job

    # -- writing --

    def keep(self, record: JobRecord) -> None:
        """Keep a finished job (memory and spool) until the database has it."""
        self.pending.append(record)
        self._append_spool(record)
        self._wake.set()

    async def flush(self) -> None:
        """Write the kept jobs now (raises when the database is unavailable)."""
        batch = list(self.pending)
        if not batch:
            return
        await self.store.add(batch)
        done = {r.job_id for r in batch}
        self.pending = [r for r in self.pending if r.job_id not in done]
        self.written += len(batch)
        self._rewrite_spool()

    async def _write_loop(self) -> None:
        delay = 1.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.pending:
                try:
                    await self.flush()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}".strip()
                    if error != self.last_error:
                        log.error(
                            "history: cannot write to %s (%s); %d job(s) kept, retrying",
                            redact_url(self.store.url),
                            redact_url(error),
                            len(self.pending),
                        )
                    self.last_error = error
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
                    self._wake.clear()
                    delay = min(delay * 2, self.max_delay)
                    continue
                if self.last_error:
                    log.info("history: database back; kept jobs written")
                self.last_error = ""
                delay = 1.0

    # -- the spool file: kept jobs survive a restart --

    def _read_spool(self) -> list[JobRecord]:
        if self.spool is None or not self.spool.exists():
            return []
        records = []
        try:
            for line in self.spool.read_bytes().splitlines():
                with contextlib.suppress(orjson.JSONDecodeError, TypeError, KeyError):
                    records.append(JobRecord.from_dict(orjson.loads(line)))
        except OSError as exc:
            log.error("history: cannot read the kept jobs in %s: %s", self.spool, exc)
        return records

    def _append_spool(self, record: JobRecord) -> None:
        if self.spool is None:
            return
        try:
            self.spool.parent.mkdir(parents=True, exist_ok=True)
            with self.spool.open("ab") as handle:
                handle.write(orjson.dumps(record.to_dict()) + b"\n")
        except OSError as exc:  # disk full: still kept in memory
            log.error("history: cannot keep a job in %s (%s); kept in memory", self.spool, exc)

    def _rewrite_spool(self) -> None:
        if self.spool is None or not self.spool.exists():
            return
        try:
            if not self.pending:
                self.spool.unlink()
                return
            tmp = self.spool.with_suffix(".tmp")
            tmp.write_bytes(b"".join(orjson.dumps(r.to_dict()) + b"\n" for r in self.pending))
            os.replace(tmp, self.spool)
        except OSError as exc:
            log.error("history: cannot update %s: %s", self.spool, exc)
