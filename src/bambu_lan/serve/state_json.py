"""The printer state as one flat JSON document: the MQTT bridge's ``state`` topic.

Flat keys (``nozzle_temperature``, ``tray_2_type``) keep Home Assistant templates trivial
(``{{ value_json.progress }}``). Nothing here changes between two reports unless the printer
changed, so "publish only on change" is a byte comparison. Printer-provided text is passed
through as data (JSON-escaped); consumers that render it must escape it for their medium.
"""

from __future__ import annotations

from typing import Any

from bambu_lan.protocol.state import PrinterState, Tray

SPEED_NAMES = ("silent", "standard", "sport", "ludicrous")
EXTERNAL_SPOOL = 254


def tray_key(tray_id: int) -> str:
    """``tray_<id>`` for AMS trays (absolute id: ams*4 + slot), ``tray_ext`` for the spool."""
    return "tray_ext" if tray_id == EXTERNAL_SPOOL else f"tray_{tray_id}"


def state_document(state: PrinterState, *, name: str, online: bool) -> dict[str, Any]:
    job, t, fans = state.job, state.temperatures, state.fans
    doc: dict[str, Any] = {
        "serial": state.serial,
        "name": name,
        "model": state.model,
        "firmware": state.firmware,
        "online": online,
        "state": job.state.value,
        "stage": job.stage,
        "file": job.file,
        "job_name": job.name,
        "progress": job.progress,
        "remaining_minutes": job.remaining_minutes,
        "layer": job.layer,
        "total_layers": job.total_layers,
        "nozzle_temperature": t.nozzle,
        "nozzle_target": t.nozzle_target,
        "bed_temperature": t.bed,
        "bed_target": t.bed_target,
        "chamber_temperature": t.chamber if t.chamber_sensor else None,
        "part_fan": fans.part,
        "aux_fan": fans.aux,
        "chamber_fan": fans.chamber,
        "heatbreak_fan": fans.heatbreak,
        "speed_level": state.speed.level,
        "speed": state.speed.name or None,
        "light": state.lights.get("chamber_light"),
        "wifi_signal_dbm": state.wifi_signal_dbm,
        "active_tray": state.active_tray,
        "hms_count": len(state.hms),
        "hms": [
            {"code": a.short, "severity": a.severity, "module": a.module, "text": a.text}
            for a in state.hms
        ],
        "print_error": state.print_error.text if state.print_error else None,
        "print_error_code": state.print_error.hex if state.print_error else None,
    }
    for unit in state.ams:
        doc[f"ams_{unit.ams_id}_humidity"] = unit.humidity
        doc[f"ams_{unit.ams_id}_temperature"] = unit.temperature
        for tray in unit.trays:
            _tray(doc, tray)
    if state.external_spool is not None:
        _tray(doc, state.external_spool)
    return doc


def _tray(doc: dict[str, Any], tray: Tray) -> None:
    key = tray_key(tray.tray_id)
    doc[f"{key}_type"] = None if tray.empty else (tray.type or None)
    doc[f"{key}_color"] = None if tray.empty else (tray.color_hex or None)
    doc[f"{key}_remain"] = None if tray.empty else tray.remain


def tray_ids(state: PrinterState | None) -> tuple[int, ...]:
    """Every tray the printer reports (AMS and external spool), for discovery."""
    if state is None:
        return ()
    ids = [tray.tray_id for unit in state.ams for tray in unit.trays]
    if state.external_spool is not None:
        ids.append(EXTERNAL_SPOOL)
    return tuple(ids)
