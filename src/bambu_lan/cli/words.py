"""Short words for a printer's state (temperatures, minutes, job, trays, nozzles, lights,
connection), shared by the live view's panel and plain lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bambu_lan.protocol.state import AmsUnit, Nozzle, PrinterState, Tray
    from bambu_lan.session import ConnectionStatus


def fmt_temp(current: float | None, target: float | None) -> str:
    """``219.8 → 220 °C`` while heating to a target, ``24.9 °C`` otherwise."""
    if current is None:
        return "?"
    if target:
        return f"{current:.1f} → {target:.0f} °C"
    return f"{current:.1f} °C"


def fmt_minutes(minutes: int | None) -> str:
    if minutes is None or minutes < 0:
        return "?"
    hours, mins = divmod(minutes, 60)
    return f"{hours} h {mins:02d} min" if hours else f"{mins} min"


def fmt_pct(value: int | None) -> str:
    return "?" if value is None else f"{value}%"


def fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return "no report yet"
    if seconds < 10:
        return f"last report {seconds:.1f} s ago"
    return f"last report {seconds:.0f} s ago"


def connection_text(status: ConnectionStatus | None) -> str:
    """``connected, last report 0.4 s ago`` or ``disconnected: <why>``."""
    if status is None:
        return "not started"
    parts = [status.state.value]
    if status.state.value != "connected" and status.last_error:
        parts[0] += f": {status.last_error}"
    parts.append(fmt_age(status.last_message_age()))
    if status.connects > 1:
        parts.append(f"{status.connects - 1} reconnect{'s' if status.connects > 2 else ''}")
    if status.watchdog_kicks:
        parts.append(f"watchdog fired {status.watchdog_kicks}x")
    return ", ".join(parts)


def lights_text(state: PrinterState) -> str:
    if not state.lights:
        return "?"
    if set(state.lights) == {"chamber_light"}:
        return state.lights["chamber_light"]
    return ", ".join(f"{node.replace('_', ' ')} {mode}" for node, mode in state.lights.items())


def speed_text(state: PrinterState) -> str:
    speed = state.speed
    if speed.level is None:
        return "?"
    name = speed.name or f"level {speed.level}"
    return f"{name} ({speed.percent}%)" if speed.percent is not None else name


def stage_text(state: PrinterState) -> str:
    """The stage in words; nothing while PREPARE still reports the idle stage 0."""
    job = state.job
    if job.state.value == "PREPARE" and job.stage_id == 0:
        return ""
    return job.stage


def job_text(state: PrinterState) -> str:
    """``RUNNING 42% layer 12/50 (printing), 18 min left``."""
    job = state.job
    parts = [job.state.value]
    if job.active or job.state.value in ("FINISH", "FAILED"):
        if job.name or job.file:
            parts.append(repr(job.name or job.file))
        parts.append(f"{job.progress}%")
        if job.total_layers:
            parts.append(f"layer {job.layer}/{job.total_layers}")
        if stage := stage_text(state):
            parts.append(f"({stage})")
        if job.prepare_percent is not None:
            parts.append(f"preparing {job.prepare_percent}%")
        if job.active and job.remaining_minutes is not None:
            parts.append(f"{fmt_minutes(job.remaining_minutes)} left")
    return " ".join(parts)


def tray_text(tray: Tray) -> str:
    if tray.empty:
        return "empty"
    parts = [tray.type or "?"]
    if tray.color_hex:
        parts.append(tray.color_hex)
    if tray.remain is not None:
        parts.append(f"{tray.remain}%")
    return " ".join(parts)


def nozzle_name(nozzle: Nozzle, count: int) -> str:
    """``nozzle``; on two-nozzle printers (H2D: index 0 right, 1 left) ``right nozzle``."""
    if count == 1:
        return "nozzle"
    return {0: "right nozzle", 1: "left nozzle"}.get(nozzle.index, f"nozzle {nozzle.index + 1}")


def nozzle_spec(nozzle: Nozzle) -> str:
    """``0.4 mm hardened steel``, or "" when the printer did not say."""
    parts = []
    if nozzle.diameter is not None:
        parts.append(f"{nozzle.diameter:g} mm")
    if nozzle.type:
        parts.append(nozzle.type.replace("_", " "))
    return " ".join(parts)


def ams_name(unit: AmsUnit) -> str:
    """``AMS 2 Pro 1``, ``AMS HT 1`` (unit 128), ``AMS Lite 1`` (the A2L's unit 16 too)."""
    number = unit.ams_id - 127 if unit.ams_id >= 128 else unit.ams_id % 16 + 1
    return f"{unit.kind} {number}"


def ams_about(unit: AmsUnit) -> str:
    """``humidity 4/5 23%, 26 °C, drying 9 h 43 min left``."""
    about = []
    humidity = []
    if unit.humidity is not None:
        humidity.append(f"{unit.humidity}/5")
    if unit.humidity_percent is not None:
        humidity.append(f"{unit.humidity_percent}%")
    if humidity:
        about.append("humidity " + " ".join(humidity))
    if unit.temperature:  # 0: no sensor (AMS Lite)
        about.append(f"{unit.temperature:.0f} °C")
    if unit.drying:
        about.append(f"drying, {fmt_minutes(unit.drying_minutes_left)} left")
    return ", ".join(about)


def external_name(state: PrinterState, tray: Tray) -> str:
    """``external spool``; ``external spool 254`` where a printer has several."""
    if len(state.external_spools) > 1:
        return f"external spool {tray.tray_id}"
    return "external spool"


def tray_name(state: PrinterState, tray_id: int) -> str:
    """Where a tray is: ``AMS 2 Pro 1 slot 2``, ``AMS HT 1``, ``external spool``."""
    for spool in state.external_spools:
        if spool.tray_id == tray_id:
            return external_name(state, spool)
    for unit in state.ams:
        for tray in unit.trays:
            if tray.tray_id == tray_id:
                if len(unit.trays) == 1:
                    return ams_name(unit)
                slot = tray.slot if tray.slot is not None else 0
                return f"{ams_name(unit)} slot {slot + 1}"
    return f"tray {tray_id}"


def loaded_text(state: PrinterState) -> str:
    """``AMS HT 1: PA #000000 100%`` or ``nothing loaded``."""
    tray = state.tray(state.active_tray)
    if tray is None:
        return (
            "nothing loaded" if state.active_tray is None else tray_name(state, state.active_tray)
        )
    return f"{tray_name(state, tray.tray_id)}: {tray_text(tray)}"


def nozzles_text(state: PrinterState) -> str:
    """``nozzle 219.8 → 220 °C``; two nozzles: ``right nozzle 219.8 → 220 °C (active), left
    nozzle 40.0 °C``."""
    nozzles = state.nozzles
    if len(nozzles) <= 1:
        t = state.temperatures
        return f"nozzle {fmt_temp(t.nozzle, t.nozzle_target)}"
    return ", ".join(
        f"{nozzle_name(n, len(nozzles))} {fmt_temp(n.temperature, n.target)}"
        + (" (active)" if n.active else "")
        for n in nozzles
    )
