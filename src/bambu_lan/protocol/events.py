"""Events derived from successive snapshots: what a person or a farm monitor wants to hear.

A job's terminal event (finished, failed, cancelled, or ``job_ended`` when it vanished unseen)
is delivered exactly once, however many times the printer repeats its final state: across
deltas, ``msg:0`` resyncs and reconnects. That is why job tracking keeps its own memory instead
of diffing two snapshots only.

A job or an HMS alert already there at the first full report is announced once, with
``present_at_connect: true`` in the event's data. A job whose identity (file, name, task ids)
changes while it was active ends (``job_ended``, outcome ``unknown``) before the new one starts:
that is what a job finishing and another starting while we were away looks like.
"""

from __future__ import annotations

import time
from dataclasses import field
from enum import StrEnum
from typing import Any

from bambu_lan.protocol.errors_table import TASK_CANCELED
from bambu_lan.protocol.records import Record, record
from bambu_lan.protocol.state import Job, JobState, PrinterState

_UNKNOWN = JobState.UNKNOWN


class EventKind(StrEnum):
    CONNECTED = "connected"  # the first accepted connection
    RECONNECTED = "reconnected"  # a later one, after a drop
    DISCONNECTED = "disconnected"
    RETRYING = "retrying"  # a connection attempt failed for a passing reason; next try soon
    RESYNCED = "resynced"  # the first full report after a reconnect (or a silence) arrived
    SILENT = "silent"  # the watchdog heard nothing for a while and asked for data
    JOB_STARTED = "job_started"
    JOB_PAUSED = "job_paused"
    JOB_RESUMED = "job_resumed"
    JOB_FINISHED = "job_finished"
    JOB_FAILED = "job_failed"
    JOB_CANCELLED = "job_cancelled"
    JOB_ENDED = "job_ended"  # ended unseen (we were away, or it vanished): outcome unknown
    LAYER_CHANGED = "layer_changed"
    HMS_RAISED = "hms_raised"
    HMS_CLEARED = "hms_cleared"


TERMINAL_KINDS = frozenset(
    {EventKind.JOB_FINISHED, EventKind.JOB_FAILED, EventKind.JOB_CANCELLED, EventKind.JOB_ENDED}
)


def _job_key(state: PrinterState) -> tuple[str, str, str]:
    job = state.job
    return (job.file, job.name, job.ident)


def _same_job(old: tuple[str, str, str], new: tuple[str, str, str]) -> bool:
    """True when ``new`` is ``old`` with blanks filled in (the printer names the job during
    PREPARE); any part that was known and now differs means another job."""
    return all(not a or a == b for a, b in zip(old, new, strict=True))


@record(slots=True)
class Event(Record):
    kind: EventKind
    serial: str
    message: str  # one line in words
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind.value,
            "serial": self.serial,
            "message": self.message,
            "at": self.at,
            **self.data,
        }


class EventTracker:
    """Diffs snapshots into events; keeps per-job memory across reconnects."""

    def __init__(self, serial: str) -> None:
        self.serial = serial
        self._job_key: tuple[str, str, str] | None = None  # the job we are following
        self._job_label = ""
        self._job_terminal = False  # its terminal event was delivered
        self._last: PrinterState | None = None
        # The last snapshot whose job state was known: a delta that arrives before the first
        # full report has no gcode_state, and must not make the job in that report look new.
        self._last_known: PrinterState | None = None
        self._cancel_requested = False
        self._complete_seen = False  # a full report has been seen (later alerts are news)

    @staticmethod
    def _job_marks(job: Job) -> tuple[Any, ...]:
        """What job events are made of: two jobs with the same marks make none between them
        (progress and times alone never do)."""
        return (job.state, job.layer, job.file, job.name, job.ident)

    def note_stop_requested(self) -> None:
        """We sent print.stop: a FAILED that follows is a cancellation even if print_error is
        already cleared when we see it."""
        self._cancel_requested = True

    def update(self, new: PrinterState) -> list[Event]:
        old = self._last
        self._last = new
        if (
            old is not None
            and old.job is new.job
            and old.hms is new.hms
            and (self._complete_seen or not new.complete)
        ):
            # Most reports change neither the job nor the alerts (snapshots share unchanged
            # sections): nothing to tell. Keep following the newest snapshot.
            if self._last_known is old:
                self._last_known = new
            return []
        events: list[Event] = []
        at_connect = new.complete and not self._complete_seen
        job = new.job
        if job.state is not _UNKNOWN:
            known = self._last_known
            # An unchanged job section (the same object) cannot make a job event (the job
            # ids are part of it: Job.ident), nor can one where only progress and times
            # moved: job events come from its state, identity and layer alone.
            if known is None or (
                known.job is not job and self._job_marks(known.job) != self._job_marks(job)
            ):
                self._job_events(known, new, events)
            self._last_known = new
        if old is None or old.hms is not new.hms:
            self._hms_events(old, new, events, at_connect)
        if at_connect:
            self._complete_seen = True
        return events

    def _event(self, kind: EventKind, message: str, **data: Any) -> Event:
        return Event(kind=kind, serial=self.serial, message=message, data=data)

    def _end_unseen(self, why: str, out: list[Event]) -> None:
        """The followed job is gone without a terminal state we saw."""
        if self._job_key is not None and not self._job_terminal:
            self._job_terminal = True
            label = self._job_label or "job"
            out.append(
                self._event(
                    EventKind.JOB_ENDED,
                    f"{label} ended ({why}; outcome unknown)",
                    file=self._job_key[0],
                    outcome="unknown",
                )
            )

    def _job_events(self, old: PrinterState | None, new: PrinterState, out: list[Event]) -> None:
        job = new.job
        key = _job_key(new)
        old_state = old.job.state if old is not None else None
        label = job.name or job.file or "job"
        if (
            self._job_key is not None
            and not self._job_terminal
            and not _same_job(self._job_key, key)
            and (job.state.active or job.state in (JobState.FINISH, JobState.FAILED))
        ):
            # Another job is on the printer: ours ended while we were not looking.
            self._end_unseen("another job is on the printer", out)
            self._job_key = None
        if job.state.active:
            if self._job_key is None and old is None:
                # First sight of a job already underway: announce it once, as found.
                self._job_key, self._job_terminal, self._job_label = key, False, label
                out.append(
                    self._event(
                        EventKind.JOB_STARTED,
                        f"{label} in progress",
                        file=job.file,
                        name=job.name,
                        total_layers=job.total_layers,
                        present_at_connect=True,
                    )
                )
            elif (
                self._job_key is None
                or self._job_terminal
                or (self._job_key != key and old_state is not None and not old_state.active)
            ):
                self._job_key, self._job_terminal, self._job_label = key, False, label
                self._cancel_requested = False
                out.append(
                    self._event(
                        EventKind.JOB_STARTED,
                        f"{label} started",
                        file=job.file,
                        name=job.name,
                        total_layers=job.total_layers,
                    )
                )
            elif self._job_key != key:
                # The printer filled in the name during PREPARE.
                self._job_key, self._job_label = key, label
            if old_state is JobState.RUNNING and job.state is JobState.PAUSE:
                reason = new.print_error.text if new.print_error else job.stage
                out.append(
                    self._event(
                        EventKind.JOB_PAUSED,
                        f"{label} paused" + (f": {reason}" if reason else ""),
                        reason=reason,
                        print_error=new.print_error.hex if new.print_error else None,
                    )
                )
            elif old_state is JobState.PAUSE and job.state is JobState.RUNNING:
                out.append(self._event(EventKind.JOB_RESUMED, f"{label} resumed"))
            if (
                old is not None
                and not (out and out[-1].kind is EventKind.JOB_STARTED)  # a new job's layer
                and old.job.state.active
                and job.layer != old.job.layer
                and job.layer > 0
            ):
                out.append(
                    self._event(
                        EventKind.LAYER_CHANGED,
                        f"layer {job.layer}/{job.total_layers}",
                        layer=job.layer,
                        total_layers=job.total_layers,
                    )
                )
            return
        if job.state in (JobState.FINISH, JobState.FAILED):
            if self._job_key is None:
                # Ended before we were watching: nothing to report, and never report it later.
                self._job_key, self._job_terminal = key, True
                return
            if self._job_terminal:
                return
            self._job_terminal = True
            if job.state is JobState.FINISH:
                out.append(self._event(EventKind.JOB_FINISHED, f"{label} finished", file=job.file))
                return
            error = new.print_error
            cancelled = self._cancel_requested or (
                error is not None and error.value == TASK_CANCELED
            )
            self._cancel_requested = False
            if cancelled:
                out.append(
                    self._event(EventKind.JOB_CANCELLED, f"{label} cancelled", file=job.file)
                )
            else:
                text = (error.text or f"print_error {error.hex}") if error else "no error code"
                out.append(
                    self._event(
                        EventKind.JOB_FAILED,
                        f"{label} failed: {text}",
                        file=job.file,
                        print_error=error.hex if error else None,
                    )
                )
            return
        if job.state is JobState.IDLE and self._job_key is not None:
            # Back to idle, after the terminal state or without one we saw (a reboot, a missed
            # report): there is no job now, so a later job with the same name is new.
            self._end_unseen("the printer is idle", out)
            self._job_key = None

    def _hms_events(
        self, old: PrinterState | None, new: PrinterState, out: list[Event], at_connect: bool
    ) -> None:
        old_codes = {a.code: a for a in old.hms} if old is not None else {}
        new_codes = {a.code: a for a in new.hms}
        if old_codes.keys() == new_codes.keys():
            return
        for code, alert in new_codes.items():
            if code not in old_codes:
                text = alert.text or "see the wiki"
                out.append(
                    self._event(
                        EventKind.HMS_RAISED,
                        f"{alert.code} ({alert.severity}): {text}",
                        code=alert.code,
                        severity=alert.severity,
                        text=alert.text,
                        wiki_url=alert.wiki_url,
                        **({"present_at_connect": True} if at_connect else {}),
                    )
                )
        for code in old_codes:
            if code not in new_codes:
                out.append(self._event(EventKind.HMS_CLEARED, f"{code} cleared", code=code))
