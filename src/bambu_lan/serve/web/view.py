"""A printer's card as plain data: the page renders it, and the live stream sends its changes.

Pure functions, no I/O. Every value is a string, a number, a bool or a list of those, ready for
JSON and for a template; text from the printer stays text here and is escaped where it is shown
(jinja2's autoescape, ``textContent`` in the browser).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bambu_lan.protocol.state import EXTERNAL_SPOOL_ID, JobState, PrinterState
from bambu_lan.serve.web.source import PrinterEntry, job_label

Card = dict[str, Any]

#: Card classes in the order "sort by state" shows them: what needs a look first.
CLASSES = ("error", "paused", "printing", "finished", "idle", "connecting", "offline")
#: The summary line's groups and the card classes each counts.
SUMMARY_GROUPS: dict[str, tuple[str, ...]] = {
    "printing": ("printing",),
    "paused": ("paused",),
    "error": ("error",),
    "idle": ("idle", "finished"),
    "offline": ("offline", "connecting"),
}
_SERIOUS = frozenset({"fatal", "serious"})


def card_class(entry: PrinterEntry) -> str:
    state = entry.state
    if not entry.online:
        return "offline" if entry.connection != "connecting" or state else "connecting"
    if state is None:
        return "connecting"
    job = state.job.state
    if job is JobState.FAILED or any(a.severity in _SERIOUS for a in state.hms):
        return "error"
    if job is JobState.PAUSE:
        return "paused"
    if job.active:
        return "printing"
    if job is JobState.FINISH:
        return "finished"
    return "idle"


def _state_text(cls: str, state: PrinterState | None) -> str:
    if state is None or cls in ("offline", "connecting"):
        return cls.capitalize()
    job = state.job
    words = {
        JobState.RUNNING: "Printing",
        JobState.PREPARE: "Preparing",
        JobState.PAUSE: "Paused",
        JobState.FINISH: "Finished",
        JobState.FAILED: "Failed",
        JobState.SLICING: "Slicing",
        JobState.IDLE: "Idle",
    }.get(job.state, job.state.value.capitalize())
    if cls == "error" and job.state is not JobState.FAILED:
        words += ", alert"
    return words


def duration_text(minutes: int | None) -> str:
    if minutes is None or minutes < 0:
        return ""
    hours, mins = divmod(minutes, 60)
    return f"{hours} h {mins:02d} min" if hours else f"{mins} min"


def _temp(value: float | None, target: float | None) -> str:
    if value is None:
        return "–"
    text = f"{value:.0f}"
    if target:
        text += f" / {target:.0f}"
    return text + " °C"


def _temperatures(state: PrinterState) -> list[list[str]]:
    temps = state.temperatures
    out: list[list[str]] = []
    # Several nozzles (H2D) where the typed state has them, else the one nozzle.
    nozzles: Any = getattr(temps, "nozzles", None)
    if nozzles and len(nozzles) > 1:
        for i, nozzle in enumerate(nozzles):
            label = "Left" if i == 0 else "Right" if i == 1 else f"Nozzle {i + 1}"
            out.append(
                [
                    f"{label} nozzle",
                    _temp(getattr(nozzle, "temperature", None), getattr(nozzle, "target", None)),
                ]
            )
    else:
        out.append(["Nozzle", _temp(temps.nozzle, temps.nozzle_target)])
    out.append(["Bed", _temp(temps.bed, temps.bed_target)])
    if temps.chamber is not None:
        out.append(["Chamber", _temp(temps.chamber, None)])
    return out


def _color(rgba: str) -> str:
    value = rgba[:6]
    if len(value) == 6 and all(c in "0123456789abcdefABCDEF" for c in value):
        return f"#{value.upper()}"
    return ""


def _trays(state: PrinterState) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    active = state.active_tray
    for unit in state.ams:
        for tray in unit.trays:
            out.append(
                {
                    "id": tray.tray_id,
                    "label": f"AMS {unit.ams_id + 1} slot {(tray.slot or 0) + 1}",
                    "c": "" if tray.empty else _color(tray.color),
                    "t": "" if tray.empty else tray.type,
                    "r": tray.remain,
                    "a": tray.tray_id == active,
                    "e": tray.empty,
                }
            )
    spool = state.external_spool
    if spool is not None:
        out.append(
            {
                "id": EXTERNAL_SPOOL_ID,
                "label": "External spool",
                "c": "" if spool.empty else _color(spool.color),
                "t": "" if spool.empty else spool.type,
                "r": spool.remain,
                "a": active == EXTERNAL_SPOOL_ID,
                "e": spool.empty,
            }
        )
    return out


def card(entry: PrinterEntry, snap: int | None = None) -> Card:
    """Everything one card shows."""
    cls = card_class(entry)
    state = entry.state
    data: Card = {
        "serial": entry.serial,
        "name": entry.name,
        "model": (state.model if state else None) or "",
        "cls": cls,
        "state": _state_text(cls, state),
        "conn": entry.connection,
        "online": entry.online,
        "camera": entry.has_camera,
        "camera_note": entry.camera_note,
        "snap": snap,
        "job": "",
        "file": "",
        "stage": "",
        "progress": 0,
        "layer": "",
        "rem": None,
        "remaining": "",
        "finish": None,
        "temps": [],
        "trays": [],
        "hms": [],
        "error": "",
        "speed": "",
        "light": "",
    }
    if state is None:
        return data
    job = state.job
    active = job.state.active or job.state in (JobState.FINISH, JobState.FAILED)
    if active:
        data["job"] = job_label(job.name, job.file)
        data["file"] = job.file
        data["stage"] = job.stage
        data["progress"] = max(0, min(100, job.progress))
        if job.total_layers:
            data["layer"] = f"{job.layer} / {job.total_layers}"
    if job.state.active and job.remaining_minutes is not None:
        data["rem"] = job.remaining_minutes
        data["remaining"] = duration_text(job.remaining_minutes)
        # Whole minutes from the report's time: a card changes once a minute, not every second.
        data["finish"] = int(state.updated_at // 60 + job.remaining_minutes) * 60
    data["temps"] = _temperatures(state)
    data["trays"] = _trays(state)
    data["hms"] = [
        {"code": a.short, "sev": a.severity, "text": a.text or "unknown alert", "url": a.wiki_url}
        for a in state.hms
    ]
    if state.print_error is not None:
        data["error"] = f"{state.print_error.hex}: {state.print_error.text}"
    data["speed"] = state.speed.name
    data["light"] = state.lights.get("chamber_light", "")
    return data


def summary(cards: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(CLASSES, 0)
    total = 0
    for c in cards:
        counts[c["cls"]] = counts.get(c["cls"], 0) + 1
        total += 1
    out = {group: sum(counts[k] for k in members) for group, members in SUMMARY_GROUPS.items()}
    out["total"] = total
    return out


def diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``new`` that differ from ``old`` (all of them when there is no old)."""
    if old is None:
        return dict(new)
    return {k: v for k, v in new.items() if old.get(k) != v}
