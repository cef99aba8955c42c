"""Typed, immutable snapshots of a printer, built from the merged report (protocol.md §4).

Reports are loose: numbers arrive as strings, keys go missing, values change type between
firmware versions. Every field here is coerced leniently; a value that cannot be read is
counted (once-per-kind log) and shown as unknown instead of failing.

Building is incremental: a delta touches a few keys, so only the sections that read those
keys are rebuilt and the others are shared with the previous snapshot.
"""

from __future__ import annotations

import dataclasses
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
from bambu_lan.protocol.models import ModelInfo, identify_model, model_from_serial


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
class Temperatures:
    nozzle: float | None
    nozzle_target: float | None
    bed: float | None
    bed_target: float | None
    chamber: float | None  # None: no sensor (A1 and P1 report a constant 5)
    chamber_sensor: bool


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
    tray_id: int  # absolute: ams_id*4 + slot, 254 external spool
    ams_id: int | None
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


@_fast_init
@dataclass(frozen=True, slots=True)
class AmsUnit:
    ams_id: int
    humidity: int | None
    temperature: float | None
    trays: tuple[Tray, ...]


@_fast_init
@dataclass(frozen=True, slots=True)
class PrinterInfo:
    """What ``info.get_version`` says: model and firmware."""

    model: str  # "A1"
    model_code: str  # "N2S"
    firmware: str  # ota sw_ver
    modules: tuple[Mapping[str, Any], ...] = ()


@_fast_init
@dataclass(frozen=True, slots=True)
class PrinterState:
    """One immutable snapshot of everything the printer has told us."""

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
    external_spool: Tray | None
    active_tray: int | None  # tray_now: absolute tray id, 254 external spool, None unloaded
    hms: tuple[HmsAlert, ...]
    print_error: PrintError | None
    sdcard: bool | None
    complete: bool  # a full report has been merged (not only deltas)
    updated_at: float  # time.time() of the last report merged
    raw: Mapping[str, Any] = field(repr=False)  # merged `print` object, printer's key names

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the typed fields plus ``raw``."""
        data = asdict(self)
        data["job"]["state"] = self.job.state.value
        data["lights"] = dict(self.lights)
        data["raw"] = dict(self.raw)
        data["hms"] = [{**asdict(a), "short": a.short} for a in self.hms]
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
    {"nozzle_temper", "nozzle_target_temper", "bed_temper", "bed_target_temper", "chamber_temper"}
)
_FAN_KEYS = frozenset(
    {"cooling_fan_speed", "big_fan1_speed", "big_fan2_speed", "heatbreak_fan_speed", "fan_gear"}
)
_SPEED_KEYS = frozenset({"spd_lvl", "spd_mag"})

# Sections of a snapshot, as bits, and the top-level keys each one reads.
_JOB, _TEMPS, _FANS, _SPEED, _LIGHTS, _WIFI, _AMS, _VT_TRAY, _HMS, _PRINT_ERROR = (
    1 << i for i in range(10)
)
_ALL_SECTIONS = (1 << 10) - 1
_SECTION_OF: dict[str, int] = {
    **dict.fromkeys(_JOB_KEYS, _JOB),
    **dict.fromkeys(_TEMP_KEYS, _TEMPS),
    **dict.fromkeys(_FAN_KEYS, _FANS),
    **dict.fromkeys(_SPEED_KEYS, _SPEED),
    "lights_report": _LIGHTS,
    "wifi_signal": _WIFI,
    "ams": _AMS,
    "vt_tray": _VT_TRAY,
    "hms": _HMS,
    "print_error": _PRINT_ERROR,
}


class StateBuilder:
    """Turns successive merged reports into snapshots, rebuilding only what changed."""

    def __init__(self, serial: str, stats: DecodeStats | None = None) -> None:
        self.serial = serial
        self._read = _Reader(stats)
        self.info: PrinterInfo | None = None
        self._model: ModelInfo | None = model_from_serial(serial)
        self._last: PrinterState | None = None
        self._force_full = False

    @property
    def model(self) -> ModelInfo | None:
        return self._model

    def set_info(self, info: PrinterInfo) -> None:
        """Model and firmware from get_version; the next snapshot carries them."""
        self.info = info
        self._model = identify_model(project_name=info.model_code, serial=self.serial) or (
            self._model
        )
        # The chamber sensor and HMS wiki links depend on the model: rebuild every section.
        self._force_full = True

    def build(
        self, raw: Mapping[str, Any], changed: Iterable[str] | None, complete: bool
    ) -> PrinterState:
        """A snapshot of ``raw``; ``changed`` lists the top-level keys that may differ from the
        previous snapshot (None: all of them)."""
        prev = self._last
        if prev is None or changed is None or self._force_full:
            stale = _ALL_SECTIONS
            self._force_full = False
        else:
            # One dict lookup per changed key says which sections read it.
            stale = 0
            section_of = _SECTION_OF.get
            for key in changed:
                stale |= section_of(key, 0)
        r = self._read
        job = self._job(raw) if prev is None or stale & _JOB else prev.job
        temps = self._temps(raw) if prev is None or stale & _TEMPS else prev.temperatures
        fans = self._fans(raw) if prev is None or stale & _FANS else prev.fans
        speed = self._speed(raw) if prev is None or stale & _SPEED else prev.speed
        lights = self._lights(raw) if prev is None or stale & _LIGHTS else prev.lights
        if prev is None or stale & _WIFI:
            wifi = _dbm(r.str_(raw, "wifi_signal"))
        else:
            wifi = prev.wifi_signal_dbm
        if prev is None or stale & _AMS:
            ams, active = self._ams(raw)
        else:
            ams, active = prev.ams, prev.active_tray
        if prev is None or stale & _VT_TRAY:
            vt = r.dict_(raw, "vt_tray")
            external = self._tray(vt, None, None) if vt else None
        else:
            external = prev.external_spool
        hms = self._hms(raw) if prev is None or stale & _HMS else prev.hms
        if prev is None or stale & _PRINT_ERROR:
            print_error = decode_print_error(r.int_(raw, "print_error") or 0)
        else:
            print_error = prev.print_error
        sdcard = raw.get("sdcard")
        model = self._model
        info = self.info
        state = PrinterState(
            self.serial,
            model.name if model else None,
            info.firmware if info else None,
            job,
            temps,
            fans,
            speed,
            lights,
            wifi,
            ams,
            external,
            active,
            hms,
            print_error,
            sdcard if isinstance(sdcard, bool) else None,
            complete,
            time.time(),
            raw,
        )
        self._last = state
        return state

    # -- sections --

    def _job(self, raw: Mapping[str, Any]) -> Job:
        r = self._read
        # A missing gcode_state reads as "": UNKNOWN, like any value we do not know.
        state = _JOB_STATES.get(r.str_(raw, "gcode_state").upper(), JobState.UNKNOWN)
        stage_id = r.int_(raw, "stg_cur")
        active = state.active
        stage = (
            STAGE_NAMES.get(stage_id, f"stage {stage_id}")
            # stg_cur 0 means "printing" only while RUNNING; in PREPARE it is just unset.
            if active and stage_id is not None and (stage_id != 0 or state is JobState.RUNNING)
            else ""
        )
        prepare = r.int_(raw, "gcode_file_prepare_percent") if state is JobState.PREPARE else None
        return Job(
            state=state,
            file=r.str_(raw, "gcode_file"),
            name=r.str_(raw, "subtask_name"),
            progress=max(0, min(100, r.int_(raw, "mc_percent") or 0)),
            remaining_minutes=r.int_(raw, "mc_remaining_time"),
            layer=r.int_(raw, "layer_num") or 0,
            total_layers=r.int_(raw, "total_layer_num") or 0,
            stage_id=stage_id if active else None,
            stage=stage,
            print_type=r.str_(raw, "print_type"),
            prepare_percent=prepare,
        )

    def _temps(self, raw: Mapping[str, Any]) -> Temperatures:
        r = self._read
        sensor = self._model.has_chamber_sensor if self._model else True
        return Temperatures(
            nozzle=r.float_(raw, "nozzle_temper"),
            nozzle_target=r.float_(raw, "nozzle_target_temper"),
            bed=r.float_(raw, "bed_temper"),
            bed_target=r.float_(raw, "bed_target_temper"),
            chamber=r.float_(raw, "chamber_temper") if sensor else None,
            chamber_sensor=sensor,
        )

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
        if ams_id is not None and tray_id is not None:
            slot = tray_id
            tray_id = ams_id * 4 + tray_id
        remain = r.int_(data, "remain")
        tray_type = r.str_(data, "tray_type")
        return Tray(
            tray_id=tray_id if tray_id is not None else EXTERNAL_SPOOL_ID,
            ams_id=ams_id,
            slot=slot,
            empty=not tray_type and "tray_color" not in data,
            type=tray_type,
            color=r.str_(data, "tray_color").upper(),
            remain=remain if remain is not None and remain >= 0 else None,
            brand=r.str_(data, "tray_sub_brands"),
            preset=r.str_(data, "tray_info_idx"),
        )

    def _ams(self, raw: Mapping[str, Any]) -> tuple[tuple[AmsUnit, ...], int | None]:
        r = self._read
        block = r.dict_(raw, "ams")
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
            units.append(
                AmsUnit(
                    ams_id=ams_id,
                    humidity=r.int_(unit, "humidity"),
                    temperature=r.float_(unit, "temp"),
                    trays=trays,
                )
            )
        now = r.int_(block, "tray_now")
        return tuple(units), (None if now is None or now == NO_TRAY_ID else now)

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
