"""The full report and the get_version reply have the real printers' shapes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.sim_model.support import (
    PUSH_TAIL,
    Capture,
    extra_keys,
    load_reference,
    make_model,
    request,
    shape_mismatches,
)

from bambu_lan.sim import report
from bambu_lan.sim.profiles import A1, A1_MINI, P1S, X1C, ModelProfile


def full_print(profile: ModelProfile) -> dict[str, Any]:
    model, _ = make_model(profile)
    body: dict[str, Any] = model.full_report()["print"]
    return body


@pytest.mark.parametrize("profile", [A1, A1_MINI, P1S], ids=lambda p: p.key)
def test_full_report_has_every_key_of_the_real_a1_report_with_the_same_types(
    profile: ModelProfile,
) -> None:
    reference = load_reference()["pushall"]["print"]
    assert shape_mismatches(reference, full_print(profile), "print") == []


@pytest.mark.parametrize("profile", [A1, A1_MINI], ids=lambda p: p.key)
def test_a1_family_report_has_no_keys_the_real_one_lacks(profile: ModelProfile) -> None:
    reference = load_reference()["pushall"]["print"]
    assert extra_keys(reference, full_print(profile), "print") == []


def test_full_report_key_order_follows_the_real_a1() -> None:
    reference = load_reference()["pushall"]["print"]
    assert list(full_print(A1)) == list(reference)


def test_x1c_report_adds_the_x1_keys_and_a_real_chamber_temperature() -> None:
    reference = dict(load_reference()["pushall"]["print"])
    del reference["msg"]  # X1 sends the full object every time, without msg (§3.5)
    body = full_print(X1C)
    chamber = frozenset({"print.chamber_temper"})  # a real sensor: a float, not the A1's 5
    assert shape_mismatches(reference, body, "print", numbers=chamber) == []
    for key in (
        "aux_part_fan",
        "fail_reason",
        "gcode_start_time",
        "mc_print_error_code",
        "print_gcode_action",
        "print_real_action",
        "xcam_status",
    ):
        assert key in body, key
    assert isinstance(body["chamber_temper"], float)
    assert body["chamber_temper"] != 5
    assert {"first_layer_inspector", "spaghetti_detector"} <= body["xcam"].keys()
    assert {"ota_new_version_number", "ams_new_version_number"} <= body["upgrade_state"].keys()
    assert [light["node"] for light in body["lights_report"]] == ["chamber_light", "work_light"]
    assert body["stg_cur"] == -1
    assert "msg" not in body


def test_p1s_has_an_ams_rather_than_an_ams_lite() -> None:
    body = full_print(P1S)
    unit = body["ams"]["ams"][0]
    assert unit["temp"] != "0.0"  # the AMS has a temperature sensor, the AMS Lite does not
    assert body["stg_cur"] == 255
    model, _ = make_model(P1S)
    names = [module["name"] for module in model.version_modules]
    assert "ams/0" in names
    assert "ams_f1/0" not in names


def test_a1_sensorless_values_are_the_real_ones() -> None:
    body = full_print(A1)
    assert body["chamber_temper"] == 5
    assert body["stg_cur"] == 0
    assert body["ams"]["ams"][0]["temp"] == "0.0"
    assert body["home_flag"] & 0x100  # SD card present
    assert body["ams"]["tray_exist_bits"] == "f"
    assert body["ams"]["tray_is_bbl_bits"] == "3"


def test_full_report_envelope() -> None:
    model, _ = make_model()
    body = model.full_report()["print"]
    assert list(body)[-3:] == PUSH_TAIL
    assert body["command"] == "push_status"
    assert body["msg"] == 0
    assert isinstance(body["sequence_id"], str)
    assert body["sequence_id"].isdigit()


def test_full_report_is_a_copy() -> None:
    model, _ = make_model()
    snapshot = model.full_report()
    snapshot["print"]["ams"]["ams"].clear()
    assert model.state["ams"]["ams"]


def test_net_reports_the_address_little_endian() -> None:
    model, capture = make_model()
    model.set_ip_address("192.168.0.98")
    assert model.state["net"]["info"][0]["ip"] == 1644210368  # §4.2's example
    assert capture.deltas()[-1]["net"]["info"][0]["ip"] == 1644210368


# --- get_version ---------------------------------------------------------------------------


def get_version(profile: ModelProfile) -> dict[str, Any]:
    model, capture = make_model(profile)
    request(model, "info", "get_version", sequence_id="42")
    (message,) = capture.replies()
    reply: dict[str, Any] = message["info"]
    return reply


def test_get_version_reply_matches_the_real_a1_reply() -> None:
    reference = load_reference()["get_version"]["info"]
    reply = get_version(A1)
    assert list(reply) == list(reference)
    assert reply["command"] == "get_version"
    assert reply["sequence_id"] == "42"
    assert (reply["result"], reply["reason"]) == ("success", "")
    assert [m["name"] for m in reply["module"]] == [m["name"] for m in reference["module"]]
    for ours, theirs in zip(reply["module"], reference["module"], strict=True):
        assert list(ours) == list(theirs), ours["name"]
        assert shape_mismatches(theirs, ours, ours["name"]) == []
    ota = reply["module"][0]
    assert ota["sn"] == A1.default_serial()
    assert ota["sw_ver"] == A1.firmware
    assert ota["project_name"] == "N2S"
    assert reply["module"][1]["hw_ver"] == A1.esp32_hw


@pytest.mark.parametrize(
    ("profile", "names", "project_name"),
    [
        (A1, ["ota", "esp32", "mc", "th", "ams_f1/0"], "N2S"),
        (A1_MINI, ["ota", "esp32", "mc", "th", "ams_f1/0"], "N1"),
        (P1S, ["ota", "esp32", "mc", "th", "ams/0"], "C12"),
        (X1C, ["ota", "rv1126", "th", "mc", "xm", "ahb", "ams/0"], ""),
    ],
    ids=lambda value: value.key if isinstance(value, ModelProfile) else None,
)
def test_get_version_module_names_per_model(
    profile: ModelProfile, names: list[str], project_name: str
) -> None:
    modules = get_version(profile)["module"]
    assert [m["name"] for m in modules] == names
    assert modules[0]["sn"] == profile.default_serial()
    assert modules[0]["sw_ver"] == profile.firmware
    assert modules[0]["project_name"] == project_name
    assert modules[1]["hw_ver"] == profile.esp32_hw
    ams = modules[-1]
    assert ams["hw_ver"] == ("AMS_F102" if profile.has_ams_lite else "AMS08")


# --- encoding ------------------------------------------------------------------------------


def test_a1_publishes_compact_json() -> None:
    model, capture = make_model(A1)
    model.push_full()
    (payload,) = capture.raw
    assert b"\n" not in payload
    assert b'": ' not in payload
    assert payload == orjson.dumps(orjson.loads(payload))


def test_x1c_publishes_pretty_json() -> None:
    model, capture = make_model(X1C)
    model.push_full()
    (payload,) = capture.raw
    assert b"\n  " in payload
    assert orjson.loads(payload)["print"]["command"] == "push_status"


def test_pressure_advance_is_a_float32_like_the_firmware_sends() -> None:
    assert abs(report.DEFAULT_PRESSURE_ADVANCE - 0.02) < 1e-9
    assert report.DEFAULT_PRESSURE_ADVANCE != 0.02


# --- HMS codes and colours -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "0300_0100_0001_0007",
        "HMS_0300_0100_0001_0007",
        "hms_0300_0100_0001_0007",
        "0300010000010007",
    ],
)
def test_hms_code_text_forms(text: str) -> None:
    assert report.parse_hms_code(text) == (50331904, 65543)


def test_hms_code_round_trip_and_tuples() -> None:
    assert report.format_hms_code(*report.HMS_VERIFY_FAILED) == "HMS_0500_0500_0001_0007"
    assert report.HMS_VERIFY_FAILED == (83887360, 65543)
    assert report.parse_hms_code((1, 2)) == (1, 2)


@pytest.mark.parametrize("bad", ["0300_0100", "HMS_XYZ", "", "0300_0100_0001_0007_0000"])
def test_hms_code_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError, match="HMS"):
        report.parse_hms_code(bad)


@pytest.mark.parametrize(
    ("color", "normalized"),
    [("ff0000", "FF0000FF"), ("#00ff00", "00FF00FF"), ("0000FF80", "0000FF80")],
)
def test_tray_colours_are_rrggbbaa(color: str, normalized: str) -> None:
    assert report.normalize_color(color) == normalized


def test_tray_colour_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="RRGGBB"):
        report.normalize_color("red")


def test_capture_helper_sees_every_payload() -> None:
    model, capture = make_model()
    assert isinstance(capture, Capture)
    model.push_full()
    model.advance(2.0)
    model.advance(2.0)
    assert len(capture.raw) == model.stats.pushes >= 2
