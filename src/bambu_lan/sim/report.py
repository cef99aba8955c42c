"""Shapes of what a simulated printer reports: the full ``print`` object, trays, HMS entries
and the ``get_version`` module list, per model (protocol.md §4.3, §4.7, §4.8, §6, §11).

Key names, nesting and JSON types follow a real A1 full report (``"0"`` strings stay strings,
targets are ints, readings are floats); the values are our own. Everything here is pure: the
printer model owns the state and its changes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import struct
from dataclasses import dataclass
from typing import Any, Final, Literal

from bambu_lan.sim.profiles import ModelProfile

JsonObject = dict[str, Any]
Family = Literal["a1", "p1", "x1"]

# Tray ids in ams.tray_now / tray_tar / tray_pre (§4.3).
EXTERNAL_SPOOL: Final = "254"
NO_TRAY: Final = "255"
EXTERNAL_AMS_IDS: Final = frozenset({254, 255})  # ams_id values that name the external spool
AMS_HT_FIRST_ID: Final = 128  # AMS HT units are 128-135, their one tray has the unit's id

# spd_lvl -> spd_mag (§4.2; values as the slicers show them).
SPEED_MAGNITUDES: Final[dict[int, int]] = {1: 50, 2: 100, 3: 124, 4: 166}

# print_error values (§6.2) and authorization failures (§6.3).
PRINT_ERROR_CANCELLED: Final = 0x0300400C  # 50348044, user stop
PRINT_ERROR_FILAMENT_RUNOUT: Final = 0x03008015  # 50364437, external spool ran out
PRINT_ERROR_FEED_FAILED: Final = 0x07008006  # 117473286, unable to feed filament (AMS)
PRINT_ERROR_FILE_NOT_FOUND: Final = 0x05004002  # unsupported print file path or name
PRINT_ERROR_BUSY: Final = 0x05004004  # device is busy
ERR_VERIFY_FAILED: Final = 84033543  # 0x05024007: no signature envelope
ERR_ENVELOPE_MALFORMED: Final = 84033545  # 0x05024009: envelope present but not valid
HMS_VERIFY_FAILED: Final = (0x05000500, 0x00010007)  # HMS_0500_0500_0001_0007

# home_flag bits (§4.6).
HOME_X: Final = 1 << 0
HOME_Y: Final = 1 << 1
HOME_Z: Final = 1 << 2
HOME_XYZ: Final = HOME_X | HOME_Y | HOME_Z
_HOME_MAINS_220V: Final = 1 << 3
_HOME_XCAM_RECOVERY: Final = 1 << 4
_HOME_AMS_CALIBRATE_REMAIN: Final = 1 << 7
_HOME_SD_PRESENT: Final = 1 << 8
_HOME_AMS_AUTO_SWITCH: Final = 1 << 10
_HOME_PROMPT_SOUND: Final = 1 << 17
_HOME_TANGLE_DETECT: Final = 1 << 19
_HOME_MOTOR_NOISE_CALI: Final = 1 << 21
# Bits real A1 reports carry whose meaning nobody has published (§4.6: 14, 16, 22, 24, 25, 28, 29).
_HOME_A1_UNDOCUMENTED: Final = (1 << 14) | (1 << 16) | (1 << 22) | (1 << 24) | (1 << 25) | (3 << 28)

# float32(0.02): firmware stores pressure advance as a float32, so JSON shows its double form.
DEFAULT_PRESSURE_ADVANCE: Final[float] = struct.unpack("<f", struct.pack("<f", 0.02))[0]

_ZERO_TAG_UID: Final = "0" * 16
_ZERO_TRAY_UUID: Final = "0" * 32
_ZERO_XCAM_INFO: Final = "0" * 24


@dataclass(frozen=True, slots=True)
class FilamentType:
    """Generic slicer preset of a material: what a tray reports for it."""

    preset_id: str  # tray_info_idx of the slicer's generic preset
    nozzle_min: int
    nozzle_max: int
    print_nozzle: int  # nozzle target the simulated job uses
    print_bed: int  # bed target the simulated job uses


FILAMENT_TYPES: Final[dict[str, FilamentType]] = {
    "PLA": FilamentType("GFL99", 190, 240, 220, 65),
    "PETG": FilamentType("GFG99", 220, 260, 250, 70),
    "ABS": FilamentType("GFB99", 240, 270, 260, 90),
    "ASA": FilamentType("GFB98", 240, 270, 260, 90),
    "TPU": FilamentType("GFU99", 200, 250, 230, 35),
    "PA": FilamentType("GFN99", 260, 290, 280, 90),
    "PC": FilamentType("GFC99", 260, 280, 270, 100),
    "PVA": FilamentType("GFS99", 190, 240, 220, 55),
}
_FALLBACK_FILAMENT: Final = FILAMENT_TYPES["PLA"]


def filament_type(tray_type: str) -> FilamentType:
    """The generic preset of a material name (unknown materials behave like PLA)."""
    return FILAMENT_TYPES.get(tray_type.upper(), _FALLBACK_FILAMENT)


@dataclass(frozen=True, slots=True)
class Spool:
    """What sits in a tray. ``bambu`` spools carry an RFID tag and Bambu's preset ids."""

    tray_type: str = "PLA"
    color: str = "FFFFFFFF"
    remain: int = 100
    bambu: bool = False
    preset_id: str | None = None  # tray_info_idx; None: the material's generic preset
    sub_brand: str = ""


# --- families -----------------------------------------------------------------------------


def model_family(profile: ModelProfile) -> Family:
    """Report family: X1 (full reports), A1 (AMS Lite, bed slinger) or P1 (everything else)."""
    if not profile.delta_reports:
        return "x1"
    return "a1" if profile.has_ams_lite else "p1"


def idle_stage(profile: ModelProfile) -> int:
    """``stg_cur`` of an idle printer: 0 on A1, 255 on P1, -1 on X1 (§4.2)."""
    return {"a1": 0, "p1": 255, "x1": -1}[model_family(profile)]


def has_aux_fans(profile: ModelProfile) -> bool:
    """P1/X1 have aux and chamber fans (M106 P2/P3); the A1 family has none (§11)."""
    return model_family(profile) != "a1"


# --- small encoders -----------------------------------------------------------------------


def ipv4_little_endian(address: str) -> int:
    """``net.info[].ip``/``mask``: the IPv4 address as a little-endian uint32 (§4.2)."""
    return int.from_bytes(ipaddress.IPv4Address(address).packed, "little")


def format_wifi_signal(dbm: int) -> str:
    """``wifi_signal`` as the printer writes it: ``"-48dBm"``."""
    return f"{dbm}dBm"


_HEX_COLOR = re.compile(r"#?([0-9A-Fa-f]{6})([0-9A-Fa-f]{2})?")


def normalize_color(color: str) -> str:
    """``RRGGBB``, ``#RRGGBB`` or ``RRGGBBAA`` -> upper-case ``RRGGBBAA`` (opaque by default)."""
    match = _HEX_COLOR.fullmatch(color.strip())
    if match is None:
        raise ValueError(f"tray colour must be RRGGBB or RRGGBBAA hex, not {color!r}")
    return (match.group(1) + (match.group(2) or "FF")).upper()


def _stable_hex(*parts: str, length: int) -> str:
    """Upper-case hex that depends only on ``parts``: stable ids per simulated serial."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length].upper()


def _stable_uint32(*parts: str) -> int:
    return int(_stable_hex(*parts, length=8), 16)


# --- HMS ----------------------------------------------------------------------------------

_HMS_TEXT = re.compile(
    r"(?:HMS[_-]?)?([0-9A-F]{4})[_-]?([0-9A-F]{4})[_-]?([0-9A-F]{4})[_-]?([0-9A-F]{4})"
)


def parse_hms_code(code: str | tuple[int, int]) -> tuple[int, int]:
    """``"0300_0100_0001_0007"``, ``"HMS_0300_…"``, ``"0300010000010007"`` or ``(attr, code)``
    -> ``(attr, code)`` (§6.1)."""
    if isinstance(code, tuple):
        attr, value = code
        if not (0 <= attr <= 0xFFFFFFFF and 0 <= value <= 0xFFFFFFFF):
            raise ValueError(f"HMS attr and code are uint32 values, not {code!r}")
        return attr, value
    match = _HMS_TEXT.fullmatch(code.strip().upper())
    if match is None:
        raise ValueError(f"not an HMS code: {code!r} (expected e.g. 'HMS_0300_0100_0001_0007')")
    a, b, c, d = (int(group, 16) for group in match.groups())
    return a << 16 | b, c << 16 | d


def format_hms_code(attr: int, code: int) -> str:
    """``(attr, code)`` -> ``"HMS_0300_0100_0001_0007"``."""
    return f"HMS_{attr >> 16:04X}_{attr & 0xFFFF:04X}_{code >> 16:04X}_{code & 0xFFFF:04X}"


def hms_entry(attr: int, code: int, timestamp: int) -> JsonObject:
    """One ``hms[]`` element as current firmware sends it."""
    return {"attr": attr, "code": code, "action": 0, "timestamp": timestamp}


# --- trays and AMS ------------------------------------------------------------------------


def _filament_fields(serial: str, tray_id: str, spool: Spool) -> JsonObject:
    """The tray fields shared by AMS trays and the external spool, in the printer's order."""
    material = filament_type(spool.tray_type)
    preset = spool.preset_id or material.preset_id
    if spool.bambu:
        tag_uid = _stable_hex(serial, tray_id, "tag", length=16)
        tray_uuid = _stable_hex(serial, tray_id, "uuid", length=32)
        name, weight, diameter = f"A00-{tray_id[-1]}0", "1000", "1.75"
        drying_temp, drying_hours, bed_type, bed = "55", "8", "1", "35"
    else:
        tag_uid, tray_uuid, name, weight, diameter = _ZERO_TAG_UID, _ZERO_TRAY_UUID, "", "0", "0.00"
        drying_temp, drying_hours, bed_type, bed = "0", "0", "0", "0"
    return {
        "tag_uid": tag_uid,
        "tray_id_name": name,
        "tray_info_idx": preset,
        "tray_type": spool.tray_type.upper(),
        "tray_sub_brands": spool.sub_brand,
        "tray_color": normalize_color(spool.color),
        "tray_weight": weight,
        "tray_diameter": diameter,
        "tray_temp": drying_temp,
        "tray_time": drying_hours,
        "bed_temp_type": bed_type,
        "bed_temp": bed,
        "nozzle_temp_max": str(material.nozzle_max),
        "nozzle_temp_min": str(material.nozzle_min),
        "xcam_info": _ZERO_XCAM_INFO,
        "tray_uuid": tray_uuid,
    }


def build_tray(serial: str, slot: int, spool: Spool | None) -> JsonObject:
    """An AMS tray; an empty slot is just ``{"id": "<slot>"}`` (§4.3)."""
    tray_id = str(slot)
    if spool is None:
        return {"id": tray_id}
    color = normalize_color(spool.color)
    return {
        "id": tray_id,
        "remain": spool.remain,
        "k": DEFAULT_PRESSURE_ADVANCE,
        "n": 1,
        "cali_idx": -1,
        **_filament_fields(serial, tray_id, spool),
        "ctype": 0,
        "cols": [color],
    }


def build_external_tray(serial: str, spool: Spool) -> JsonObject:
    """``vt_tray``: the external spool, id ``"254"``; same fields as a tray, other order."""
    return {
        "id": EXTERNAL_SPOOL,
        **_filament_fields(serial, EXTERNAL_SPOOL, spool),
        "remain": spool.remain,
        "k": DEFAULT_PRESSURE_ADVANCE,
        "n": 1,
        "cali_idx": -1,
    }


def tray_is_loaded(tray: JsonObject) -> bool:
    return "tray_type" in tray


def refresh_ams_bits(ams: JsonObject) -> None:
    """Recompute the hex presence bit strings of an ``ams`` block from its units and trays."""
    unit_bits = tray_bits = bambu_bits = 0
    for unit in ams["ams"]:
        unit_id = int(unit["id"])
        # AMS HT units (128-135) take the bits after the four AMS: 128 is unit bit 4 (as in
        # a real H2D's "ams_exist_bits": "11" with AMS 0 and AMS HT 128).
        index = unit_id if unit_id < AMS_HT_FIRST_ID else 4 + unit_id - AMS_HT_FIRST_ID
        unit_bits |= 1 << index
        for tray in unit["tray"]:
            if tray_is_loaded(tray):
                bit = 1 << (index * 4 + int(tray["id"]))
                tray_bits |= bit
                if tray["tag_uid"] != _ZERO_TAG_UID:
                    bambu_bits |= bit
    ams["ams_exist_bits"] = f"{unit_bits:x}"
    ams["tray_exist_bits"] = f"{tray_bits:x}"
    ams["tray_is_bbl_bits"] = f"{bambu_bits:x}"
    ams["tray_read_done_bits"] = f"{tray_bits:x}"


def build_ams(units: list[JsonObject]) -> JsonObject:
    """The ``ams`` block; ``units`` may be empty (no AMS attached)."""
    ams: JsonObject = {
        "ams": units,
        "ams_exist_bits": "0",
        "tray_exist_bits": "0",
        "tray_is_bbl_bits": "0",
        "tray_tar": NO_TRAY,
        "tray_now": NO_TRAY,
        "tray_pre": NO_TRAY,
        "tray_read_done_bits": "0",
        "tray_reading_bits": "0",
        "version": 3,
        "insert_flag": True,
        "power_on_flag": False,
    }
    refresh_ams_bits(ams)
    return ams


_DEFAULT_SPOOLS: Final = (
    Spool("PLA", "C12E1FFF", 100, bambu=True, preset_id="GFA00", sub_brand="PLA Basic"),
    Spool("PLA", "F4EE2AFF", 100, bambu=True, preset_id="GFA00", sub_brand="PLA Basic"),
    Spool("PLA", "161616FF", 100),
    Spool("PETG", "0A2989FF", 100),
)


def build_ams_unit(profile: ModelProfile, serial: str, unit: int = 0) -> JsonObject:
    """One AMS (P1/X1), AMS Lite (A1) or AMS 2 Pro (P2S/H2) unit with four loaded trays."""
    trays = [build_tray(serial, slot, spool) for slot, spool in enumerate(_DEFAULT_SPOOLS)]
    # AMS Lite has no temperature sensor: it reports "0.0".
    temp = "0.0" if profile.has_ams_lite else "24.6"
    if not profile.device_report:
        return {"id": str(unit), "humidity": "4", "temp": temp, "tray": trays}
    # AMS 2 Pro: humidity in percent too, drying time left, kind in the low digit of info.
    return {
        "dry_time": 0,
        "humidity": "4",
        "humidity_raw": "23",
        "id": str(unit),
        "info": "2003",
        "temp": temp,
        "tray": [{**tray, "state": 11 if tray_is_loaded(tray) else 0} for tray in trays],
    }


def build_ams_ht_unit(serial: str, unit: int = AMS_HT_FIRST_ID) -> JsonObject:
    """An AMS HT: one tray whose id, in tray_now and in the client's eyes, is the unit id."""
    tray = build_tray(serial, 0, Spool("PA", "000000FF", 100))
    return {
        "dry_time": 0,
        "humidity": "0",  # no humidity level, only the percentage
        "humidity_raw": "6",
        "id": str(unit),
        "info": "2004",
        "temp": "27.9",
        "tray": [{**tray, "state": 11}],
    }


# --- the full print object ----------------------------------------------------------------


def _home_flag(family: Family) -> int:
    """An idle, not yet homed printer with an SD card (§4.6)."""
    flag = (
        _HOME_MAINS_220V
        | _HOME_XCAM_RECOVERY
        | _HOME_AMS_CALIBRATE_REMAIN
        | _HOME_SD_PRESENT
        | _HOME_AMS_AUTO_SWITCH
    )
    if family == "a1":
        flag |= _HOME_PROMPT_SOUND | _HOME_TANGLE_DETECT | _HOME_MOTOR_NOISE_CALI
        flag |= _HOME_A1_UNDOCUMENTED
    return flag


def _upgrade_state(serial: str, family: Family) -> JsonObject:
    state: JsonObject = {
        "sequence_id": 0,
        "progress": "",
        "status": "IDLE",
        "consistency_request": False,
        "dis_state": 0,
        "err_code": 0,
        "force_upgrade": False,
        "message": "0%, 0B/s",
        "module": "",
        "new_version_state": 2,
        "cur_state_code": 0,
        "idx2": _stable_uint32(serial, "idx2"),
        "new_ver_list": [],
    }
    if family == "x1":
        state |= {
            "ota_new_version_number": "",
            "ams_new_version_number": "",
            "ahb_new_version_number": "",
        }
    return state


def _ipcam(family: Family) -> JsonObject:
    ipcam: JsonObject = {
        "ipcam_dev": "1",
        "ipcam_record": "enable",
        "timelapse": "disable",
        "resolution": "1080p",
        "tutk_server": "disable",
        "mode_bits": 3,
    }
    if family == "x1":
        ipcam["rtsp_url"] = "disable"  # LAN-mode liveview off until enabled on the screen
    return ipcam


def _xcam(family: Family) -> JsonObject:
    if family != "x1":
        return {"buildplate_marker_detector": True}
    return {
        "allow_skip_parts": False,
        "buildplate_marker_detector": True,
        "first_layer_inspector": True,
        "halt_print_sensitivity": "medium",
        "print_halt": True,
        "printing_monitor": True,
        "spaghetti_detector": True,
    }


def _upload(family: Family) -> JsonObject:
    upload: JsonObject = {"status": "idle", "progress": 0, "message": ""}
    if family == "x1":
        upload |= {
            "file_size": 0,
            "finish_size": 0,
            "oss_url": "",
            "sequence_id": "0",
            "speed": 0,
            "task_id": "",
            "time_remaining": 0,
            "trouble_id": "",
        }
    return upload


def build_print_object(
    profile: ModelProfile, serial: str, *, ip_address: str = "127.0.0.1"
) -> JsonObject:
    """The full ``print`` object of an idle printer, without the command/msg/sequence_id tail.

    Readings (temperatures, Wi-Fi) are placeholders the printer model overwrites at once.
    """
    family = model_family(profile)
    ams_units = [build_ams_unit(profile, serial)]
    if profile.ams_ht:
        ams_units.append(build_ams_ht_unit(serial))
    report: JsonObject = {
        "upgrade_state": _upgrade_state(serial, family),
        "ipcam": _ipcam(family),
        "xcam": _xcam(family),
        "upload": _upload(family),
        "net": {
            "conf": 0,
            "info": [
                {"ip": ipv4_little_endian(ip_address), "mask": ipv4_little_endian("255.255.255.0")}
            ],
        },
        "nozzle_temper": 25.0,
        "nozzle_target_temper": 0,
        "bed_temper": 25.0,
        "bed_target_temper": 0,
        # A1/P1 report a constant 5: there is no chamber sensor (§4.2).
        "chamber_temper": 25.0 if profile.has_chamber_sensor else 5,
        "mc_print_stage": "1",
        "heatbreak_fan_speed": "0",
        "cooling_fan_speed": "0",
        "big_fan1_speed": "0",
        "big_fan2_speed": "0",
        "mc_percent": 0,
        "mc_remaining_time": 0,
        "ams_status": 0,
        "ams_rfid_status": 0,
        "hw_switch_state": 0,
        "spd_mag": SPEED_MAGNITUDES[2],
        "spd_lvl": 2,
        "print_error": 0,
        "lifecycle": "product",
        "wifi_signal": format_wifi_signal(-50),
        "gcode_state": "IDLE",
        "gcode_file_prepare_percent": "0",
        "queue_number": 0,
        "queue_total": 0,
        "queue_est": 0,
        "queue_sts": 0,
        "project_id": "0",
        "profile_id": "0",
        "task_id": "0",
        "subtask_id": "0",
        "subtask_name": "",
        "gcode_file": "",
        "stg": [],
        "stg_cur": idle_stage(profile),
        "print_type": "idle",
        "home_flag": _home_flag(family),
        "mc_print_line_number": "0",
        "mc_print_sub_stage": 0,
        "sdcard": True,
        "force_upgrade": False,
        "mess_production_state": "active",
        "layer_num": 0,
        "total_layer_num": 0,
        "s_obj": [],
        "filam_bak": [],
        "fan_gear": 0,
        "nozzle_diameter": "0.4",
        "nozzle_type": "hardened_steel" if family == "x1" else "stainless_steel",
        "cali_version": 0,
        "k": "0.0200",
        "flag3": 31,
        "hms": [],
        "online": {"ahb": False, "rfid": False, "version": _stable_uint32(serial, "online") >> 1},
        "ams": build_ams(ams_units),
        "vt_tray": build_external_tray(serial, Spool("PLA", "FFFFFFFF", 0)),
        "lights_report": [{"node": node, "mode": "off"} for node in profile.light_nodes],
    }
    if family == "x1":
        report |= {
            "aux_part_fan": True,
            "fail_reason": "0",
            "gcode_start_time": "0",
            "mc_print_error_code": "0",
            "print_gcode_action": 0,
            "print_real_action": 0,
            "xcam_status": "0",
        }
    return report


# --- the newer printers' device block (P2S, H2 family) ------------------------------------


def packed_temperature(current: float, target: float) -> int:
    """``target << 16 | current`` in whole degrees, as ``device`` reports temperatures."""
    return (max(0, round(target)) & 0xFFFF) << 16 | (max(0, round(current)) & 0xFFFF)


_NOTHING_LOADED: Final = 0xFFFF  # snow: no AMS (0xFF), no slot (0xFF)


def extruder_source(tray_now: str, vir_slot_id: int) -> int:
    """``snow`` of an extruder from a ``tray_now`` value: ``ams_id << 8 | slot``; the external
    spool is its vir_slot id in the high byte, slot 0."""
    try:
        tray = int(tray_now)
    except ValueError:
        return _NOTHING_LOADED
    if tray == int(NO_TRAY):
        return _NOTHING_LOADED
    if tray == int(EXTERNAL_SPOOL):
        return vir_slot_id << 8
    if tray >= AMS_HT_FIRST_ID:
        return tray << 8
    return (tray // 4) << 8 | tray % 4


def build_device(
    profile: ModelProfile, printed: JsonObject, *, chamber: float, idle_nozzle: float
) -> JsonObject:
    """The ``device`` block from the top-level readings: extruders (active one: 0), nozzles,
    chamber (``ctc``) and bed, temperatures packed (§15)."""
    nozzle = packed_temperature(printed["nozzle_temper"], printed["nozzle_target_temper"])
    tray_now = printed["ams"]["tray_now"]
    extruders = []
    for index in range(profile.extruders):
        # Extruder 0 (right) feeds from the last external holder (255), extruder 1 from 254.
        holder = profile.external_spool_ids[-1 - index % len(profile.external_spool_ids)]
        active = index == 0
        extruders.append(
            {
                "filam_bak": [],
                "id": index,
                "snow": extruder_source(tray_now, holder) if active else 0xFEFF,
                "temp": nozzle if active else packed_temperature(idle_nozzle, 0),
            }
        )
    return {
        "bed": {
            "info": {
                "temp": packed_temperature(printed["bed_temper"], printed["bed_target_temper"])
            },
            "state": 2,
        },
        "ctc": {"info": {"temp": packed_temperature(chamber, 0)}, "state": 0},
        "extruder": {"info": extruders, "state": profile.extruders},  # active << 4: 0
        "nozzle": {
            "exist": (1 << profile.extruders) - 1,
            "info": [
                {"diameter": 0.4, "id": index, "tm": 0, "type": "HS01", "wear": 0}
                for index in range(profile.extruders)
            ],
            "state": 0,
        },
    }


def build_vir_slot(profile: ModelProfile, serial: str, vt_tray: JsonObject) -> list[JsonObject]:
    """``vir_slot``: the external spool holders; the main one (the last id) is ``vt_tray``."""
    holders = []
    for holder in profile.external_spool_ids:
        if holder == profile.external_spool_ids[-1]:
            holders.append({**vt_tray, "id": str(holder)})
        else:
            empty = build_external_tray(serial, Spool(tray_type="", color="00000000", remain=0))
            holders.append({**empty, "id": str(holder), "tray_info_idx": ""})
    return holders


# --- get_version --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Module:
    name: str
    project_name: str
    sw_ver: str
    hw_ver: str
    loader_ver: str | None = None
    ota_ver: str | None = None
    flag: int = 0
    has_sn: bool = True


def _module_table(profile: ModelProfile) -> tuple[_Module, ...]:
    """Module names and hardware per family (§4.8, §11); firmware numbers are our own."""
    family = model_family(profile)
    code = profile.model_code
    if profile.device_report:
        # Newer firmware: product names, empty project names, AMS 2 Pro as n3f, AMS HT as n3s.
        modules = [
            _Module("ota", "", profile.firmware, "N/A", flag=3),
            _Module("n3f/0", "", "02.00.19.47", "N3F05"),
        ]
        if profile.ams_ht:
            modules.append(_Module(f"n3s/{AMS_HT_FIRST_ID}", "", "00.00.04.28", "N3S05"))
        modules += [
            _Module("mc", "", "02.02.56.50", "MC09", loader_ver="02.02.56.50"),
            _Module("th", "", "02.00.17.46", "TH08", loader_ver="00.00.17.22"),
            _Module("ap", "", "00.00.50.02", profile.esp32_hw, loader_ver="00.00.01.11"),
        ]
        return tuple(modules)
    if family == "a1":
        return (
            _Module("ota", code, profile.firmware, "OTA", flag=3),
            _Module("esp32", code, "01.13.35.20", profile.esp32_hw),
            _Module("mc", code, "00.01.30.12", "MC02", loader_ver="00.00.00.32"),
            _Module("th", code, "00.00.07.72", "TH01", loader_ver="00.00.00.26"),
            _Module("ams_f1/0", "", "00.00.07.96", "AMS_F102", "00.00.00.00", "00.00.00.00"),
        )
    if family == "p1":
        return (
            _Module("ota", code, profile.firmware, "OTA", flag=3),
            _Module("esp32", code, "01.13.28.40", profile.esp32_hw),
            _Module("mc", code, "00.00.24.16", "MC01", loader_ver="00.00.00.22"),
            _Module("th", code, "00.00.04.64", "TH03", loader_ver="00.00.00.20"),
            _Module("ams/0", "", "00.00.06.49", "AMS08", "00.00.00.00", "00.00.00.00"),
        )
    return (
        _Module("ota", "", profile.firmware, "", flag=3),
        _Module("rv1126", "", "00.00.32.14", profile.esp32_hw),
        _Module("th", "", "00.00.05.36", "TH07", loader_ver="00.00.00.26"),
        _Module("mc", "", "00.00.10.48/00.00.10.48", "MC07", loader_ver="00.00.00.31"),
        _Module("xm", "", "00.00.00.00", "", has_sn=False),
        _Module("ahb", "", "00.00.00.00", "", has_sn=False),
        _Module("ams/0", "", "00.00.06.49", "AMS08", "00.00.00.00", "00.00.00.00"),
    )


def build_version_modules(
    profile: ModelProfile, serial: str, *, with_ams: bool = True
) -> list[JsonObject]:
    """The ``module`` list of the ``get_version`` reply; ``sn`` of ``ota`` is the serial."""
    modules: list[JsonObject] = []
    for spec in _module_table(profile):
        if spec.name.startswith(("ams", "n3f/", "n3s/")) and not with_ams:
            continue
        if spec.name == "ota":
            sn = serial
        elif spec.has_sn:
            sn = _stable_hex(serial, spec.name, length=15)
        else:
            sn = ""
        module: JsonObject = {"name": spec.name, "project_name": spec.project_name}
        if profile.device_report:
            module["product_name"] = _product_name(profile, spec.name)
        module["sw_ver"] = spec.sw_ver
        if spec.loader_ver is not None:
            module["loader_ver"] = spec.loader_ver
        if spec.ota_ver is not None:
            module["ota_ver"] = spec.ota_ver
        module |= {"hw_ver": spec.hw_ver, "sn": sn, "flag": spec.flag}
        modules.append(module)
    return modules


def _product_name(profile: ModelProfile, module: str) -> str:
    """``product_name`` of a module on newer firmware: "Bambu Lab H2D", "AMS HT (1)"."""
    if module == "ota":
        return profile.product_name
    kind = {"n3f": "AMS 2 Pro", "n3s": "AMS HT"}.get(module.partition("/")[0])
    return f"{kind} (1)" if kind else ""
