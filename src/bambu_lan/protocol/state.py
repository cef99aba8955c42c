"""Typed, immutable snapshots of a printer, built from the merged report (protocol.md §4).

``StateBuilder`` turns each merged report into a ``PrinterState``. Building is incremental and
lazy: a delta touches a few keys, so the new snapshot shares every section the delta did not
touch with the previous one, and builds the touched ones from ``raw`` when first read. Making
a snapshot is a dict copy; a farm that reads a printer's temperatures once a second pays for
them once a second, not once per report. The types live in ``snapshot``, the reading of each
section (leniently: loose types, per-model places) in ``sections``; both are re-exported here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from bambu_lan.protocol.decode import DecodeStats
from bambu_lan.protocol.models import (
    ModelInfo,
    identify_model,
    model_from_code,
    model_from_serial,
)
from bambu_lan.protocol.sections import (
    STALE_FIELDS,
    Sections,
    stale_fields,
)
from bambu_lan.protocol.snapshot import (
    AMS_HT_FIRST_ID,
    EXTERNAL_SPOOL_ID,
    NO_TRAY_ID,
    SPEED_LEVELS,
    SPEED_PERCENT,
    STAGE_NAMES,
    AmsKind,
    AmsUnit,
    Fans,
    Job,
    JobState,
    Nozzle,
    PrinterInfo,
    PrinterState,
    Speed,
    Temperatures,
    Tray,
)

__all__ = [
    "AMS_HT_FIRST_ID",
    "EXTERNAL_SPOOL_ID",
    "NO_TRAY_ID",
    "SPEED_LEVELS",
    "SPEED_PERCENT",
    "STAGE_NAMES",
    "AmsKind",
    "AmsUnit",
    "Fans",
    "Job",
    "JobState",
    "Nozzle",
    "PrinterInfo",
    "PrinterState",
    "Speed",
    "StateBuilder",
    "Temperatures",
    "Tray",
    "info_from_version_reply",
]

_new_state = object.__new__
_time = time.time
_set_dict = object.__setattr__
_stale_memo = STALE_FIELDS.get


class StateBuilder:
    """Turns successive merged reports into snapshots, rebuilding only what changed."""

    def __init__(self, serial: str, stats: DecodeStats | None = None) -> None:
        self.serial = serial
        self._stats = stats
        self.info: PrinterInfo | None = None
        self._model: ModelInfo | None = model_from_serial(serial)
        self._sections = Sections(stats, self._model)
        self._last: PrinterState | None = None

    @property
    def model(self) -> ModelInfo | None:
        return self._model

    def set_info(self, info: PrinterInfo) -> None:
        """Model and firmware from get_version; the next snapshot carries them."""
        self.info = info
        self._model = (
            model_from_code(info.model_code)
            or identify_model(product_name=info.model, serial=self.serial)
            or self._model
        )
        # The chamber sensor, AMS kinds and HMS wiki links depend on these: new sections
        # (snapshots made before keep theirs), and every section rebuilt for the next one.
        self._sections = Sections(self._stats, self._model, info.modules)
        self._last = None  # the next snapshot is built afresh, not from the previous one

    def build(
        self, raw: Mapping[str, Any], changed: Iterable[str] | None, complete: bool
    ) -> PrinterState:
        """A snapshot of ``raw``; ``changed`` lists the top-level keys that may differ from the
        previous snapshot (None: all of them)."""
        prev = self._last
        if prev is None or changed is None:
            model, info = self._model, self.info
            values: dict[str, Any] = {
                "serial": self.serial,
                "model": model.name if model else None,
                "firmware": info.firmware if info else None,
                "_sections": self._sections,
                "job": self._sections.job(raw),
            }
        else:
            # A copy of the previous snapshot (one C-level dict copy) without the fields of
            # the sections the report touched: those are built from the new raw when first
            # read. A printer sends the same few sets of keys over and over, so the fields to
            # drop are looked up by the delta's keys instead of worked out key by key.
            values = prev.__dict__.copy()
            keys = tuple(changed)
            stale, progress_only = _stale_memo(keys) or stale_fields(keys)
            if stale:
                pop = values.pop
                for name in stale:
                    pop(name, None)
                if "job" not in values:
                    # Built at once, not on first read: the event tracker reads it every time.
                    values["job"] = self._sections.job(raw)
            if progress_only:
                values["job"] = self._sections.job_progress(values["job"], raw)
        values["complete"] = complete
        values["updated_at"] = _time()
        values["raw"] = raw
        state: PrinterState = _new_state(PrinterState)
        _set_dict(state, "__dict__", values)
        self._last = state
        return state


def info_from_version_reply(reply: Mapping[str, Any], serial: str) -> PrinterInfo:
    """PrinterInfo from an ``info.get_version`` reply (protocol.md §4.8)."""
    listed = reply.get("module")
    modules = tuple(m for m in listed if isinstance(m, dict)) if isinstance(listed, list) else ()
    ota = next((m for m in modules if m.get("name") == "ota"), None)
    firmware = str(ota.get("sw_ver", "")) if ota else ""
    product = str(ota.get("product_name", "")) if ota else ""
    project = ""
    for module in modules:
        if module.get("project_name"):
            project = str(module["project_name"])
            break
    model = identify_model(product_name=product, project_name=project, serial=serial)
    return PrinterInfo(
        model=model.name if model else (product.removeprefix("Bambu Lab ") or "unknown"),
        model_code=model.code if model else project,
        firmware=firmware,
        modules=modules,
    )
