"""StateBuilder: typed snapshots from the merged report, built incrementally (protocol.md §4)."""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import pickle
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bambu_lan.protocol.decode import DecodeStats
from bambu_lan.protocol.merge import apply_push
from bambu_lan.protocol.state import (
    EXTERNAL_SPOOL_ID,
    JobState,
    PrinterInfo,
    PrinterState,
    Speed,
    StateBuilder,
    info_from_version_reply,
)

from .conftest import A1_SERIAL

X1C_SERIAL = "00M09A350100123"


def build_full(
    body: dict[str, Any], serial: str = A1_SERIAL, stats: DecodeStats | None = None
) -> tuple[StateBuilder, dict[str, Any], PrinterState]:
    builder = StateBuilder(serial, stats)
    raw, full = apply_push({}, body)
    assert full
    return builder, raw, builder.build(raw, None, True)


def push(
    builder: StateBuilder, raw: dict[str, Any], **fields: Any
) -> tuple[dict[str, Any], PrinterState]:
    body = {**fields, "command": "push_status", "msg": 1, "sequence_id": "1"}
    new_raw, full = apply_push(raw, body)
    return new_raw, builder.build(new_raw, None if full else body.keys(), True)


def read_all(state: PrinterState) -> None:
    """Read every field: a section is built on first read, and only a built one is shared."""
    for f in dataclasses.fields(state):
        getattr(state, f.name)


def same_values(a: PrinterState, b: PrinterState) -> bool:
    """Equal except for the time stamp."""
    return dataclasses.replace(a, updated_at=0.0) == dataclasses.replace(b, updated_at=0.0)


# --- the real A1 full report ------------------------------------------------------------------


def test_a1_full_report_job_and_temperatures(a1_full: dict[str, Any]) -> None:
    _, _, state = build_full(a1_full)
    assert state.serial == A1_SERIAL
    assert state.complete
    assert state.job.state is JobState.IDLE
    assert not state.job.active
    assert state.job.progress == 0
    assert state.job.layer == 0
    assert state.job.total_layers == 0
    assert state.job.stage == ""
    assert state.job.stage_id is None
    assert state.job.print_type == "idle"
    assert state.job.prepare_percent is None
    temps = state.temperatures
    assert temps.nozzle == pytest.approx(a1_full["nozzle_temper"])
    assert temps.bed == pytest.approx(a1_full["bed_temper"])
    assert temps.nozzle_target == 0.0
    assert temps.bed_target == 0.0


def test_a1_has_no_chamber_sensor(a1_full: dict[str, Any]) -> None:
    assert a1_full["chamber_temper"] == 5  # the constant A1/P1 send
    _, _, state = build_full(a1_full)
    assert state.model == "A1"
    assert state.temperatures.chamber is None
    assert state.temperatures.chamber_sensor is False
    # The same report from an X1C serial: the chamber value is a real reading.
    _, _, x1 = build_full(a1_full, serial=X1C_SERIAL)
    assert x1.temperatures.chamber == 5.0
    assert x1.temperatures.chamber_sensor is True


def test_a1_fans_speed_light_wifi(a1_full: dict[str, Any]) -> None:
    _, _, state = build_full(a1_full)
    assert state.fans.part == 0
    assert state.fans.heatbreak == 0
    assert state.speed.level == 2
    assert state.speed.name == "standard"
    assert state.speed.percent == 100
    assert dict(state.lights) == {"chamber_light": "off"}
    assert state.wifi_signal_dbm == -48
    assert state.sdcard is True
    assert state.hms == ()
    assert state.print_error is None


def test_a1_ams_unit_and_trays(a1_full: dict[str, Any]) -> None:
    _, _, state = build_full(a1_full)
    (unit,) = state.ams
    assert unit.ams_id == 0
    assert unit.humidity == 5
    assert unit.temperature == 0.0
    assert len(unit.trays) == 4
    expected = a1_full["ams"]["ams"][0]["tray"]
    for slot, (tray, raw_tray) in enumerate(zip(unit.trays, expected, strict=True)):
        assert tray.tray_id == slot
        assert tray.slot == slot
        assert tray.ams_id == 0
        assert not tray.empty
        assert tray.type == raw_tray["tray_type"] == "PLA"
        assert tray.color == raw_tray["tray_color"]
        assert tray.color_hex == "#" + raw_tray["tray_color"][:6]
        assert tray.remain == 100
        assert tray.preset == raw_tray["tray_info_idx"]
    assert [t.color for t in unit.trays] == ["76D9F4FF", "FFF144FF", "FF80FFFF", "0ACC38FF"]
    assert state.active_tray is None  # tray_now "255": nothing loaded


def test_a1_external_spool(a1_full: dict[str, Any]) -> None:
    _, _, state = build_full(a1_full)
    spool = state.external_spool
    assert spool is not None
    assert spool.tray_id == EXTERNAL_SPOOL_ID
    assert spool.ams_id is None
    assert spool.slot is None
    assert spool.type == "PLA"
    assert spool.color == "FFFFFFFF"
    assert spool.remain == 0
    assert spool.preset == "GFA00"


def test_model_and_firmware_from_get_version(
    a1_full: dict[str, Any], a1_version: dict[str, Any]
) -> None:
    builder, raw, before = build_full(a1_full)
    assert before.model == "A1"  # from the serial prefix 039
    assert before.firmware is None
    info = info_from_version_reply(a1_version, A1_SERIAL)
    assert info == PrinterInfo(
        model="A1", model_code="N2S", firmware="01.05.00.00", modules=info.modules
    )
    assert [m["name"] for m in info.modules] == ["ota", "esp32", "mc", "th", "ams_f1/0"]
    builder.set_info(info)
    after = builder.build(raw, (), True)
    assert after.model == "A1"
    assert after.firmware == "01.05.00.00"
    assert builder.model is not None
    assert builder.model.code == "N2S"


def test_get_version_names_the_model_even_with_an_unknown_serial(
    a1_version: dict[str, Any], a1_full: dict[str, Any]
) -> None:
    serial = "ZZZ00A000000001"
    builder, raw, before = build_full(a1_full, serial=serial)
    assert before.model is None
    assert before.temperatures.chamber_sensor  # unknown model: trust the reading
    builder.set_info(info_from_version_reply(a1_version, serial))
    after = builder.build(raw, (), True)
    assert after.model == "A1"
    assert after.temperatures.chamber is None  # sections that depend on the model rebuilt


def test_newer_firmware_product_name_wins_over_empty_project_names() -> None:
    reply = {
        "command": "get_version",
        "module": [
            {"name": "ota", "project_name": "", "product_name": "Bambu Lab P1S", "sw_ver": "1.2"},
            {"name": "esp32", "project_name": "", "hw_ver": "AP05"},
        ],
    }
    info = info_from_version_reply(reply, "ZZZ00A000000001")
    assert (info.model, info.model_code, info.firmware) == ("P1S", "C12", "1.2")


@pytest.mark.parametrize("modules", [None, 5, "x", {"name": "ota"}, [1, "ota", None]])
def test_odd_get_version_replies_do_not_raise(modules: Any) -> None:
    info = info_from_version_reply({"module": modules}, A1_SERIAL)
    assert info.firmware == ""
    assert info.model == "A1"  # from the serial
    assert info.modules == ()


def test_to_dict_is_json_ready(a1_full: dict[str, Any]) -> None:
    body = {**a1_full, "hms": [{"attr": 83887360, "code": 65543}], "print_error": 50348044}
    _, _, state = build_full(body)
    data = orjson.loads(orjson.dumps(state.to_dict()))
    assert data["job"]["state"] == "IDLE"
    assert data["raw"]["gcode_state"] == "IDLE"
    assert data["hms"][0]["short"] == "0500_0500_0001_0007"
    assert data["print_error"]["hex"] == "0300_400C"
    assert data["ams"][0]["trays"][3]["color"] == "0ACC38FF"


# --- lenient reading --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "check"),
    [
        ("nozzle_temper", "hot", lambda s: s.temperatures.nozzle is None),
        ("bed_temper", [1], lambda s: s.temperatures.bed is None),
        ("ams", [], lambda s: s.ams == () and s.active_tray is None),
        ("hms", "x", lambda s: s.hms == ()),
        ("mc_percent", "lots", lambda s: s.job.progress == 0),
        ("mc_percent", "inf", lambda s: s.job.progress == 0),
        ("layer_num", "1e999", lambda s: s.job.layer == 0),
        ("spd_lvl", {"a": 1}, lambda s: s.speed.level is None and s.speed.name == ""),
        ("vt_tray", "none", lambda s: s.external_spool is None),
        ("lights_report", {"node": "x"}, lambda s: dict(s.lights) == {}),
        ("gcode_state", {"x": 1}, lambda s: s.job.state is JobState.UNKNOWN),
        ("cooling_fan_speed", "fast", lambda s: s.fans.part is None),
        ("print_error", "E", lambda s: s.print_error is None),
    ],
)
def test_wrong_types_are_counted_and_do_not_raise(
    a1_full: dict[str, Any], key: str, value: Any, check: Any, caplog: pytest.LogCaptureFixture
) -> None:
    stats = DecodeStats()
    with caplog.at_level(logging.WARNING, logger="bambu_lan.protocol"):
        _, _, state = build_full({**a1_full, key: value}, stats=stats)
    assert check(state)
    assert stats.total == 1
    ((kind, count),) = stats.counts.items()
    assert key in kind
    assert count == 1
    assert len(caplog.records) == 1


def test_numbers_as_strings_and_strings_as_numbers(a1_full: dict[str, Any]) -> None:
    stats = DecodeStats()
    body = {
        **a1_full,
        "nozzle_temper": "214.5",
        "mc_percent": "40",
        "layer_num": 12.0,
        "spd_lvl": "3",
        "wifi_signal": -60,
        "cooling_fan_speed": 15,
    }
    _, _, state = build_full(body, stats=stats)
    assert stats.total == 0
    assert state.temperatures.nozzle == 214.5
    assert state.job.progress == 40
    assert state.job.layer == 12
    assert state.speed.name == "sport"
    assert state.wifi_signal_dbm == -60
    assert state.fans.part == 100


def test_a_delta_before_any_full_report() -> None:
    builder = StateBuilder(A1_SERIAL)
    _, state = push(builder, {}, wifi_signal="-51dBm")
    assert state.job.state is JobState.UNKNOWN
    assert state.wifi_signal_dbm == -51
    assert state.temperatures.nozzle is None
    assert state.external_spool is None
    assert state.ams == ()
    assert state.sdcard is None


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),  # what orjson can read
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "inf", "-inf", "nan", "1e999", "12", "-48dBm", "RUNNING", "0x10", "ff"]),
    st.text(max_size=5),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["id", "tray", "ams", "attr", "code", "node"]), inner)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_value_for_any_known_key_never_raises(
    a1_reference: dict[str, Any], data: st.DataObject
) -> None:
    a1_full = a1_reference["pushall"]["print"]  # read only: nothing here mutates it
    fields = sorted(set(a1_full) - {"command", "msg", "sequence_id"})
    keys = data.draw(st.lists(st.sampled_from(fields), min_size=1, max_size=4))
    body = {**a1_full, **{key: data.draw(_values, label=key) for key in keys}}
    _, _, state = build_full(body, stats=DecodeStats())
    assert isinstance(state, PrinterState)
    assert 0 <= state.job.progress <= 100
    for fan in dataclasses.astuple(state.fans):
        assert fan is None or 0 <= fan <= 100
    for reading in dataclasses.astuple(state.temperatures):
        assert reading is None or isinstance(reading, (bool, float))
    orjson.dumps(state.to_dict(), option=orjson.OPT_NON_STR_KEYS)


# --- incremental building ---------------------------------------------------------------------


def test_untouched_sections_are_reused_and_touched_ones_rebuilt(a1_full: dict[str, Any]) -> None:
    builder, raw, first = build_full(a1_full)
    read_all(first)
    raw, second = push(builder, raw, nozzle_temper=201.5, bed_temper=60.1, wifi_signal="-51dBm")
    assert second.temperatures is not first.temperatures
    assert second.temperatures.nozzle == 201.5
    assert second.wifi_signal_dbm == -51
    for name in ("job", "fans", "speed", "lights", "ams", "external_spool", "hms"):
        assert getattr(second, name) is getattr(first, name), name
    read_all(second)
    raw, third = push(builder, raw, mc_percent=40)
    assert third.job is not second.job
    assert third.job.progress == 40
    assert third.temperatures is second.temperatures
    read_all(third)
    raw, fourth = push(builder, raw, ams={"tray_now": "2"})
    assert fourth.active_tray == 2
    assert fourth.ams is not third.ams
    assert fourth.ams == third.ams
    assert fourth.job is third.job


def test_a_full_rebuild_when_changed_is_none(a1_full: dict[str, Any]) -> None:
    builder, raw, first = build_full(a1_full)
    again = builder.build(raw, None, True)
    assert again.temperatures is not first.temperatures
    assert same_values(again, first)


def test_envelope_only_delta_changes_nothing_but_the_time(a1_full: dict[str, Any]) -> None:
    builder, raw, first = build_full(a1_full)
    read_all(first)
    raw, second = push(builder, raw)
    assert same_values(first, second)
    assert second.job is first.job
    assert second.temperatures is first.temperatures


def test_set_info_rebuilds_model_dependent_sections(
    a1_full: dict[str, Any], a1_version: dict[str, Any]
) -> None:
    body = {**a1_full, "hms": [{"attr": 83887360, "code": 65543}]}
    builder, raw, first = build_full(body, serial="ZZZ00A000000001")
    assert first.hms[0].wiki_url.startswith("https://wiki.bambulab.com/en/x1/")
    builder.set_info(info_from_version_reply(a1_version, "ZZZ00A000000001"))
    second = builder.build(raw, (), True)
    assert second.hms[0].wiki_url == (
        "https://wiki.bambulab.com/en/a1/troubleshooting/hmscode/0500_0500_0001_0007"
    )
    assert second.temperatures.chamber is None
    # Only once: the next build reuses sections again.
    third = builder.build(raw, (), True)
    assert third.hms is second.hms


# Realistic deltas (several per key) for the comparison below.
_DELTAS: list[dict[str, Any]] = [
    {"nozzle_temper": 201.5, "bed_temper": 60.1, "wifi_signal": "-51dBm", "mc_percent": 40},
    {"gcode_state": "PREPARE", "gcode_file": "cube.3mf", "gcode_file_prepare_percent": "30"},
    {"gcode_state": "RUNNING", "stg_cur": 2, "stg": [2, 14, 13], "subtask_name": "cube"},
    {"layer_num": 5, "total_layer_num": 50, "mc_remaining_time": 12, "print_type": "local"},
    {"fan_gear": 0x00FF80, "cooling_fan_speed": "15", "heatbreak_fan_speed": "7"},
    {"big_fan1_speed": "3", "big_fan2_speed": "4", "fan_gear": 0},
    {"spd_lvl": 4, "spd_mag": 166},
    {"lights_report": [{"node": "chamber_light", "mode": "on"}]},
    {"ams": {"tray_now": "254", "ams": []}},
    {"vt_tray": {"id": "254", "tray_type": "PETG", "tray_color": "000000FF", "remain": 30}},
    {"hms": [{"attr": 83887360, "code": 65543}], "print_error": 50364437},
    {"hms": [], "print_error": 0, "sdcard": False, "chamber_temper": 30},
    {"nozzle_target_temper": 220, "bed_target_temper": 65, "gcode_state": "PAUSE"},
    {"gcode_state": "FINISH", "mc_percent": 100},
    # Progress only: the job is the previous one with these read again (job_progress).
    {"mc_percent": 41, "mc_remaining_time": 30, "layer_num": 6, "nozzle_temper": 210.0},
    {"mc_percent": "150", "layer_num": "x", "mc_remaining_time": -3},
    {"mc_percent": -5, "mc_remaining_time": "12", "layer_num": None},
    {"mc_percent": 60, "stg_cur": 14},  # progress with another job key: a whole new job
]


# One key at a time, so a key missing from a section's key list cannot hide behind another.
_SINGLE_KEY_DELTAS: list[dict[str, Any]] = [
    {"gcode_state": "PREPARE"},
    {"gcode_state": "RUNNING"},
    {"gcode_file": "other.3mf"},
    {"subtask_name": "other"},
    {"mc_percent": 55},
    {"mc_remaining_time": 9},
    {"layer_num": 7},
    {"total_layer_num": 70},
    {"stg_cur": 14},
    {"stg": [1, 2]},
    {"print_type": "cloud"},
    {"gcode_file_prepare_percent": "80"},
    {"nozzle_temper": 190.0},
    {"nozzle_target_temper": 200},
    {"bed_temper": 50.5},
    {"bed_target_temper": 55},
    {"chamber_temper": 31},
    {"cooling_fan_speed": "10"},
    {"big_fan1_speed": "5"},
    {"big_fan2_speed": "6"},
    {"heatbreak_fan_speed": "15"},
    {"fan_gear": 0x102030},
    {"fan_gear": 0},
    {"spd_lvl": 3},
    {"spd_mag": 124},
    {"lights_report": [{"node": "chamber_light", "mode": "flashing"}]},
    {"wifi_signal": "-70dBm"},
    {"ams": {"tray_now": "3"}},
    {"ams": {"ams": [{"id": "1", "humidity": "2", "tray": [{"id": "0"}]}]}},
    {"vt_tray": {"remain": 10}},
    {"hms": [{"attr": 50331904, "code": 65543}]},
    {"print_error": 117473286},
    {"sdcard": False},
    {"nozzle_diameter": "0.6"},
    {"nozzle_type": "hardened_steel"},
    {"vir_slot": [{"id": "255", "tray_type": "TPU", "tray_color": "FFFFFFFF"}]},
    {"ams": {"tray_now": "254"}},
    {"device": {"extruder": {"state": 18, "info": [{"id": 0, "snow": 1, "temp": 2}, {"id": 1}]}}},
    {"device": {"ctc": {"info": {"temp": 45}}, "nozzle": {"info": [{"id": 0, "type": "HS01"}]}}},
]


@pytest.mark.parametrize("delta", _SINGLE_KEY_DELTAS, ids=lambda d: next(iter(d)))
@pytest.mark.parametrize("before", [{}, {"gcode_state": "PREPARE", "fan_gear": 0xFFFFFF}])
def test_each_key_rebuilds_its_section(
    a1_full: dict[str, Any], before: dict[str, Any], delta: dict[str, Any]
) -> None:
    builder, raw, _ = build_full({**a1_full, **before})
    raw, incremental = push(builder, raw, **delta)
    assert same_values(incremental, StateBuilder(A1_SERIAL).build(raw, None, True))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(range(len(_DELTAS) + len(_SINGLE_KEY_DELTAS))), max_size=12))
def test_incremental_builds_equal_builds_from_scratch(
    a1_reference: dict[str, Any], order: list[int]
) -> None:
    a1_full = a1_reference["pushall"]["print"]  # read only: merging never mutates it
    builder, raw, _ = build_full(a1_full)
    deltas = _DELTAS + _SINGLE_KEY_DELTAS
    for index in order:
        raw, incremental = push(builder, raw, **deltas[index])
        fresh = StateBuilder(A1_SERIAL).build(raw, None, True)
        assert same_values(incremental, fresh)


def test_a_progress_delta_keeps_the_rest_of_the_job(a1_full: dict[str, Any]) -> None:
    running = {**a1_full, "gcode_state": "RUNNING", "stg_cur": 0, "subtask_name": "cube"}
    builder, raw, first = build_full(running)
    raw, second = push(builder, raw, mc_percent=250, layer_num=3, nozzle_temper=200.0)
    assert (second.job.progress, second.job.layer) == (100, 3)
    assert second.job.state is JobState.RUNNING and second.job.stage == "printing"
    assert second.job.name == "cube" and second.job.file == first.job.file
    assert first.job.progress == a1_full["mc_percent"] and first.job.layer == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        second.job.progress = 1  # type: ignore[misc]
    assert same_values(second, StateBuilder(A1_SERIAL).build(raw, None, True))


def test_many_key_sets_are_remembered_within_a_bound(a1_full: dict[str, Any]) -> None:
    from bambu_lan.protocol.sections import STALE_FIELDS

    builder, raw, _ = build_full(a1_full)
    for i in range(5000):  # a sender inventing keys must not grow the memo without end
        raw, state = push(builder, raw, **{f"odd_{i}": i, "mc_percent": i % 100})
        assert state.job.progress == i % 100
    assert 0 < len(STALE_FIELDS) <= 4096


# --- print_error and HMS in a snapshot --------------------------------------------------------


def test_a1_runout_delta_decodes_print_error(a1_full: dict[str, Any]) -> None:
    builder, raw, _ = build_full(a1_full)
    raw, state = push(
        builder,
        raw,
        nozzle_temper=214.5,
        bed_temper=36.03125,
        mc_print_stage="3",
        print_error=50364437,
        wifi_signal="-36dBm",
        gcode_state="PAUSE",
        home_flag=847201687,
        mc_print_sub_stage=0,
    )
    assert state.job.state is JobState.PAUSE
    assert state.print_error is not None
    assert state.print_error.value == 0x03008015
    assert state.print_error.hex == "0300_8015"
    assert "external spool" in state.print_error.text
    assert state.wifi_signal_dbm == -36
    raw, cleared = push(builder, raw, print_error=0)
    assert cleared.print_error is None


def test_hms_entries_in_a_snapshot(a1_full: dict[str, Any]) -> None:
    body = {
        **a1_full,
        "hms": [
            {"attr": 83887360, "code": 65543, "action": 0, "timestamp": 1764948431},
            {"attr": 0, "code": 5},  # skipped: attr 0
            "junk",
        ],
    }
    _, _, state = build_full(body)
    (alert,) = state.hms
    assert alert.code == "HMS_0500_0500_0001_0007"
    assert alert.wiki_url.startswith("https://wiki.bambulab.com/en/a1/")


def test_temperatures_are_floats(a1_full: dict[str, Any]) -> None:
    _, _, state = build_full(a1_full)
    for reading in (state.temperatures.nozzle, state.temperatures.bed):
        assert isinstance(reading, float)
        assert math.isfinite(reading)


# --- snapshots are frozen values --------------------------------------------------------------


def test_snapshots_are_frozen_values(a1_full: dict[str, Any]) -> None:
    _, _, state = build_full(a1_full)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.job = state.job  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.temperatures.nozzle = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del state.ams[0].trays[0].color
    changed = dataclasses.replace(state.speed, level=4)
    assert (changed.level, changed.name) == (4, state.speed.name)
    assert copy.deepcopy(state.job) == state.job
    assert pickle.loads(pickle.dumps(state.ams)) == state.ams  # noqa: S301 - our own bytes
    assert "Job(state=<JobState.IDLE: 'IDLE'>" in repr(state.job)
    assert "raw=" not in repr(state)


def test_section_constructors_take_keywords_positions_and_defaults() -> None:
    speed = Speed(2, name="standard", percent=100)
    assert speed == Speed(level=2, name="standard", percent=100)
    assert hash(speed) == hash(Speed(2, "standard", 100))
    assert PrinterInfo("A1", "N2S", "01.05.00.00").modules == ()
    with pytest.raises(TypeError):
        Speed(2, "standard")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Speed(2, "standard", 100, 5)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Speed(2, "standard", percent=100, colour="red")  # type: ignore[call-arg]


# --- trays and spools in every form ----------------------------------------------------------


def test_an_empty_external_spool_reads_empty(a1_full: dict[str, Any]) -> None:
    """A real P1S reports an empty holder as tray_type "" and colour 00000000."""
    body = {**a1_full, "vt_tray": {"id": "254", "tray_type": "", "tray_color": "00000000"}}
    _, _, state = build_full(body)
    assert state.external_spool is not None
    assert state.external_spool.empty


@pytest.mark.parametrize(
    ("tray", "empty"),
    [
        ({"id": "2"}, True),
        ({"id": "2", "state": 0, "tray_type": ""}, True),
        ({"id": "2", "state": 10}, True),  # metadata only, no spool bit
        ({"id": "2", "state": 11, "tray_type": "PLA", "tray_color": "FFFFFFFF"}, False),
        ({"id": "2", "state": 11, "tray_type": "PETG", "tray_color": "00000000"}, False),
        ({"id": "2", "state": 3, "tray_type": "PETG"}, False),  # A2L's older state values
        ({"id": "2", "tray_type": "PLA", "tray_color": "76D9F4FF"}, False),
        ({"id": "2", "tray_type": "", "tray_color": "00000000"}, True),
    ],
)
def test_empty_trays_in_every_form(a1_full: dict[str, Any], tray: Any, empty: bool) -> None:
    body = {**a1_full, "ams": {"ams": [{"id": "1", "tray": [tray]}], "tray_now": "255"}}
    _, _, state = build_full(body)
    assert state.ams[0].trays[0].tray_id == 6
    assert state.ams[0].trays[0].empty is empty


def test_external_spool_255_is_not_no_tray(a1_full: dict[str, Any]) -> None:
    """vir_slot 255 loaded (snow 0xFF00) is a spool; tray_now 255 is nothing."""
    body = {
        **a1_full,
        "vir_slot": [
            {"id": "254", "tray_type": "", "tray_color": "00000000"},
            {"id": "255", "tray_type": "TPU", "tray_color": "9B9EA0FF"},
        ],
        "device": {"extruder": {"state": 1, "info": [{"id": 0, "snow": 0xFF00, "temp": 40}]}},
    }
    _, _, state = build_full(body)
    assert [s.tray_id for s in state.external_spools] == [254, 255]
    assert state.external_spool is state.external_spools[0]
    assert state.active_tray == 255
    loaded = state.tray(255)
    assert loaded is not None
    assert loaded.type == "TPU"
    assert loaded.external


def test_legacy_tray_now_254_points_at_the_only_vir_slot(a1_full: dict[str, Any]) -> None:
    body = {
        **a1_full,
        "vt_tray": {},
        "vir_slot": [{"id": "255", "tray_type": "PLA", "tray_color": "FFFFFFFF"}],
        "ams": {"ams": [], "tray_now": "254"},
    }
    _, _, state = build_full(body)
    assert state.active_tray == 255
    assert state.tray(state.active_tray) is state.external_spool


def test_ams_ht_tray_id_is_the_unit_id(a1_full: dict[str, Any]) -> None:
    body = {
        **a1_full,
        "ams": {
            "ams": [{"id": "128", "humidity": "3", "temp": "29.6", "tray": [{"id": "0"}]}],
            "tray_now": "128",
        },
    }
    _, _, state = build_full(body, serial=X1C_SERIAL)
    (unit,) = state.ams
    assert unit.kind == "AMS HT"
    assert [t.tray_id for t in unit.trays] == [128]
    assert state.active_tray == 128


def test_a1_ams_lite_kind_and_single_nozzle(a1_full: dict[str, Any]) -> None:
    _, _, state = build_full(a1_full)
    assert [u.kind for u in state.ams] == ["AMS Lite"]
    (nozzle,) = state.nozzles
    assert (nozzle.index, nozzle.diameter, nozzle.type, nozzle.active) == (
        0,
        0.4,
        "stainless_steel",
        True,
    )
    assert nozzle.temperature == state.temperatures.nozzle == 27.8125


def test_chamber_from_device_ctc_only_where_a_sensor_exists(a1_full: dict[str, Any]) -> None:
    body = {**a1_full, "device": {"ctc": {"info": {"temp": (60 << 16) | 45}}}}
    _, _, x1 = build_full(body, serial=X1C_SERIAL)
    assert (x1.temperatures.chamber, x1.temperatures.chamber_target) == (45.0, 60.0)
    _, _, a1 = build_full(body)
    assert a1.temperatures.chamber is None
    assert not a1.temperatures.chamber_sensor


# --- lazy sections -----------------------------------------------------------------------------


def test_a_delta_builds_nothing_until_a_section_is_read(a1_full: dict[str, Any]) -> None:
    stats = DecodeStats()
    builder, raw, first = build_full(a1_full, stats=stats)
    read_all(first)
    raw, second = push(builder, raw, nozzle_temper="hot", bed_temper=60.0)
    built = vars(second)
    assert "temperatures" not in built  # touched by the delta: built on first read
    assert "nozzles" not in built
    assert built["job"] is first.job  # untouched: shared, nothing to build
    assert stats.counts == {}  # the bad reading is not even looked at yet
    assert second.temperatures.nozzle is None  # ... until read: unknown, and counted once
    assert second.temperatures.bed == 60.0
    assert second.nozzles[0].temperature is None
    assert stats.counts == {"bad_type:nozzle_temper": 1}
    assert second.temperatures is second.temperatures  # built once, then kept


def test_lazy_snapshots_compare_copy_and_pickle_like_eager_ones(a1_full: dict[str, Any]) -> None:
    builder, raw, _ = build_full(a1_full)
    raw, lazy = push(builder, raw, nozzle_temper=180.0, mc_percent=3, hms=[])
    eager = PrinterState(**{f.name: getattr(lazy, f.name) for f in dataclasses.fields(lazy)})
    raw, lazy_again = push(builder, raw)  # a second, separately lazy snapshot of the same data
    assert same_values(lazy_again, eager)
    assert copy.deepcopy(lazy_again) == lazy_again
    restored = pickle.loads(pickle.dumps(lazy_again))  # noqa: S301 - our own bytes
    assert restored == lazy_again
    assert "_sections" not in vars(restored)
    assert restored.temperatures.nozzle == 180.0
    with pytest.raises(AttributeError):
        lazy_again.no_such_field  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(dataclasses.FrozenInstanceError):
        lazy_again.temperatures = eager.temperatures  # type: ignore[misc]


def test_a_module_number_that_is_a_digit_but_not_decimal_is_skipped() -> None:
    # "²" passes str.isdigit() but not int(): the whole get_version reply was lost to it.
    from bambu_lan.protocol.sections import ams_kinds_from_modules

    modules = [{"name": "n3f/\u00b2"}, {"name": "n3f/1"}]
    assert list(ams_kinds_from_modules(modules)) == [1]
