"""The typed, immutable snapshot of a printer (protocol.md §4): ``PrinterState`` and its
sections (job, temperatures and nozzles, fans, speed, AMS units and trays, ...).

``state.StateBuilder`` makes them from the merged report; ``sections`` reads each section.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, field
from enum import StrEnum
from typing import Any, Protocol

from bambu_lan.protocol.errors_table import HmsAlert, PrintError
from bambu_lan.protocol.records import Record, record


class JobState(StrEnum):
    IDLE = "IDLE"
    PREPARE = "PREPARE"
    RUNNING = "RUNNING"
    PAUSE = "PAUSE"
    FINISH = "FINISH"
    FAILED = "FAILED"
    SLICING = "SLICING"
    INIT = "INIT"
    OFFLINE = "OFFLINE"
    UNKNOWN = "UNKNOWN"

    @property
    def active(self) -> bool:
        """A job is on the printer (Studio's "busy": PREPARE, RUNNING, PAUSE, SLICING)."""
        return self in ACTIVE_JOB_STATES


# Studio's "busy" states.
ACTIVE_JOB_STATES = frozenset(
    {JobState.PREPARE, JobState.RUNNING, JobState.PAUSE, JobState.SLICING}
)
JOB_STATES_BY_NAME = {s.value: s for s in JobState}

# stg_cur / stg ids (protocol.md §4.5).
STAGE_NAMES: dict[int, str] = {
    0: "printing",
    1: "auto bed leveling",
    2: "heatbed preheating",
    3: "vibration compensation",
    4: "changing filament",
    5: "M400 pause",
    6: "paused: filament runout",
    7: "heating hotend",
    8: "calibrating extrusion",
    9: "scanning bed surface",
    10: "inspecting first layer",
    11: "identifying build plate type",
    12: "calibrating micro lidar",
    13: "homing toolhead",
    14: "cleaning nozzle tip",
    15: "checking extruder temperature",
    16: "paused by user",
    17: "paused: front cover falling",
    18: "calibrating lidar",
    19: "calibrating extrusion flow",
    20: "paused: nozzle temperature malfunction",
    21: "paused: heatbed temperature malfunction",
    22: "filament unloading",
    23: "paused: skipped step",
    24: "filament loading",
    25: "calibrating motor noise",
    26: "paused: AMS lost",
    27: "paused: low heatbreak fan speed",
    28: "paused: chamber temperature control error",
    29: "cooling chamber",
    30: "paused by user G-code",
    31: "motor noise showoff",
    32: "paused: nozzle filament covered",
    33: "paused: cutter error",
    34: "paused: first layer error",
    35: "paused: nozzle clog",
}

SPEED_LEVELS = {1: "silent", 2: "standard", 3: "sport", 4: "ludicrous"}
SPEED_PERCENT = {1: 50, 2: 100, 3: 124, 4: 166}

EXTERNAL_SPOOL_ID = 254
NO_TRAY_ID = 255


# --- sections -------------------------------------------------------------------------------


@record()  # no slots: made on most reports, evolved (records.evolve)
class Job(Record):
    state: JobState
    file: str
    name: str
    progress: int  # percent, 0-100
    remaining_minutes: int | None
    layer: int
    total_layers: int
    stage_id: int | None  # stg_cur while a job is active
    stage: str  # stage name in words, "" when idle
    print_type: str  # idle, local, cloud, system
    prepare_percent: int | None  # gcode_file_prepare_percent while PREPARE
    # The printer's job id ("job_id=…", else task_id, else subtask_id; "" for none): tells one
    # job from the next when file and name repeat.
    ident: str = ""

    @property
    def active(self) -> bool:
        return self.state.active


@record()  # no slots: made on most reports
class Nozzle(Record):
    """One extruder's nozzle: the H2D, H2D Pro, H2C and X2D have two (index 0 right, 1 left)."""

    index: int
    temperature: float | None
    target: float | None
    diameter: float | None  # mm
    type: str  # stainless_steel, hardened_steel, high_flow_hardened_steel, ... "" unknown
    active: bool  # the extruder printing now


@record()  # no slots: made on most reports
class Temperatures(Record):
    nozzle: float | None  # the active nozzle (every nozzle: PrinterState.nozzles)
    nozzle_target: float | None
    bed: float | None
    bed_target: float | None
    chamber: float | None  # None: no sensor (A1 and P1 report a constant 5)
    chamber_sensor: bool
    chamber_target: float | None = None  # P2S/H2 chamber heating target (device.ctc)


@record(slots=True)
class Fans(Record):
    """Fan speeds in percent."""

    part: int | None
    aux: int | None
    chamber: int | None
    heatbreak: int | None


@record(slots=True)
class Speed(Record):
    level: int | None  # 1-4
    name: str  # silent, standard, sport, ludicrous
    percent: int | None  # spd_mag


@record(slots=True)
class Tray(Record):
    tray_id: int  # as the printer numbers it: ams_id*4 + slot; AMS HT: the unit id (128-135);
    # external spools: 254 and 255
    ams_id: int | None  # None for an external spool
    slot: int | None
    empty: bool
    type: str  # PLA, PETG, ...
    color: str  # RRGGBBAA as sent, "" when unknown
    remain: int | None  # percent, None when unknown (-1)
    brand: str  # tray_sub_brands
    preset: str  # tray_info_idx

    @property
    def color_hex(self) -> str:
        """``#RRGGBB`` for display, or "" when unknown."""
        return f"#{self.color[:6]}" if len(self.color) >= 6 else ""

    @property
    def external(self) -> bool:
        return self.ams_id is None


class AmsKind(StrEnum):
    AMS = "AMS"
    AMS_LITE = "AMS Lite"
    AMS_2_PRO = "AMS 2 Pro"
    AMS_HT = "AMS HT"


AMS_HT_FIRST_ID = 128  # AMS HT units are 128-135; their one tray has the unit's id


@record(slots=True)
class AmsUnit(Record):
    ams_id: int  # 0-3 (A2L's AMS Lite: 16); AMS HT 128-135
    humidity: int | None  # level 1 (wet) - 5 (dry), None when not reported
    temperature: float | None
    trays: tuple[Tray, ...]
    kind: AmsKind = AmsKind.AMS
    humidity_percent: int | None = None  # humidity_raw, where reported
    drying: bool | None = None  # None: this unit does not report drying
    drying_minutes_left: int | None = None


@record(slots=True)
class PrinterInfo(Record):
    """What ``info.get_version`` says: model and firmware."""

    model: str  # "A1"
    model_code: str  # "N2S"
    firmware: str  # ota sw_ver
    modules: tuple[Mapping[str, Any], ...] = ()


@record()
class PrinterState(Record):
    """One immutable snapshot of everything the printer has told us.

    Snapshots made by ``StateBuilder`` are cheap to create: one starts as a copy of the
    previous one's ``__dict__`` without the sections the report changed, and each of those is
    built from ``raw`` the first time it is read (then kept). Untouched sections are the
    previous snapshot's objects. Reading a field never fails and never changes its value.
    """

    serial: str
    model: str | None
    firmware: str | None
    job: Job
    temperatures: Temperatures
    fans: Fans
    speed: Speed
    lights: Mapping[str, str]  # node -> on/off/flashing
    wifi_signal_dbm: int | None
    ams: tuple[AmsUnit, ...]
    external_spool: Tray | None  # the first of external_spools (kept for compatibility)
    active_tray: int | None  # a tray_id in ams or external_spools; None: nothing loaded
    hms: tuple[HmsAlert, ...]
    print_error: PrintError | None
    sdcard: bool | None
    complete: bool  # a full report has been merged (not only deltas)
    updated_at: float  # time.time() of the last report merged
    raw: Mapping[str, Any] = field(repr=False)  # merged `print` object, printer's key names
    # default_factory, not a default: a class attribute would hide a section not built yet.
    nozzles: tuple[Nozzle, ...] = field(
        default_factory=tuple
    )  # every extruder's nozzle, index order
    external_spools: tuple[Tray, ...] = field(
        default_factory=tuple
    )  # vir_slot (ids 254, 255) or vt_tray

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with every field built, without the builder's section reader."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def tray(self, tray_id: int | None) -> Tray | None:
        """The tray or external spool with this id (e.g. ``active_tray``), or None."""
        if tray_id is None:
            return None
        for spool in self.external_spools:
            if spool.tray_id == tray_id:
                return spool
        for unit in self.ams:
            for tray in unit.trays:
                if tray.tray_id == tray_id:
                    return tray
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the typed fields plus ``raw``."""
        data = asdict(self)
        data["job"]["state"] = self.job.state.value
        data["lights"] = dict(self.lights)
        data["raw"] = dict(self.raw)
        data["hms"] = [{**asdict(a), "short": a.short} for a in self.hms]
        for unit in data["ams"]:
            unit["kind"] = str(unit["kind"])
        if self.print_error is not None:
            data["print_error"] = {**asdict(self.print_error), "hex": self.print_error.hex}
        return data


# Fields of a PrinterState built on first read, by the section that builds them.
LAZY_FIELDS: dict[str, str] = {
    "job": "job",
    "temperatures": "temperatures",
    "nozzles": "temperatures",
    "fans": "fans",
    "speed": "speed",
    "lights": "lights",
    "wifi_signal_dbm": "wifi",
    "ams": "ams",
    "external_spools": "ams",
    "external_spool": "ams",
    "active_tray": "ams",
    "hms": "hms",
    "print_error": "print_error",
    "sdcard": "sdcard",
}


class _LazyField:
    """A field of ``PrinterState`` built on its first read, for snapshots that ``StateBuilder``
    made without it. A non-data descriptor: once built, the value in the instance's
    ``__dict__`` is found first, and the descriptor is not called again. (Not ``__getattr__``
    on the class: that would make every attribute read of a snapshot about four times as slow.)
    """

    __slots__ = ("group", "name")

    def __init__(self, name: str, group: str) -> None:
        self.name, self.group = name, group

    def __get__(self, state: PrinterState | None, owner: type | None = None) -> Any:
        if state is None:
            return self
        values = state.__dict__
        sections: SectionFiller | None = values.get("_sections")
        if sections is None:
            raise AttributeError(f"'PrinterState' object has no attribute {self.name!r}")
        sections.fill(values, self.group)
        return values[self.name]


# Set after @record made the dataclass, so that its fields have no defaults. The job is not
# lazy: every snapshot is made with it (the event tracker reads it for every report).
for _name, _group in LAZY_FIELDS.items():
    if _name != "job":
        setattr(PrinterState, _name, _LazyField(_name, _group))


class SectionFiller(Protocol):
    """What a lazily built snapshot asks to build a section (``sections.Sections``)."""

    def fill(self, values: dict[str, Any], group: str) -> None: ...
