"""Typed, immutable snapshots of a printer, built from the merged report (protocol.md §4).

Reports are loose: numbers arrive as strings, keys go missing, values change type between
firmware versions. Every field here is coerced leniently; a value that cannot be read is
counted (once-per-kind log) and shown as unknown instead of failing.

Building is incremental: a delta touches a few keys, so only the sections that read those
keys are rebuilt and the others are shared with the previous snapshot.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from bambu_lan.protocol.decode import DecodeStats
from bambu_lan.protocol.errors_table import (
    WIKI_SERIES_DEFAULT,
    HmsAlert,
    PrintError,
    decode_hms,
    decode_print_error,
    hms_in_range,
)
from bambu_lan.protocol.models import (
    ModelInfo,
    identify_model,
    model_from_code,
    model_from_serial,
)


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
        return self in _ACTIVE


_ACTIVE = frozenset({JobState.PREPARE, JobState.RUNNING, JobState.PAUSE, JobState.SLICING})
_JOB_STATES = {s.value: s for s in JobState}

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


_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1

# --- lenient coercion -----------------------------------------------------------------------


class _Reader:
    """Reads typed values from a raw dict, counting values of the wrong type."""

    __slots__ = ("stats",)

    def __init__(self, stats: DecodeStats | None) -> None:
        self.stats = stats

    def _bad(self, key: str, value: Any) -> None:
        if self.stats is not None:
            self.stats.record(f"bad_type:{key}", repr(value).encode()[:60])

    # Each reader returns at once for the type the printers send; anything else takes the
    # slow path, which converts what it can and counts the rest.

    def float_(self, raw: Mapping[str, Any], key: str) -> float | None:
        value = raw.get(key)
        if type(value) is float:
            return value
        if type(value) is int:
            return float(value)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError, OverflowError):
            self._bad(key, value)
            return None

    def int_(self, raw: Mapping[str, Any], key: str) -> int | None:
        value = raw.get(key)
        if type(value) is int:
            return value
        if value is None:
            return None
        try:
            number = int(float(value))
        except (TypeError, ValueError, OverflowError):  # "inf", "1e999", "nan", [1]
            self._bad(key, value)
            return None
        if not _INT_MIN <= number <= _INT_MAX:  # what JSON readers and writers handle
            self._bad(key, value)
            return None
        return number

    def str_(self, raw: Mapping[str, Any], key: str) -> str:
        value = raw.get(key)
        if type(value) is str:
            return value
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)):
            return str(value)
        self._bad(key, value)
        return ""

    def list_(self, raw: Mapping[str, Any], key: str) -> list[Any]:
        value = raw.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        self._bad(key, value)
        return []

    def dict_(self, raw: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = raw.get(key)
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        self._bad(key, value)
        return {}


# --- sections -------------------------------------------------------------------------------

_T = TypeVar("_T")


def _fast_init(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted dataclass an ``__init__`` about twice as fast, same signature.

    A frozen dataclass sets each field through ``object.__setattr__``; this one calls the slot
    descriptors directly. Snapshots are built on every report (a farm: many thousands a second),
    so construction is a large part of the cost. Instances stay frozen: only ``__init__`` changes.
    """
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    namespace: dict[str, Any] = {}
    params, lines = [], []
    for f in fields:
        if f.default_factory is not dataclasses.MISSING or not f.init or f.kw_only:
            raise TypeError(f"_fast_init does not handle the field {cls.__name__}.{f.name}")
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        lines.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(lines) + "\n"
    exec(source, namespace)  # noqa: S102 - fixed template, field names only (as dataclasses does)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


@_fast_init
@dataclass(frozen=True, slots=True)
class Job:
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

    @property
    def active(self) -> bool:
        return self.state.active


@_fast_init
@dataclass(frozen=True, slots=True)
class Nozzle:
    """One extruder's nozzle: the H2D, H2D Pro, H2C and X2D have two (index 0 right, 1 left)."""

    index: int
    temperature: float | None
    target: float | None
    diameter: float | None  # mm
    type: str  # stainless_steel, hardened_steel, high_flow_hardened_steel, ... "" unknown
    active: bool  # the extruder printing now


@_fast_init
@dataclass(frozen=True, slots=True)
class Temperatures:
    nozzle: float | None  # the active nozzle (every nozzle: PrinterState.nozzles)
    nozzle_target: float | None
    bed: float | None
    bed_target: float | None
    chamber: float | None  # None: no sensor (A1 and P1 report a constant 5)
    chamber_sensor: bool
    chamber_target: float | None = None  # P2S/H2 chamber heating target (device.ctc)


@_fast_init
@dataclass(frozen=True, slots=True)
class Fans:
    """Fan speeds in percent."""

    part: int | None
    aux: int | None
    chamber: int | None
    heatbreak: int | None


@_fast_init
@dataclass(frozen=True, slots=True)
class Speed:
    level: int | None  # 1-4
    name: str  # silent, standard, sport, ludicrous
    percent: int | None  # spd_mag


@_fast_init
@dataclass(frozen=True, slots=True)
class Tray:
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


# get_version module names per kind ("n3f/0" is an AMS 2 Pro with id 0).
_MODULE_KINDS = {
    "ams": AmsKind.AMS,
    "ams_f1": AmsKind.AMS_LITE,
    "n3f": AmsKind.AMS_2_PRO,
    "n3s": AmsKind.AMS_HT,
}
# Low nibble of a unit's hex `info` in captures of P2S, H2 and X1 printers.
_INFO_KINDS = {1: AmsKind.AMS, 3: AmsKind.AMS_2_PRO, 4: AmsKind.AMS_HT, 5: AmsKind.AMS_LITE}
AMS_HT_FIRST_ID = 128


@_fast_init
@dataclass(frozen=True, slots=True)
class AmsUnit:
    ams_id: int  # 0-3 (A2L's AMS Lite: 16); AMS HT 128-135
    humidity: int | None  # level 1 (wet) - 5 (dry), None when not reported
    temperature: float | None
    trays: tuple[Tray, ...]
    kind: AmsKind = AmsKind.AMS
    humidity_percent: int | None = None  # humidity_raw, where reported
    drying: bool | None = None  # None: this unit does not report drying
    drying_minutes_left: int | None = None


@_fast_init
@dataclass(frozen=True, slots=True)
class PrinterInfo:
    """What ``info.get_version`` says: model and firmware."""

    model: str  # "A1"
    model_code: str  # "N2S"
    firmware: str  # ota sw_ver
    modules: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class PrinterState:
    """One immutable snapshot of everything the printer has told us.

    Not slotted on purpose: a new snapshot starts as a copy of the previous one's ``__dict__``
    (one C-level copy) with the rebuilt sections replaced, which is what makes a delta cheap.
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
    nozzles: tuple[Nozzle, ...] = ()  # every extruder's nozzle, index order
    external_spools: tuple[Tray, ...] = ()  # vir_slot (ids 254, 255) or vt_tray

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


# --- building -------------------------------------------------------------------------------

_JOB_KEYS = frozenset(
    {
        "gcode_state",
        "gcode_file",
        "subtask_name",
        "mc_percent",
        "mc_remaining_time",
        "layer_num",
        "total_layer_num",
        "stg_cur",
        "stg",
        "print_type",
        "gcode_file_prepare_percent",
    }
)
_TEMP_KEYS = frozenset(
    {
        "nozzle_temper",
        "nozzle_target_temper",
        "nozzle_diameter",
        "nozzle_type",
        "bed_temper",
        "bed_target_temper",
        "chamber_temper",
    }
)
_FAN_KEYS = frozenset(
    {"cooling_fan_speed", "big_fan1_speed", "big_fan2_speed", "heatbreak_fan_speed", "fan_gear"}
)
_SPEED_KEYS = frozenset({"spd_lvl", "spd_mag"})

# Sections of a snapshot, as bits, and the top-level keys each one reads.
_JOB, _TEMPS, _FANS, _SPEED, _LIGHTS, _WIFI, _AMS, _HMS, _PRINT_ERROR = (1 << i for i in range(9))
_SECTION_OF: dict[str, int] = {
    **dict.fromkeys(_JOB_KEYS, _JOB),
    **dict.fromkeys(_TEMP_KEYS, _TEMPS),
    **dict.fromkeys(_FAN_KEYS, _FANS),
    **dict.fromkeys(_SPEED_KEYS, _SPEED),
    "lights_report": _LIGHTS,
    "wifi_signal": _WIFI,
    # Trays, external spools and the loaded one read one another: one section.
    "ams": _AMS,
    "vt_tray": _AMS,
    "vir_slot": _AMS,
    "hms": _HMS,
    "print_error": _PRINT_ERROR,
    # P2S/H2: nozzles, chamber and bed (temperatures) and the loaded tray (ams) live here.
    "device": _TEMPS | _AMS,
}

_new_state = object.__new__
_set_dict = object.__setattr__


class StateBuilder:
    """Turns successive merged reports into snapshots, rebuilding only what changed."""

    def __init__(self, serial: str, stats: DecodeStats | None = None) -> None:
        self.serial = serial
        self._read = _Reader(stats)
        self.info: PrinterInfo | None = None
        self._model: ModelInfo | None = model_from_serial(serial)
        self._module_kinds: dict[int, AmsKind] = {}
        self._last: PrinterState | None = None
        # The single nozzle of A1/P1/X1 and its parsed diameter and type, reused by deltas.
        self._last_nozzle: Nozzle | None = None
        self._nozzle_spec: tuple[Any, Any] = (None, None)
        self._nozzle_parsed: tuple[float | None, str] = (None, "")
        self._force_full = False

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
        self._module_kinds = _ams_kinds_from_modules(info.modules)
        # The chamber sensor, AMS kinds and HMS wiki links depend on these: rebuild everything.
        self._force_full = True

    def build(
        self, raw: Mapping[str, Any], changed: Iterable[str] | None, complete: bool
    ) -> PrinterState:
        """A snapshot of ``raw``; ``changed`` lists the top-level keys that may differ from the
        previous snapshot (None: all of them)."""
        prev = self._last
        if prev is None or changed is None or self._force_full:
            self._force_full = False
            full = self._build_all(raw, complete)
            self._last = full
            return full
        # One dict lookup per changed key says which sections read it.
        stale = 0
        section_of = _SECTION_OF.get
        for key in changed:
            stale |= section_of(key, 0)
        # Start from a copy of the previous snapshot (one C-level dict copy) and replace only
        # the sections the delta touched: untouched ones are shared, not rebuilt.
        values = prev.__dict__.copy()
        if stale:
            if stale & _JOB:
                values["job"] = self._job(raw)
            if stale & _TEMPS:
                values["nozzles"], values["temperatures"] = self._temps(raw)
            if stale & _FANS:
                values["fans"] = self._fans(raw)
            if stale & _SPEED:
                values["speed"] = self._speed(raw)
            if stale & _LIGHTS:
                values["lights"] = self._lights(raw)
            if stale & _WIFI:
                values["wifi_signal_dbm"] = _dbm(self._read.str_(raw, "wifi_signal"))
            if stale & _AMS:
                ams, spools, active = self._ams(raw)
                values["ams"] = ams
                values["external_spools"] = spools
                values["external_spool"] = spools[0] if spools else None
                values["active_tray"] = active
            if stale & _HMS:
                values["hms"] = self._hms(raw)
            if stale & _PRINT_ERROR:
                values["print_error"] = decode_print_error(self._read.int_(raw, "print_error") or 0)
        sdcard = raw.get("sdcard")
        values["sdcard"] = sdcard if isinstance(sdcard, bool) else None
        values["complete"] = complete
        values["updated_at"] = time.time()
        values["raw"] = raw
        state: PrinterState = _new_state(PrinterState)
        _set_dict(state, "__dict__", values)
        self._last = state
        return state

    def _build_all(self, raw: Mapping[str, Any], complete: bool) -> PrinterState:
        r = self._read
        model = self._model
        info = self.info
        nozzles, temps = self._temps(raw)
        ams, spools, active = self._ams(raw)
        sdcard = raw.get("sdcard")
        return PrinterState(
            serial=self.serial,
            model=model.name if model else None,
            firmware=info.firmware if info else None,
            job=self._job(raw),
            temperatures=temps,
            fans=self._fans(raw),
            speed=self._speed(raw),
            lights=self._lights(raw),
            wifi_signal_dbm=_dbm(r.str_(raw, "wifi_signal")),
            ams=ams,
            external_spool=spools[0] if spools else None,
            active_tray=active,
            hms=self._hms(raw),
            print_error=decode_print_error(r.int_(raw, "print_error") or 0),
            sdcard=sdcard if isinstance(sdcard, bool) else None,
            complete=complete,
            updated_at=time.time(),
            raw=raw,
            nozzles=nozzles,
            external_spools=spools,
        )

    # -- sections --

    def _job(self, raw: Mapping[str, Any]) -> Job:
        r = self._read
        get = raw.get
        # Read inline for the types the printers send; anything else takes the lenient path.
        gcode_state = get("gcode_state")
        state = _JOB_STATES.get(gcode_state) if type(gcode_state) is str else None
        if state is None:
            # A missing gcode_state reads as "": UNKNOWN, like any value we do not know.
            state = _JOB_STATES.get(r.str_(raw, "gcode_state").upper(), JobState.UNKNOWN)
        stage_id = get("stg_cur")
        if type(stage_id) is not int:
            stage_id = r.int_(raw, "stg_cur")
        active = state in _ACTIVE
        stage = (
            STAGE_NAMES.get(stage_id, f"stage {stage_id}")
            # stg_cur 0 means "printing" only while RUNNING; in PREPARE it is just unset.
            if active and stage_id is not None and (stage_id != 0 or state is JobState.RUNNING)
            else ""
        )
        prepare = r.int_(raw, "gcode_file_prepare_percent") if state is JobState.PREPARE else None
        file = get("gcode_file")
        if type(file) is not str:
            file = r.str_(raw, "gcode_file")
        name = get("subtask_name")
        if type(name) is not str:
            name = r.str_(raw, "subtask_name")
        percent = get("mc_percent")
        if type(percent) is not int:
            percent = r.int_(raw, "mc_percent") or 0
        remaining = get("mc_remaining_time")
        if type(remaining) is not int:
            remaining = r.int_(raw, "mc_remaining_time")
        layer = get("layer_num")
        if type(layer) is not int:
            layer = r.int_(raw, "layer_num") or 0
        total = get("total_layer_num")
        if type(total) is not int:
            total = r.int_(raw, "total_layer_num") or 0
        print_type = get("print_type")
        if type(print_type) is not str:
            print_type = r.str_(raw, "print_type")
        return Job(
            state,
            file,
            name,
            0 if percent < 0 else 100 if percent > 100 else percent,
            remaining,
            layer,
            total,
            stage_id if active else None,
            stage,
            print_type,
            prepare,
        )

    def _temps(self, raw: Mapping[str, Any]) -> tuple[tuple[Nozzle, ...], Temperatures]:
        r = self._read
        get = raw.get
        # The A1/P1 fast path (every delta): plain numbers at the top level, read inline.
        nozzle = get("nozzle_temper")
        if type(nozzle) is not float:
            nozzle = float(nozzle) if type(nozzle) is int else r.float_(raw, "nozzle_temper")
        nozzle_target = get("nozzle_target_temper")
        if type(nozzle_target) is not float:
            nozzle_target = (
                float(nozzle_target)
                if type(nozzle_target) is int
                else r.float_(raw, "nozzle_target_temper")
            )
        bed = get("bed_temper")
        if type(bed) is not float:
            bed = float(bed) if type(bed) is int else r.float_(raw, "bed_temper")
        bed_target = get("bed_target_temper")
        if type(bed_target) is not float:
            bed_target = (
                float(bed_target) if type(bed_target) is int else r.float_(raw, "bed_target_temper")
            )
        model = self._model
        sensor = model.has_chamber_sensor if model else True
        chamber: float | None = None
        chamber_target: float | None = None
        device = get("device")
        if type(device) is dict and device:
            nozzles = self._device_nozzles(device, raw, nozzle, nozzle_target)
            active = next((n for n in nozzles if n.active), nozzles[0])
            nozzle, nozzle_target = active.temperature, active.target
            if bed is None:
                bed, bed_target = _packed(r.int_(r.dict_(r.dict_(device, "bed"), "info"), "temp"))
            # P2S and H2 report the chamber here (target << 16 | current), not chamber_temper.
            ctc = r.dict_(r.dict_(device, "ctc"), "info")
            if "temp" in ctc:
                chamber, chamber_target = _packed(r.int_(ctc, "temp"))
                chamber_target = chamber_target or None
        else:
            last = self._last_nozzle
            if (
                last is not None
                and last.temperature == nozzle
                and last.target == nozzle_target
                and self._nozzle_spec == (get("nozzle_diameter"), get("nozzle_type"))
            ):
                nozzles = (last,)  # a bed-only delta: the nozzle is the same object
            else:
                nozzles = (self._single_nozzle(raw, nozzle, nozzle_target),)
        if sensor and chamber is None:
            chamber = r.float_(raw, "chamber_temper")
        return nozzles, Temperatures(
            nozzle,
            nozzle_target,
            bed,
            bed_target,
            chamber if sensor else None,
            sensor,
            chamber_target if sensor else None,
        )

    def _single_nozzle(
        self, raw: Mapping[str, Any], temperature: float | None, target: float | None
    ) -> Nozzle:
        spec = (raw.get("nozzle_diameter"), raw.get("nozzle_type"))
        if spec != self._nozzle_spec or self._last_nozzle is None:
            self._nozzle_spec = spec
            self._nozzle_parsed = (_diameter(spec[0]), _nozzle_type(spec[1]))
        diameter, kind = self._nozzle_parsed
        nozzle = Nozzle(0, temperature, target, diameter, kind, True)
        self._last_nozzle = nozzle
        return nozzle

    def _device_nozzles(
        self,
        device: Mapping[str, Any],
        raw: Mapping[str, Any],
        nozzle: float | None,
        nozzle_target: float | None,
    ) -> tuple[Nozzle, ...]:
        """Nozzles from ``device.extruder.info[]`` (temperatures packed target << 16 | current)
        and ``device.nozzle.info[]`` (diameter, type code); the active extruder is bits 4-7 of
        ``device.extruder.state``."""
        r = self._read
        extruder = r.dict_(device, "extruder")
        entries = [e for e in r.list_(extruder, "info") if isinstance(e, dict)]
        if not entries:
            entries = [{"id": 0}]
        active_index = ((r.int_(extruder, "state") or 0) >> 4) & 0xF
        specs: dict[int | None, Mapping[str, Any]] = {}
        for spec in r.list_(r.dict_(device, "nozzle"), "info"):
            if isinstance(spec, dict):
                specs.setdefault(r.int_(spec, "id"), spec)
        nozzles: list[Nozzle] = []
        for entry in entries:
            index = r.int_(entry, "id") or 0
            active = index == active_index or len(entries) == 1
            temperature: float | None
            target: float | None
            if "temp" in entry or not active:
                temperature, target = _packed(r.int_(entry, "temp"))
            else:
                # No reading in device: the top-level one is the active nozzle's.
                temperature, target = nozzle, nozzle_target
            spec = specs.get(index)
            if spec is not None:
                diameter = _diameter(spec.get("diameter"))
                kind = _nozzle_type(spec.get("type"))
            elif active:
                diameter = _diameter(raw.get("nozzle_diameter"))
                kind = _nozzle_type(raw.get("nozzle_type"))
            else:
                diameter, kind = None, ""
            nozzles.append(Nozzle(index, temperature, target, diameter, kind, active))
        nozzles.sort(key=_nozzle_index)
        return tuple(nozzles)

    def _fans(self, raw: Mapping[str, Any]) -> Fans:
        r = self._read
        gear = r.int_(raw, "fan_gear")
        if gear:
            # Studio prefers fan_gear: part | aux << 8 | chamber << 16, each 0-255.
            part: int | None = _pct255(gear & 0xFF)
            aux: int | None = _pct255((gear >> 8) & 0xFF)
            chamber: int | None = _pct255((gear >> 16) & 0xFF)
        else:
            part = _pct15(r.int_(raw, "cooling_fan_speed"))
            aux = _pct15(r.int_(raw, "big_fan1_speed"))
            chamber = _pct15(r.int_(raw, "big_fan2_speed"))
        return Fans(
            part=part,
            aux=aux,
            chamber=chamber,
            heatbreak=_pct15(r.int_(raw, "heatbreak_fan_speed")),
        )

    def _speed(self, raw: Mapping[str, Any]) -> Speed:
        level = self._read.int_(raw, "spd_lvl")
        return Speed(
            level=level,
            name=SPEED_LEVELS.get(level or 0, ""),
            percent=self._read.int_(raw, "spd_mag"),
        )

    def _lights(self, raw: Mapping[str, Any]) -> Mapping[str, str]:
        lights: dict[str, str] = {}
        for item in self._read.list_(raw, "lights_report"):
            if isinstance(item, dict) and isinstance(item.get("node"), str):
                lights[item["node"]] = str(item.get("mode", ""))
        return lights

    def _tray(self, data: Mapping[str, Any], ams_id: int | None, slot: int | None) -> Tray:
        r = self._read
        tray_id = r.int_(data, "id")
        if ams_id is not None:
            slot = tray_id if tray_id is not None else slot
            # An AMS HT holds one spool, numbered like the unit (protocol.md §4.3).
            tray_id = ams_id if ams_id >= AMS_HT_FIRST_ID else ams_id * 4 + (slot or 0)
        remain = r.int_(data, "remain")
        tray_type = r.str_(data, "tray_type")
        color = r.str_(data, "tray_color").upper()
        return Tray(
            tray_id=tray_id if tray_id is not None else EXTERNAL_SPOOL_ID,
            ams_id=ams_id,
            slot=slot,
            empty=_tray_empty(data, tray_type, color, r),
            type=tray_type,
            color=color,
            remain=remain if remain is not None and remain >= 0 else None,
            brand=r.str_(data, "tray_sub_brands"),
            preset=r.str_(data, "tray_info_idx"),
        )

    def _ams(
        self, raw: Mapping[str, Any]
    ) -> tuple[tuple[AmsUnit, ...], tuple[Tray, ...], int | None]:
        """AMS units, external spools and the loaded tray's id."""
        r = self._read
        block = r.dict_(raw, "ams")
        default_kind = AmsKind(self._model.ams_kind) if self._model else AmsKind.AMS
        units: list[AmsUnit] = []
        for unit in r.list_(block, "ams"):
            if not isinstance(unit, dict):
                continue
            ams_id = r.int_(unit, "id")
            if ams_id is None:
                continue
            trays = tuple(
                self._tray(t, ams_id, None) for t in r.list_(unit, "tray") if isinstance(t, dict)
            )
            info = _hex(unit.get("info"))
            kind = (
                self._module_kinds.get(ams_id)
                or (AmsKind.AMS_HT if ams_id >= AMS_HT_FIRST_ID else None)
                or (_INFO_KINDS.get(info & 0xF) if info is not None else None)
                or default_kind
            )
            level = r.int_(unit, "humidity")
            percent = r.int_(unit, "humidity_raw")
            dry_time = r.int_(unit, "dry_time") if "dry_time" in unit else None
            units.append(
                AmsUnit(
                    ams_id=ams_id,
                    # 0 (AMS HT) and out-of-range values mean "not reported".
                    humidity=level if level is not None and 1 <= level <= 5 else None,
                    temperature=r.float_(unit, "temp"),
                    trays=trays,
                    kind=kind,
                    humidity_percent=percent
                    if percent is not None and 0 < percent <= 100
                    else None,
                    drying=None if dry_time is None else dry_time > 0,
                    drying_minutes_left=dry_time if dry_time else None,
                )
            )
        spools = self._external_spools(raw)
        return tuple(units), spools, self._active_tray(raw, block, spools)

    def _external_spools(self, raw: Mapping[str, Any]) -> tuple[Tray, ...]:
        r = self._read
        slots = raw.get("vir_slot")
        if isinstance(slots, list) and slots:
            # Newer firmware: a list with ids 254 and 255 (the H2D has two holders).
            spools = [self._tray(s, None, None) for s in slots if isinstance(s, dict)]
            return tuple(sorted(spools, key=_tray_id))
        vt = r.dict_(raw, "vt_tray")
        return (self._tray(vt, None, None),) if vt else ()

    def _active_tray(
        self, raw: Mapping[str, Any], block: Mapping[str, Any], spools: tuple[Tray, ...]
    ) -> int | None:
        r = self._read
        device = raw.get("device")
        if isinstance(device, dict):
            extruder = r.dict_(device, "extruder")
            entries = [e for e in r.list_(extruder, "info") if isinstance(e, dict)]
            if entries:
                # P2S/H2/X2D/A2L: each extruder says what feeds it, snow = ams_id << 8 | slot.
                active_index = ((r.int_(extruder, "state") or 0) >> 4) & 0xF
                entry = next((e for e in entries if r.int_(e, "id") == active_index), entries[0])
                snow = r.int_(entry, "snow")
                if snow is None:
                    return None
                ams_id, slot = (snow >> 8) & 0xFF, snow & 0xFF
                if slot == NO_TRAY_ID:
                    return None
                if ams_id in (EXTERNAL_SPOOL_ID, NO_TRAY_ID):
                    return ams_id  # the external spool with that vir_slot id
                return ams_id if ams_id >= AMS_HT_FIRST_ID else ams_id * 4 + slot
        now = r.int_(block, "tray_now")
        if now is None or now == NO_TRAY_ID:
            return None
        if now == EXTERNAL_SPOOL_ID and spools and spools[0].tray_id != EXTERNAL_SPOOL_ID:
            # "254" in tray_now is "the external spool", whatever id vir_slot gives it.
            return spools[0].tray_id
        return now

    def _hms(self, raw: Mapping[str, Any]) -> tuple[HmsAlert, ...]:
        series = self._model.wiki_series if self._model else WIKI_SERIES_DEFAULT
        alerts: list[HmsAlert] = []
        for item in self._read.list_(raw, "hms"):
            if not isinstance(item, dict):
                continue
            attr, code = item.get("attr"), item.get("code")
            if isinstance(attr, int) and isinstance(code, int) and attr and code:
                if not (hms_in_range(attr) and hms_in_range(code)):
                    self._read._bad("hms", item)  # malformed: counted, never formatted
                    continue
                alerts.append(decode_hms(attr, code, series))
        return tuple(alerts)


def _nozzle_index(nozzle: Nozzle) -> int:
    return nozzle.index


def _tray_id(tray: Tray) -> int:
    return tray.tray_id


def _packed(value: int | None) -> tuple[float | None, float | None]:
    """(current, target) from newer firmware's ``target << 16 | current``."""
    if value is None or value < 0:
        return None, None
    return float(value & 0xFFFF), float((value >> 16) & 0xFFFF)


def _hex(value: Any) -> int | None:
    if isinstance(value, str):
        try:
            return int(value, 16)
        except ValueError:
            return None
    return None


def _diameter(value: Any) -> float | None:
    try:
        diameter = float(value)
    except (TypeError, ValueError):
        return None
    return diameter if 0 < diameter < 10 else None


_NOZZLE_MATERIALS = {"00": "stainless_steel", "01": "hardened_steel", "05": "tungsten_carbide"}


def _nozzle_type(value: Any) -> str:
    """A readable nozzle type from ``nozzle_type`` ("hardened_steel") or a newer firmware's
    code ("HS01", "HH01", "HS01-0.4": second letter H or E = high flow, digits = material)."""
    if not isinstance(value, str) or not value:
        return ""
    code = value.split("-", 1)[0]
    if len(code) == 4 and code[0] == "H" and code[2:].isdigit():
        if code[1] == "U":
            return "tpu_high_flow"
        material = _NOZZLE_MATERIALS.get(code[2:], "unknown")
        return f"high_flow_{material}" if code[1] in "HE" else material
    return value


def _tray_empty(data: Mapping[str, Any], tray_type: str, color: str, r: _Reader) -> bool:
    """Empty whatever form the printer uses: ``{"id": "2"}`` alone; newer firmware's tray
    ``state`` without its spool bit; an external spool with no type and colour 00000000."""
    if "tray_type" not in data and "tray_color" not in data:
        return True
    state = data.get("state")
    if isinstance(state, int) and not isinstance(state, bool):
        return not state & 1
    return not tray_type and color in ("", "00000000")


def _ams_kinds_from_modules(modules: Iterable[Mapping[str, Any]]) -> dict[int, AmsKind]:
    """{unit id: kind} from get_version module names such as "n3f/0" or "ams_f1/16"."""
    kinds: dict[int, AmsKind] = {}
    for module in modules:
        name = module.get("name")
        if not isinstance(name, str) or "/" not in name:
            continue
        prefix, _, number = name.partition("/")
        kind = _MODULE_KINDS.get(prefix)
        if kind is not None and number.isdigit():
            kinds[int(number)] = kind
    return kinds


@functools.lru_cache(maxsize=256)  # a printer repeats a handful of values
def _dbm(text: str) -> int | None:
    try:
        return int(text.lower().removesuffix("dbm"))
    except ValueError:
        return None


def _pct15(value: int | None) -> int | None:
    return None if value is None else round(max(0, min(15, value)) * 100 / 15)


def _pct255(value: int) -> int:
    return round(value * 100 / 255)


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
