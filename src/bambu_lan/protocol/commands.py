"""Command builders and reply parsing (protocol.md §3.6, §5). Pure: no I/O.

A command is a small JSON object published on the request topic. Replies come back on the
report topic under the same class key, echoing our ``sequence_id``; some firmware omits
``command`` in replies, so matching is on (class, sequence_id).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from typing import Any

from bambu_lan.protocol.errors_table import ERR_VERIFY_FAILED, ERR_VERIFY_MALFORMED
from bambu_lan.protocol.records import Record, record
from bambu_lan.protocol.state import SPEED_LEVELS, JobState, PrinterState

VERIFY_FAILED_REASON = "mqtt message verify failed"


class SequenceIds:
    """Unique, high, string sequence ids (other clients on the topic often use "0")."""

    def __init__(self, start: int | None = None) -> None:
        self._counter = itertools.count(
            start if start is not None else random.randint(20_000, 90_000)
        )

    def next(self) -> str:
        return str(next(self._counter))


@record(slots=True)
class Command(Record):
    """One request: where it goes, and how to know it worked."""

    cls: str  # top-level key: print, system, pushing, info
    name: str  # command name
    params: Mapping[str, Any] = field(default_factory=dict)
    qos: int = 0
    # When the printer does not answer (some firmware answers pause only through state),
    # this tells from a snapshot that the command took effect.
    confirmed_by: Callable[[PrinterState], bool] | None = None

    def payload(self, sequence_id: str) -> dict[str, Any]:
        body = {"sequence_id": sequence_id, "command": self.name}
        # The generated sequence_id and the command name win over params: a reply must match.
        body.update((k, v) for k, v in self.params.items() if k not in body)
        return {self.cls: body}

    @property
    def label(self) -> str:
        return f"{self.cls}.{self.name}"


def pushall() -> Command:
    return Command("pushing", "pushall", {"version": 1, "push_target": 1})


def start_pushing() -> Command:
    return Command("pushing", "start")


def get_version() -> Command:
    return Command("info", "get_version")


def pause() -> Command:
    return Command(
        "print", "pause", {"param": ""}, qos=1, confirmed_by=lambda s: s.job.state is JobState.PAUSE
    )


def resume() -> Command:
    return Command(
        "print",
        "resume",
        {"param": ""},
        qos=1,
        confirmed_by=lambda s: s.job.state is JobState.RUNNING,
    )


def stop() -> Command:
    return Command(
        "print",
        "stop",
        {"param": ""},
        qos=1,
        confirmed_by=lambda s: s.job.state in (JobState.FAILED, JobState.IDLE, JobState.FINISH),
    )


def print_speed(level: int) -> Command:
    # Exactly an int: 2.0 or True would go out as param "2.0" / "True".
    if type(level) is not int or level not in SPEED_LEVELS:
        raise ValueError("speed level must be 1 (silent), 2 (standard), 3 (sport) or 4 (ludicrous)")
    return Command(
        "print", "print_speed", {"param": str(level)}, confirmed_by=lambda s: s.speed.level == level
    )


def light(on: bool, node: str = "chamber_light") -> Command:
    mode = "on" if on else "off"
    return Command(
        "system",
        "ledctrl",
        {
            "led_node": node,
            "led_mode": mode,
            "led_on_time": 500,
            "led_off_time": 500,
            "loop_times": 0,
            "interval_time": 0,
        },
        confirmed_by=lambda s: s.lights.get(node) == mode,
    )


def gcode(lines: str | Iterable[str]) -> Command:
    """One or more G-code lines, newline-terminated as the firmware expects.

    ``;`` starts a comment, as in any G-code file: comments and blank lines are dropped.
    """
    text = lines if isinstance(lines, str) else "\n".join(lines)
    kept = (line.split(";", 1)[0].strip() for line in text.splitlines())
    text = "\n".join(line for line in kept if line)
    if not text:
        raise ValueError("no G-code to send")
    for line in text.splitlines():
        problem = _gcode_line_problem(line)
        if problem:
            raise ValueError(f"G-code line {ascii(line)[:80]}: {problem}")
    return Command("print", "gcode_line", {"param": text + "\n", "user_id": "0"})


def _gcode_line_problem(line: str) -> str | None:
    if any("\ud800" <= char <= "\udfff" for char in line):
        return "holds bytes that are not UTF-8 text"
    if not line.isascii():
        return "holds characters outside ASCII, which printers do not read in G-code"
    if not line.isprintable():
        return "holds control characters"
    return None


RESERVED_PARAMS = ("sequence_id", "command")


def raw(cls: str, name: str, params: Mapping[str, Any] | None = None) -> Command:
    """Any other command, for what the builders do not cover.

    ``params`` may not set ``sequence_id`` or ``command`` (generated, so that the reply can
    be matched) and must be JSON that can be sent: a ValueError says why not.
    """
    for what, text in (("class", cls), ("command", name)):
        if not text or not text.isascii() or not text.isprintable() or " " in text:
            raise ValueError(f"the {what} {text!r} must be a word: letters, digits, _ or -")
    body = dict(params or {})
    reserved = [key for key in RESERVED_PARAMS if key in body]
    if reserved:
        raise ValueError(
            f"{' and '.join(reserved)} cannot be set: the sequence_id is generated and the "
            "command is named by its own argument"
        )
    import orjson

    try:
        orjson.dumps(body)
    except TypeError as exc:  # lone surrogates, integers beyond 64 bits, deep nesting
        raise ValueError(f"cannot be sent as JSON: {exc}") from None
    return Command(cls, name, body)


@record(slots=True)
class Reply(Record):
    cls: str
    sequence_id: str
    command: str  # "" when the firmware omitted it
    ok: bool | None  # None: no result field
    reason: str
    err_code: int | None
    body: Mapping[str, Any]

    @property
    def developer_mode_required(self) -> bool:
        return self.ok is False and (
            self.err_code in (ERR_VERIFY_FAILED, ERR_VERIFY_MALFORMED)
            or VERIFY_FAILED_REASON in self.reason.lower()
        )


def parse_reply(cls: str, body: Mapping[str, Any]) -> Reply | None:
    """A command reply from one class object of a report, or None (e.g. a push_status)."""
    command = body.get("command")
    if command == "push_status" or "sequence_id" not in body:
        return None
    if cls == "print" and "result" not in body and command is None:
        return None
    result = body.get("result")
    ok = None if result is None else str(result).lower() in ("success", "ok")
    err = body.get("err_code")
    return Reply(
        cls=cls,
        sequence_id=str(body["sequence_id"]),
        command=str(command or ""),
        ok=ok,
        reason=str(body.get("reason", "") or ""),
        err_code=err if isinstance(err, int) else None,
        body=body,
    )
