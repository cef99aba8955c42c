"""The printer core: everything between MQTT payloads and meaning, with no I/O.

``PrinterCore`` is a sans-I/O state machine in the manner of h11 and wsproto: no sockets, no
tasks, no clock of its own. The transport (``Printer``'s session, the doctor, a test, a
benchmark) tells it what happened, passing the time as ``now`` (any monotonic clock, seconds),
and gets back a ``Step``: what to publish, the new state, the events, the commands settled.

::

    core = PrinterCore("03919A3B1200123")
    step = core.connected(now)            # after an accepted CONNACK + SUBACK
    for out in step.outgoing:             # get_version, then pushall
        publish(out.payload, qos=out.qos)
    step = core.feed(payload, now)        # every payload from device/<serial>/report
    step.state                            # the new PrinterState, or None when unchanged
    step.events                           # [Event, ...]: job, HMS and link events, in order
    step.settled                          # [Pending, ...]: commands whose outcome is known
    out, pending = core.request(cmd.pause(), now)
    publish(out.payload, qos=out.qos)     # later: pending.done, pending.error(), pending.reply
    step = core.silence(now)              # the watchdog saw nothing: pushing.start + pushall
    step = core.disconnected(now, "the printer closed the connection")
    step = core.retrying(now, error, delay=4.0)   # a failed attempt that will be retried

What it does: lenient decoding (``DecodeStats``), the copy-on-write merge of deltas, typed
immutable ``PrinterState`` snapshots, events (a job's terminal event exactly once, across
resyncs and reconnects; the link events ``connected``, ``reconnected``, ``disconnected``,
``retrying``, ``silent`` and ``resynced``), command replies matched by ``(class,
sequence_id)``, a Developer Mode refusal seen in a reply or only as the HMS alert,
confirmation of a command from the state, and the pushall rate limit
(``pushall_min_interval``, times from ``now``).

Events and snapshots carry wall-clock stamps (``Event.at``, ``PrinterState.updated_at``) for
people; the core's own decisions use ``now`` only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import orjson
from orjson import JSONDecodeError

from bambu_lan.errors import CommandRejected, DeveloperModeRequired, NotConnected
from bambu_lan.protocol import commands as cmd
from bambu_lan.protocol.commands import Command, Reply, SequenceIds, parse_reply
from bambu_lan.protocol.decode import NOT_OBJECT, DecodeStats, decode_payload
from bambu_lan.protocol.events import Event, EventKind, EventTracker
from bambu_lan.protocol.merge import apply_push
from bambu_lan.protocol.records import Record, record
from bambu_lan.protocol.state import (
    PrinterInfo,
    PrinterState,
    StateBuilder,
    info_from_version_reply,
)

_loads = orjson.loads
_new_step = object.__new__

# The HMS alert a printer raises when it refuses an unsigned command (Developer Mode off).
DEV_MODE_HMS = "HMS_0500_0500_0001_0007"


@record(slots=True)
class Outgoing(Record):
    """One message to publish on ``device/<serial>/request``."""

    payload: bytes
    qos: int
    command: Command
    sequence_id: str


class Outcome(enum.StrEnum):
    """How a pending command was settled."""

    REPLIED = "replied"  # the printer answered (see Pending.reply: success or refusal)
    CONFIRMED = "confirmed"  # no answer, but the state shows the effect (some firmware)
    DEVELOPER_MODE = "developer_mode"  # no answer, but the Developer Mode HMS alert appeared
    DISCONNECTED = "disconnected"  # the connection dropped first
    CANCELLED = "cancelled"  # the caller gave up (timeout)


class Pending:
    """A command sent and not yet settled; the core settles it from what it is fed."""

    __slots__ = (
        "command",
        "outcome",
        "reason",
        "reply",
        "sent_at",
        "sequence_id",
        "was_alerted",
    )

    def __init__(self, command: Command, sequence_id: str, sent_at: float, dev_hms: bool) -> None:
        self.command = command
        self.sequence_id = sequence_id
        self.sent_at = sent_at
        self.reply: Reply | None = None
        self.outcome: Outcome | None = None
        self.reason = ""  # for DISCONNECTED: why
        self.was_alerted = dev_hms  # the Developer Mode alert was already up when sent

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def error(self) -> Exception | None:
        """The error this outcome means for the caller, or None when the command went through
        (a success reply, or the state confirming it). Not meaningful before ``done``."""
        label = self.command.label
        if self.outcome is Outcome.REPLIED and self.reply is not None:
            reply = self.reply
            if reply.developer_mode_required:
                return DeveloperModeRequired(reply.reason, reply.err_code, command=label)
            if reply.ok is False:
                return CommandRejected(reply.reason, reply.err_code, command=label)
            return None
        if self.outcome is Outcome.DEVELOPER_MODE:
            return DeveloperModeRequired.from_hms(command=label)
        if self.outcome is Outcome.DISCONNECTED:
            return NotConnected(
                f"{label}: connection lost while waiting for a reply: {self.reason}"
            )
        return None

    def __repr__(self) -> str:
        return f"Pending({self.command.label}, seq={self.sequence_id}, outcome={self.outcome})"


class Step:
    """What one input to the core produced. Empty lists mean nothing of that kind."""

    __slots__ = ("events", "outgoing", "settled", "state")

    def __init__(
        self,
        state: PrinterState | None = None,
        events: list[Event] | None = None,
        outgoing: list[Outgoing] | None = None,
        settled: list[Pending] | None = None,
    ) -> None:
        self.state = state  # the new snapshot, when this input changed it
        self.events: list[Event] = events if events is not None else []
        self.outgoing: list[Outgoing] = outgoing if outgoing is not None else []
        self.settled: list[Pending] = settled if settled is not None else []

    def __bool__(self) -> bool:
        return bool(self.state is not None or self.events or self.outgoing or self.settled)

    def __repr__(self) -> str:
        return (
            f"Step(state={'yes' if self.state else 'no'}, events={[e.kind for e in self.events]}, "
            f"outgoing={[o.command.label for o in self.outgoing]}, settled={self.settled})"
        )


class PrinterCore:
    """One printer's protocol state: feed it payloads and link changes, publish what it says."""

    def __init__(
        self,
        serial: str,
        *,
        label: str = "",
        pushall_min_interval: float = 3.0,
        sequence_ids: SequenceIds | None = None,
    ) -> None:
        self.serial = serial
        self.label = label or serial
        self.pushall_min_interval = pushall_min_interval
        self.stats = DecodeStats(self.label)
        self._builder = StateBuilder(serial, self.stats)
        self._tracker = EventTracker(serial)
        self._seq = sequence_ids or SequenceIds()
        self._raw: dict[str, Any] = {}
        self._full_seen = False
        self._pending: dict[tuple[str, str], Pending] = {}
        self._last_pushall: float | None = None
        self._connected = False
        self._connects = 0
        self._awaiting_resync = False
        self.state: PrinterState | None = None
        self.info: PrinterInfo | None = None
        self.last_message_at: float | None = None  # ``now`` of the last payload fed

    # -- what we know --

    @property
    def raw(self) -> Mapping[str, Any]:
        """The merged ``print`` object, keys as the printer names them."""
        return self._raw

    @property
    def complete(self) -> bool:
        """A full report has been merged (not only deltas)."""
        return self._full_seen

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def connects(self) -> int:
        """Accepted connections so far (1 + reconnects)."""
        return self._connects

    @property
    def pending(self) -> tuple[Pending, ...]:
        return tuple(self._pending.values())

    def developer_mode_alert(self) -> bool:
        """The printer shows the HMS alert it raises when it refuses an unsigned command."""
        state = self.state
        return state is not None and any(a.code == DEV_MODE_HMS for a in state.hms)

    # -- link changes --

    def connected(self, now: float) -> Step:
        """An accepted CONNACK and SUBACK: ask for the version and one full report (rule 5)."""
        self._connected = True
        self._connects += 1
        again = self._connects > 1
        self._awaiting_resync = again
        self.last_message_at = now
        kind = EventKind.RECONNECTED if again else EventKind.CONNECTED
        verb = "reconnected to" if again else "connected to"
        event = Event(kind, self.serial, f"{verb} {self.label}", {"connects": self._connects})
        outgoing = [self._out(cmd.get_version())]
        full = self.request_full_report(now, force=True)
        assert full is not None
        outgoing.append(full)
        return Step(events=[event], outgoing=outgoing)

    def disconnected(self, now: float, reason: str) -> Step:
        """The connection is gone: a ``disconnected`` event (once), pending commands fail."""
        if not self._connected:
            return Step()
        self._connected = False
        event = Event(
            EventKind.DISCONNECTED,
            self.serial,
            f"disconnected from {self.label}: {reason}",
            {"reason": reason},
        )
        settled = list(self._pending.values())
        self._pending.clear()
        for pending in settled:
            pending.outcome, pending.reason = Outcome.DISCONNECTED, reason
        return Step(events=[event], settled=settled)

    def retrying(self, now: float, error: BaseException | str, delay: float) -> Step:
        """A connection attempt failed for a passing reason; the transport retries after
        ``delay`` seconds. The event says why, in words ("... retrying in 4 s")."""
        text = str(error)
        reason = getattr(error, "retry_reason", "") or text
        return Step(
            events=[
                Event(
                    EventKind.RETRYING,
                    self.serial,
                    f"{reason}; retrying in {delay:.0f} s"
                    if delay >= 1
                    else f"{reason}; retrying in {delay:.1f} s",
                    {
                        "reason": reason,
                        "error": text,
                        "retry_in": round(delay, 3),
                        # False: waiting will not help (wrong access code, identity)
                        "retryable": getattr(error, "retryable", True),
                    },
                )
            ]
        )

    def silence(self, now: float) -> Step:
        """Nothing heard for the watchdog interval: pushing.start, then a full report (whose
        arrival is announced as ``resynced``)."""
        outgoing = [self._out(cmd.start_pushing())]
        full = self.request_full_report(now, force=True)
        assert full is not None
        outgoing.append(full)
        self._awaiting_resync = True
        silent_for = None if self.last_message_at is None else now - self.last_message_at
        event = Event(
            EventKind.SILENT,
            self.serial,
            f"{self.label} went silent"
            + (f" for {silent_for:.0f} s" if silent_for is not None else "")
            + "; asked for a full report",
            {"silent_for": None if silent_for is None else round(silent_for, 3)},
        )
        return Step(events=[event], outgoing=outgoing)

    # -- requests --

    def request_full_report(self, now: float, *, force: bool = False) -> Outgoing | None:
        """A pushall to publish, or None when one went out less than ``pushall_min_interval``
        seconds ago (``force`` skips the limit: after a (re)connect, or the watchdog)."""
        last = self._last_pushall
        if not force and last is not None and now - last < self.pushall_min_interval:
            return None
        self._last_pushall = now
        return self._out(cmd.pushall())

    def request(self, command: Command, now: float) -> tuple[Outgoing, Pending]:
        """The message for ``command`` and the handle its outcome will settle."""
        out = self._out(command)
        pending = Pending(command, out.sequence_id, now, self.developer_mode_alert())
        self._pending[(command.cls, out.sequence_id)] = pending
        if command.cls == "print" and command.name == "stop":
            self._tracker.note_stop_requested()
        return out, pending

    def cancel(self, pending: Pending) -> None:
        """Forget a command the caller stopped waiting for (a late reply is then ignored)."""
        if self._pending.pop((pending.command.cls, pending.sequence_id), None) is not None:
            pending.outcome = Outcome.CANCELLED

    def _out(self, command: Command) -> Outgoing:
        seq = self._seq.next()
        return Outgoing(orjson.dumps(command.payload(seq)), command.qos, command, seq)

    # -- payloads --

    def feed(self, payload: bytes, now: float) -> Step:
        """One payload from the report topic: a report (state + events) and/or replies."""
        self.last_message_at = now
        try:
            obj = _loads(payload)  # decode_payload's fast path, inlined: this runs per report
        except JSONDecodeError:
            obj = None
        if type(obj) is not dict:
            obj = decode_payload(payload, self.stats)  # repairs what it can, counts the rest
            if obj is None:
                return Step()
        if len(obj) == 1:
            # The printer's own reports: {"print": {"command": "push_status", ...}}.
            body = obj.get("print")
            if type(body) is dict and body.get("command") == "push_status":
                return self._report(body)
        step = Step()
        for cls, body in obj.items():
            if not isinstance(body, dict):
                self.stats.record(NOT_OBJECT, repr(body).encode()[:60])
                continue
            if cls == "print" and body.get("command") == "push_status":
                self._merge(self._report(body), step)
            elif (reply := parse_reply(cls, body)) is not None:
                self._reply(reply, step)
            elif cls == "print" and "gcode_state" in body:
                self._merge(self._report(body), step)  # X1-style pushes may omit "command"
            elif "result" in body and isinstance(body.get("command"), str):
                self._unsequenced_reply(cls, body, step)
        return step

    def _unsequenced_reply(self, cls: str, body: dict[str, Any], step: Step) -> None:
        """A reply without a sequence_id (an A1 refused print_speed so: protocol.md §3.6)
        settles our command only when exactly one of that name is pending: then it is ours."""
        name = body["command"]
        keys = [key for key, p in self._pending.items() if key[0] == cls and p.command.name == name]
        if len(keys) == 1:
            reply = parse_reply(cls, {**body, "sequence_id": keys[0][1]})
            if reply is not None:
                self._reply(reply, step)

    def _report(self, body: dict[str, Any]) -> Step:
        """Merge one push_status: the new state, its events, and commands it settles."""
        prev = self.state
        raw, full = apply_push(self._raw, body)
        self._raw = raw
        if full:
            self._full_seen = True
        state = self._builder.build(raw, None if full else body.keys(), self._full_seen)
        self.state = state
        events = self._tracker.update(state)
        if full and self._awaiting_resync:
            self._awaiting_resync = False
            events.append(
                Event(EventKind.RESYNCED, self.serial, f"full state of {self.label} again")
            )
        step = _new_step(Step)
        step.state, step.events, step.outgoing, step.settled = state, events, [], []
        if self._pending:
            self._settle_from_state(prev, state, step)
        return step

    @staticmethod
    def _merge(report: Step, into: Step) -> None:
        """Add a report's step to the step of a payload that held more than the report."""
        into.state = report.state
        into.events += report.events
        into.settled += report.settled

    def _settle_from_state(
        self, prev: PrinterState | None, state: PrinterState, step: Step
    ) -> None:
        dev_alert = (prev is None or prev.hms is not state.hms) and self.developer_mode_alert()
        for key, pending in list(self._pending.items()):
            confirm = pending.command.confirmed_by
            # Developer Mode guards print-class control commands (not lights, not info).
            if dev_alert and not pending.was_alerted and pending.command.cls == "print":
                pending.outcome = Outcome.DEVELOPER_MODE
            elif confirm is not None and confirm(state):
                pending.outcome = Outcome.CONFIRMED
            else:
                continue
            del self._pending[key]
            step.settled.append(pending)

    def _reply(self, reply: Reply, step: Step) -> None:
        if reply.cls == "info" and reply.command == "get_version" and reply.ok is not False:
            self.info = info_from_version_reply(reply.body, self.serial)
            self._builder.set_info(self.info)
            if self._raw:
                self.state = step.state = self._builder.build(self._raw, None, self._full_seen)
        pending = self._pending.pop((reply.cls, reply.sequence_id), None)
        if pending is not None:
            pending.reply, pending.outcome = reply, Outcome.REPLIED
            step.settled.append(pending)


__all__ = ["DEV_MODE_HMS", "Outcome", "Outgoing", "Pending", "PrinterCore", "Step"]
