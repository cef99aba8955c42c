"""Reading each section of a snapshot from the merged report, leniently (protocol.md §4).

Reports are loose: numbers arrive as strings, keys go missing, values change type between
firmware versions, and models put the same reading in different places (``chamber_temper``
or ``device.ctc``; ``vt_tray`` or ``vir_slot``). Every field is coerced leniently; a value that
cannot be read is counted (once-per-kind log) and shown as unknown instead of failing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from bambu_lan.protocol.decode import DecodeStats
from bambu_lan.protocol.errors_table import (
    WIKI_SERIES_DEFAULT,
    HmsAlert,
    decode_hms,
    decode_print_error,
    hms_in_range,
)
from bambu_lan.protocol.models import ModelInfo
from bambu_lan.protocol.records import remake
from bambu_lan.protocol.snapshot import (
    ACTIVE_JOB_STATES,
    AMS_HT_FIRST_ID,
    EXTERNAL_SPOOL_ID,
    JOB_STATES_BY_NAME,
    NO_TRAY_ID,
    SPEED_LEVELS,
    STAGE_NAMES,
    AmsKind,
    AmsUnit,
    Fans,
    Job,
    JobState,
    Nozzle,
    Speed,
    Temperatures,
    Tray,
)

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# Enum members as module constants: reading them from the class is several times slower.
_UNKNOWN, _RUNNING, _PREPARE = JobState.UNKNOWN, JobState.RUNNING, JobState.PREPARE

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


# --- which sections a report key belongs to ---------------------------------------------

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
        "job_id",
        "task_id",
        "subtask_id",
    }
)
# The job keys ``Sections.job_progress`` reads again (the rest of the job is unchanged).
PROGRESS_KEYS = frozenset({"mc_percent", "mc_remaining_time", "layer_num"})
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
_JOB, _TEMPS, _FANS, _SPEED, _LIGHTS, _WIFI, _AMS, _HMS, _PRINT_ERROR, _SDCARD = (
    1 << i for i in range(10)
)
# The snapshot fields each section builds (snapshot.LAZY_FIELDS says the same the other way).
_FIELDS_OF_SECTION: dict[int, tuple[str, ...]] = {
    _JOB: ("job",),
    _TEMPS: ("temperatures", "nozzles"),
    _FANS: ("fans",),
    _SPEED: ("speed",),
    _LIGHTS: ("lights",),
    _WIFI: ("wifi_signal_dbm",),
    _AMS: ("ams", "external_spools", "external_spool", "active_tray"),
    _HMS: ("hms",),
    _PRINT_ERROR: ("print_error",),
    _SDCARD: ("sdcard",),
}
# Report key -> the sections (bits) that read it.
SECTION_OF_KEY: dict[str, int] = {
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
    "sdcard": _SDCARD,
    # P2S/H2: nozzles, chamber and bed (temperatures) and the loaded tray (ams) live here.
    "device": _TEMPS | _AMS,
}

# Sections (bits) -> the snapshot fields they build; filled by fields_of_sections.
FIELDS_OF_SECTIONS: dict[int, tuple[str, ...]] = {}


def section_bits(report_keys: Iterable[str]) -> int:
    """The sections (bits) that read any of ``report_keys``."""
    stale = 0
    section_of = SECTION_OF_KEY.get
    for key in report_keys:
        stale |= section_of(key, 0)
    return stale


def fields_of_sections(bits: int) -> tuple[str, ...]:
    """The snapshot fields the sections ``bits`` build (memoized: at most 2**10 entries)."""
    fields = FIELDS_OF_SECTIONS.get(bits)
    if fields is None:
        fields = tuple(
            name for bit, names in _FIELDS_OF_SECTION.items() if bits & bit for name in names
        )
        FIELDS_OF_SECTIONS[bits] = fields
    return fields


# Delta keys (as sent, envelope included) -> what ``stale_fields`` says of them. A printer
# repeats a few dozen key sets; the bound keeps odd senders from growing it without end.
STALE_FIELDS: dict[tuple[str, ...], tuple[tuple[str, ...], bool]] = {}
_STALE_FIELDS_MAX = 4096


def stale_fields(report_keys: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """(the snapshot fields a report with ``report_keys`` makes stale, whether its job keys
    are ``PROGRESS_KEYS`` only). In the second case "job" is not among the fields: the job is
    the previous one with ``Sections.job_progress``. Memoized in ``STALE_FIELDS``."""
    bits = section_bits(report_keys)
    fields = fields_of_sections(bits)
    progress_only = False
    if bits & _JOB and PROGRESS_KEYS.issuperset(k for k in report_keys if k in _JOB_KEYS):
        progress_only = True
        fields = tuple(name for name in fields if name != "job")
    if len(STALE_FIELDS) >= _STALE_FIELDS_MAX:
        STALE_FIELDS.clear()
    STALE_FIELDS[report_keys] = result = (fields, progress_only)
    return result


# Report keys that tell one job from the next besides its file and name ("0" or "": none).
_JOB_ID_KEYS = ("job_id", "task_id", "subtask_id")


# get_version module names per kind ("n3f/0" is an AMS 2 Pro with id 0).
_MODULE_KINDS = {
    "ams": AmsKind.AMS,
    "ams_f1": AmsKind.AMS_LITE,
    "n3f": AmsKind.AMS_2_PRO,
    "n3s": AmsKind.AMS_HT,
}
# Low nibble of a unit's hex `info` in captures of P2S, H2 and X1 printers.
_INFO_KINDS = {1: AmsKind.AMS, 3: AmsKind.AMS_2_PRO, 4: AmsKind.AMS_HT, 5: AmsKind.AMS_LITE}


class Sections:
    """Builds the sections of snapshots for one printer, as far as its model is known."""

    def __init__(
        self,
        stats: DecodeStats | None,
        model: ModelInfo | None,
        modules: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self._read = _Reader(stats)
        self._model = model
        self._module_kinds = ams_kinds_from_modules(modules)
        # The single nozzle of A1/P1/X1 with its parsed diameter and type, reused by deltas.
        self._nozzle_cache: tuple[tuple[Any, Any], float | None, str] = ((None, None), None, "")

    def fill(self, values: dict[str, Any], group: str) -> None:
        """Build section ``group`` of a snapshot from its ``raw`` into ``values``."""
        raw = values["raw"]
        if group == "job":
            values["job"] = self.job(raw)
        elif group == "temperatures":
            values["nozzles"], values["temperatures"] = self.temperatures(raw)
        elif group == "ams":
            ams, spools, active = self.ams(raw)
            values["ams"] = ams
            values["external_spools"] = spools
            values["external_spool"] = spools[0] if spools else None
            values["active_tray"] = active
        elif group == "wifi":
            values["wifi_signal_dbm"] = _dbm(self._read.str_(raw, "wifi_signal"))
        elif group == "hms":
            values["hms"] = self.hms(raw)
        elif group == "print_error":
            values["print_error"] = decode_print_error(self._read.int_(raw, "print_error") or 0)
        elif group == "fans":
            values["fans"] = self.fans(raw)
        elif group == "speed":
            values["speed"] = self.speed(raw)
        elif group == "lights":
            values["lights"] = self.lights(raw)
        elif group == "sdcard":
            sdcard = raw.get("sdcard")
            values["sdcard"] = sdcard if isinstance(sdcard, bool) else None
        else:
            raise ValueError(f"no section {group!r}")

    # -- sections --

    def job(self, raw: Mapping[str, Any]) -> Job:
        r = self._read
        get = raw.get
        # Read inline for the types the printers send; anything else takes the lenient path.
        gcode_state = get("gcode_state")
        state = JOB_STATES_BY_NAME.get(gcode_state) if type(gcode_state) is str else None
        if state is None:
            # A missing gcode_state reads as "": UNKNOWN, like any value we do not know.
            state = JOB_STATES_BY_NAME.get(r.str_(raw, "gcode_state").upper(), _UNKNOWN)
        stage_id = get("stg_cur")
        if type(stage_id) is not int:
            stage_id = r.int_(raw, "stg_cur")
        active = state in ACTIVE_JOB_STATES
        stage = (
            (STAGE_NAMES.get(stage_id) or f"stage {stage_id}")
            # stg_cur 0 means "printing" only while RUNNING; in PREPARE it is just unset.
            if active and stage_id is not None and (stage_id != 0 or state is _RUNNING)
            else ""
        )
        prepare = r.int_(raw, "gcode_file_prepare_percent") if state is _PREPARE else None
        ident = ""
        for key in _JOB_ID_KEYS:
            value = get(key)
            if value not in (None, "", "0", 0):
                ident = f"{key}={value}"
                break
        file = get("gcode_file")
        if type(file) is not str:
            file = r.str_(raw, "gcode_file")
        name = get("subtask_name")
        if type(name) is not str:
            name = r.str_(raw, "subtask_name")
        progress, remaining, layer = self._progress(raw)
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
            progress,
            remaining,
            layer,
            total,
            stage_id if active else None,
            stage,
            print_type,
            prepare,
            ident,
        )

    def job_progress(self, job: Job, raw: Mapping[str, Any]) -> Job:
        """``job`` with progress, time left and layer read again from ``raw``: what most
        reports during a print change, and all they change when their only job keys are
        ``PROGRESS_KEYS`` (the other fields would be read the same)."""
        progress, remaining, layer = self._progress(raw)
        values = job.__dict__.copy()  # records.evolve without its dict of changes
        values["progress"] = progress
        values["remaining_minutes"] = remaining
        values["layer"] = layer
        return remake(job, values)

    def _progress(self, raw: Mapping[str, Any]) -> tuple[int, int | None, int]:
        """A job's (percent done 0-100, minutes left, layer)."""
        get = raw.get
        percent = get("mc_percent")
        if type(percent) is not int:
            percent = self._read.int_(raw, "mc_percent") or 0
        remaining = get("mc_remaining_time")
        if type(remaining) is not int:
            remaining = self._read.int_(raw, "mc_remaining_time")
        layer = get("layer_num")
        if type(layer) is not int:
            layer = self._read.int_(raw, "layer_num") or 0
        return 0 if percent < 0 else 100 if percent > 100 else percent, remaining, layer

    def temperatures(self, raw: Mapping[str, Any]) -> tuple[tuple[Nozzle, ...], Temperatures]:
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
        cached, diameter, kind = self._nozzle_cache
        if spec != cached:
            diameter, kind = _diameter(spec[0]), _nozzle_type(spec[1])
            self._nozzle_cache = (spec, diameter, kind)  # one assignment: safe across threads
        return Nozzle(0, temperature, target, diameter, kind, True)

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

    def fans(self, raw: Mapping[str, Any]) -> Fans:
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

    def speed(self, raw: Mapping[str, Any]) -> Speed:
        level = self._read.int_(raw, "spd_lvl")
        return Speed(
            level=level,
            name=SPEED_LEVELS.get(level or 0, ""),
            percent=self._read.int_(raw, "spd_mag"),
        )

    def lights(self, raw: Mapping[str, Any]) -> Mapping[str, str]:
        lights: dict[str, str] = {}
        for item in self._read.list_(raw, "lights_report"):
            if isinstance(item, dict) and isinstance(item.get("node"), str):
                lights[item["node"]] = str(item.get("mode", ""))
        return lights

    def tray(self, data: Mapping[str, Any], ams_id: int | None, slot: int | None) -> Tray:
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

    def ams(
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
                self.tray(t, ams_id, None) for t in r.list_(unit, "tray") if isinstance(t, dict)
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
            spools = [self.tray(s, None, None) for s in slots if isinstance(s, dict)]
            return tuple(sorted(spools, key=_tray_id))
        vt = r.dict_(raw, "vt_tray")
        return (self.tray(vt, None, None),) if vt else ()

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

    def hms(self, raw: Mapping[str, Any]) -> tuple[HmsAlert, ...]:
        series = self._model.wiki_series if self._model else WIKI_SERIES_DEFAULT
        alerts: list[HmsAlert] = []
        for item in self._read.list_(raw, "hms"):
            if not isinstance(item, dict):
                continue
            attr, code = item.get("attr"), item.get("code")
            if isinstance(attr, int) and isinstance(code, int) and attr and code:
                if not (hms_in_range(attr) and hms_in_range(code)):
                    self._read._bad("hms", item)  # noqa: SLF001 - counted, never formatted
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


def ams_kinds_from_modules(modules: Iterable[Mapping[str, Any]]) -> dict[int, AmsKind]:
    """{unit id: kind} from get_version module names such as "n3f/0" or "ams_f1/16"."""
    kinds: dict[int, AmsKind] = {}
    for module in modules:
        name = module.get("name")
        if not isinstance(name, str) or "/" not in name:
            continue
        prefix, _, number = name.partition("/")
        kind = _MODULE_KINDS.get(prefix)
        if kind is not None and number.isdecimal():
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
