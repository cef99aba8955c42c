"""Each command of protocol.md §5.9 on the simulated printer, Developer Mode on and off."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.sim_model.support import Capture, advance_until, make_model, request

from bambu_lan.sim import report
from bambu_lan.sim.printer import PrinterModel
from bambu_lan.sim.profiles import A1, X1C

VERIFY_FAILED_HMS = {"attr": 83887360, "code": 65543}


def only_reply(capture: Capture, klass: str = "print") -> dict[str, Any]:
    (message,) = capture.replies()
    assert list(message) == [klass]
    body: dict[str, Any] = message[klass]
    return body


def printing(model: PrinterModel) -> None:
    """Start a job and tick until it prints layers (stg_cur 0)."""
    model.start_print(layers=30, layer_seconds=10.0)
    advance_until(model, lambda m: m.gcode_state == "RUNNING" and m.state["stg_cur"] == 0)


# --- envelope ------------------------------------------------------------------------------


def test_reply_echoes_command_sequence_id_and_fields_then_result() -> None:
    model, capture = make_model()
    request(model, "print", "gcode_line", sequence_id="2006", param="M104 S220\n", user_id="0")
    reply = only_reply(capture)
    assert reply == {
        "command": "gcode_line",
        "sequence_id": "2006",
        "param": "M104 S220\n",
        "user_id": "0",
        "result": "success",
        "reason": "",
    }
    assert list(reply)[-2:] == ["result", "reason"]


def test_integer_sequence_id_is_echoed_as_a_string() -> None:
    model, capture = make_model()
    model.handle_request(b'{"info":{"sequence_id":12,"command":"get_version"}}')
    assert only_reply(capture, "info")["sequence_id"] == "12"


def test_replies_without_sequence_id_on_request() -> None:
    model, capture = make_model(dev_mode=False)
    model.reply_without_sequence_id("print_speed")
    request(model, "print", "print_speed", sequence_id="7", param="2")
    request(model, "print", "gcode_line", sequence_id="8", param="G28")
    refused, other = (m["print"] for m in capture.replies())
    # The A1's refusal as recorded (protocol.md §3.6): no sequence_id, the rest as usual.
    assert "sequence_id" not in refused
    assert (refused["command"], refused["result"]) == ("print_speed", "failed")
    assert other["sequence_id"] == "8"
    model.reply_without_sequence_id()
    capture.clear()
    request(model, "print", "print_speed", sequence_id="9", param="2")
    assert only_reply(capture)["sequence_id"] == "9"


def test_missing_sequence_id_is_not_invented() -> None:
    model, capture = make_model()
    model.handle_request(b'{"print":{"command":"print_speed","param":"2"}}')
    assert "sequence_id" not in only_reply(capture)


def test_trailing_nul_and_whitespace_are_tolerated() -> None:
    model, capture = make_model()
    model.handle_request(b'{"info":{"sequence_id":"1","command":"get_version"}}\x00\n ')
    assert only_reply(capture, "info")["result"] == "success"
    assert model.stats.bad_payloads == 0


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe\x00",
        b"not json",
        b"[1,2,3]",
        b'"print"',
        b"{",
        b'{"print":{"command":1}}\x00x',
    ],
)
def test_bad_payloads_are_counted_and_ignored(payload: bytes) -> None:
    model, capture = make_model()
    model.handle_request(payload)
    assert capture.raw == []
    assert model.stats.bad_payloads == 1
    assert model.stats.internal_errors == 0


def test_several_classes_in_one_request_are_each_handled() -> None:
    model, capture = make_model()
    model.handle_request(
        orjson.dumps(
            {
                "pushing": {"sequence_id": "1", "command": "pushall"},
                "info": {"sequence_id": "2", "command": "get_version"},
                "upgrade": {"sequence_id": "3", "command": "get_history"},
            }
        )
    )
    kinds = [next(iter(m)) for m in capture.messages]
    assert kinds == ["print", "info"]  # get_history is not simulated: no reply
    assert model.stats.commands_handled == 2
    assert model.stats.commands_ignored == 1


@pytest.mark.parametrize(
    "message",
    [
        {"print": {"sequence_id": "1", "command": "no_such_command"}},
        {"nonsense": {"sequence_id": "1", "command": "pushall"}},
        {"system": {"sequence_id": "1", "command": "reboot_into_the_void"}},
        {"print": {"sequence_id": "1"}},
        {"print": "pause"},
    ],
)
def test_unknown_commands_get_no_reply(message: dict[str, Any]) -> None:
    model, capture = make_model()
    model.handle_request(orjson.dumps(message))
    assert capture.raw == []
    assert model.stats.commands_ignored == 1


def test_request_log_keeps_decoded_requests() -> None:
    model, _ = make_model()
    request(model, "pushing", "pushall")
    request(model, "info", "get_version")
    model.handle_request(b"garbage")
    assert model.logged_commands() == [("pushing", "pushall"), ("info", "get_version")]
    assert model.request_log[-1].message["info"]["command"] == "get_version"
    assert model.stats.requests == 3


# --- system.ledctrl ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["on", "off", "flashing"])
def test_ledctrl_sets_the_light_and_acks_under_system(mode: str) -> None:
    model, capture = make_model()
    request(
        model,
        "system",
        "ledctrl",
        led_node="chamber_light",
        led_mode=mode,
        led_on_time=500,
        led_off_time=500,
        loop_times=0,
        interval_time=0,
    )
    reply = only_reply(capture, "system")
    assert reply["result"] == "success"
    assert reply["led_mode"] == mode
    assert reply["led_on_time"] == 500
    assert model.state["lights_report"] == [{"node": "chamber_light", "mode": mode}]


def test_ledctrl_unknown_node_fails_and_changes_nothing() -> None:
    model, capture = make_model(A1)
    request(model, "system", "ledctrl", led_node="work_light", led_mode="on")
    reply = only_reply(capture, "system")
    assert reply["result"] == "failed"
    assert "work_light" in reply["reason"]
    assert model.state["lights_report"] == [{"node": "chamber_light", "mode": "off"}]


def test_ledctrl_bad_mode_fails() -> None:
    model, capture = make_model()
    request(model, "system", "ledctrl", led_node="chamber_light", led_mode="disco")
    assert only_reply(capture, "system")["result"] == "failed"


def test_x1c_has_a_work_light() -> None:
    model, capture = make_model(X1C)
    request(model, "system", "ledctrl", led_node="work_light", led_mode="on")
    assert only_reply(capture, "system")["result"] == "success"
    assert {"node": "work_light", "mode": "on"} in model.state["lights_report"]


def test_ledctrl_pushing_and_info_work_with_developer_mode_off() -> None:
    model, capture = make_model(dev_mode=False)
    request(model, "system", "ledctrl", led_node="chamber_light", led_mode="on")
    request(model, "info", "get_version")
    request(model, "pushing", "pushall")
    results = [m.get("system", m.get("info", {})).get("result") for m in capture.replies()]
    assert results == ["success", "success"]
    assert capture.pushes()[-1]["msg"] == 0
    assert model.state["hms"] == []


# --- pause / resume / stop -----------------------------------------------------------------


def test_pause_and_resume() -> None:
    model, capture = make_model()
    printing(model)
    capture.clear()
    request(model, "print", "pause", param="")
    assert only_reply(capture)["result"] == "success"
    assert model.gcode_state == "PAUSE"
    assert model.state["stg_cur"] == 16
    assert model.state["mc_print_stage"] == "3"
    delta = capture.deltas()[-1]
    assert (delta["gcode_state"], delta["stg_cur"]) == ("PAUSE", 16)

    layer = model.state["layer_num"]
    for _ in range(5):
        model.advance(10.0)
    assert model.state["layer_num"] == layer  # a paused job does not advance

    capture.clear()
    request(model, "print", "resume", param="")
    assert only_reply(capture)["result"] == "success"
    assert model.gcode_state == "RUNNING"
    assert model.state["stg_cur"] == 0
    assert model.state["print_error"] == 0
    assert model.state["mc_print_stage"] == "2"


def test_stop_fails_the_job_with_a_transient_print_error() -> None:
    model, capture = make_model()
    printing(model)
    capture.clear()
    request(model, "print", "stop", param="")
    assert only_reply(capture)["result"] == "success"
    assert model.gcode_state == "FAILED"
    assert model.state["print_error"] == 50348044
    assert model.state["print_type"] == "idle"
    assert model.state["nozzle_target_temper"] == 0
    model.advance(1.0)
    assert model.state["print_error"] == 50348044
    model.advance(1.5)
    assert model.state["print_error"] == 0
    assert model.gcode_state == "FAILED"


@pytest.mark.parametrize("command", ["pause", "resume", "stop"])
def test_job_control_without_a_job_fails(command: str) -> None:
    model, capture = make_model()
    request(model, "print", command, param="")
    reply = only_reply(capture)
    assert reply["result"] == "failed"
    assert "no print job" in reply["reason"]
    assert model.gcode_state == "IDLE"


# --- print_speed ---------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "magnitude"), [("1", 50), ("2", 100), ("3", 124), ("4", 166)])
def test_print_speed_levels(level: str, magnitude: int) -> None:
    model, capture = make_model()
    request(model, "print", "print_speed", param=level)
    assert only_reply(capture)["result"] == "success"
    assert model.state["spd_lvl"] == int(level)
    assert model.state["spd_mag"] == magnitude


def test_print_speed_rescales_the_remaining_time() -> None:
    model, _ = make_model()
    printing(model)
    standard = model.state["mc_remaining_time"]
    request(model, "print", "print_speed", param="4")
    assert model.state["mc_remaining_time"] < standard
    request(model, "print", "print_speed", param="1")
    assert model.state["mc_remaining_time"] > standard


@pytest.mark.parametrize("param", ["0", "5", "fast", "", "³", None, [2], True])
def test_print_speed_out_of_range_fails(param: Any) -> None:
    model, capture = make_model()
    request(model, "print", "print_speed", param=param)
    assert only_reply(capture)["result"] == "failed"
    assert model.state["spd_lvl"] == 2


# --- gcode_line ----------------------------------------------------------------------------


def test_gcode_line_sets_targets_fans_and_home_bits() -> None:
    model, capture = make_model()
    home_before = model.state["home_flag"]
    assert home_before & report.HOME_XYZ == 0
    param = "M104 S215\nM140 S60 ; bed\nM106 P1 S255\nG28 X\nM400\nG1 X10 F3000\n"
    request(model, "print", "gcode_line", param=param)
    reply = only_reply(capture)
    assert (reply["result"], reply["param"]) == ("success", param)
    assert model.state["nozzle_target_temper"] == 215
    assert model.state["bed_target_temper"] == 60
    assert model.state["cooling_fan_speed"] == "15"
    assert model.state["fan_gear"] & 0xFF == 255
    assert model.state["home_flag"] == home_before | report.HOME_X

    request(model, "print", "gcode_line", param="M109 S0\nM190 S0\nM106 P1 S128\nG28\n")
    assert model.state["nozzle_target_temper"] == 0
    assert model.state["bed_target_temper"] == 0
    assert model.state["cooling_fan_speed"] == "8"
    assert model.state["fan_gear"] & 0xFF == 128
    assert model.state["home_flag"] & report.HOME_XYZ == report.HOME_XYZ


def test_gcode_line_aux_fans_only_where_they_exist() -> None:
    a1, _ = make_model(A1)
    request(a1, "print", "gcode_line", param="M106 P2 S255\nM106 P3 S255\n")
    assert (a1.state["big_fan1_speed"], a1.state["big_fan2_speed"]) == ("0", "0")
    x1c, _ = make_model(X1C)
    request(x1c, "print", "gcode_line", param="M106 P2 S255\nM106 P3 S51\n")
    assert (x1c.state["big_fan1_speed"], x1c.state["big_fan2_speed"]) == ("15", "3")
    assert x1c.state["fan_gear"] == 255 << 8 | 51 << 16


def test_gcode_line_heats_the_nozzle_over_time() -> None:
    model, _ = make_model()
    request(model, "print", "gcode_line", param="M104 S200\n")
    advance_until(model, lambda m: m.state["nozzle_temper"] > 199.5, step=2.0, limit=100)


def test_gcode_line_ignores_lines_it_does_not_know_and_garbage_numbers() -> None:
    model, capture = make_model()
    request(
        model, "print", "gcode_line", param="M104 Sabc\nM140\nXYZ\n\n;only a comment\nM104 Snan\n"
    )
    assert only_reply(capture)["result"] == "success"
    assert model.state["nozzle_target_temper"] == 0


def test_gcode_line_without_text_fails() -> None:
    model, capture = make_model()
    request(model, "print", "gcode_line", param=42)
    assert only_reply(capture)["result"] == "failed"


# --- project_file --------------------------------------------------------------------------


def project_file(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "param": "Metadata/plate_1.gcode",
        "url": "file:///sdcard/benchy.gcode.3mf",
        "file": "",
        "md5": "",
        "subtask_name": "benchy",
        "project_id": "0",
        "profile_id": "0",
        "task_id": "0",
        "subtask_id": "0",
        "bed_type": "auto",
        "timelapse": False,
        "bed_leveling": True,
        "flow_cali": True,
        "vibration_cali": True,
        "layer_inspect": False,
        "use_ams": False,
        "ams_mapping": [0],
    }
    fields.update(overrides)
    return fields


@pytest.mark.parametrize(
    "where",
    [
        {"url": "file:///sdcard/benchy.gcode.3mf"},
        {"url": "ftp:///benchy.gcode.3mf"},
        {"url": "file:///mnt/sdcard/benchy.gcode.3mf"},
        {"url": "", "file": "benchy.gcode.3mf"},
        {"url": "ftp:///cache/benchy.gcode.3mf"},
    ],
)
def test_project_file_starts_a_job_from_any_url_form(where: dict[str, str]) -> None:
    model, capture = make_model()
    request(model, "print", "project_file", **project_file(**where))
    reply = only_reply(capture)
    assert reply["result"] == "success"
    assert reply["url"] == where["url"]  # params echoed
    assert model.gcode_state == "PREPARE"
    state = model.state
    assert state["gcode_file"] == "benchy.gcode.3mf"
    assert state["subtask_name"] == "benchy"
    assert state["print_type"] == "local"
    assert state["mc_print_stage"] == "2"
    assert state["gcode_file_prepare_percent"] == "0"
    assert state["ams"]["tray_now"] == "254"  # use_ams false: the external spool


def test_project_file_walks_the_stages_it_was_asked_for() -> None:
    model, _ = make_model()
    request(model, "print", "project_file", **project_file(vibration_cali=False))
    advance_until(model, lambda m: m.gcode_state == "RUNNING", step=0.5)
    assert model.state["stg"] == [2, 14, 13, 1, 8]


@pytest.mark.parametrize(
    ("options", "stages"),
    [
        ({"bed_leveling": False, "flow_cali": False, "vibration_cali": False}, [2, 14, 13]),
        ({"bed_levelling": True, "flow_cali": False, "vibration_cali": False}, [2, 14, 13, 1]),
        ({"bed_levelling": False, "flow_cali": True, "vibration_cali": True}, [2, 14, 13, 3, 8]),
    ],
)
def test_project_file_accepts_both_bed_leveling_spellings(
    options: dict[str, bool], stages: list[int]
) -> None:
    model, _ = make_model()
    fields = project_file()
    del fields["bed_leveling"]
    fields.update(options)
    request(model, "print", "project_file", **fields)
    advance_until(model, lambda m: m.gcode_state == "RUNNING", step=0.5)
    assert model.state["stg"] == stages


def test_project_file_with_ams_mapping_uses_the_tray() -> None:
    model, _ = make_model()
    request(model, "print", "project_file", **project_file(use_ams=True, ams_mapping=[3]))
    assert model.state["ams"]["tray_now"] == "3"
    advance_until(model, lambda m: m.state["nozzle_target_temper"] > 0, step=0.5)
    assert model.state["nozzle_target_temper"] == 250  # tray 3 holds PETG


def test_project_file_missing_on_the_sd_card_fails() -> None:
    model, capture = make_model()
    request(model, "print", "project_file", **project_file(url="file:///sdcard/nope.gcode.3mf"))
    reply = only_reply(capture)
    assert reply["result"] == "failed"
    assert reply["err_code"] == 0x05004002
    assert model.gcode_state == "FAILED"
    assert model.state["print_error"] == 0x05004002


def test_project_file_after_upload_to_the_sd_card() -> None:
    model, capture = make_model()
    model.add_sd_file("/part.gcode.3mf", layers=3, layer_seconds=1.0)
    assert "part.gcode.3mf" in model.sd_files
    request(
        model,
        "print",
        "project_file",
        **project_file(url="file:///sdcard/part.gcode.3mf", subtask_name=""),
    )
    assert only_reply(capture)["result"] == "success"
    assert model.state["subtask_name"] == "part"
    assert model.state["total_layer_num"] == 3
    model.remove_sd_file("part.gcode.3mf")
    assert "part.gcode.3mf" not in model.sd_files


def test_project_file_while_busy_fails_and_keeps_the_job() -> None:
    model, capture = make_model()
    printing(model)
    capture.clear()
    request(model, "print", "project_file", **project_file())
    reply = only_reply(capture)
    assert reply["result"] == "failed"
    assert reply["err_code"] == 0x05004004
    assert model.gcode_state == "RUNNING"
    assert model.state["print_error"] == 0


def test_gcode_file_starts_a_plain_gcode_job() -> None:
    model, capture = make_model()
    request(model, "print", "gcode_file", param="/sdcard/calibration_cube.gcode.3mf")
    assert only_reply(capture)["result"] == "success"
    assert model.state["gcode_file"] == "calibration_cube.gcode.3mf"


# --- skip_objects / filament ---------------------------------------------------------------


def test_skip_objects_lands_in_s_obj() -> None:
    model, capture = make_model()
    printing(model)
    capture.clear()
    request(model, "print", "skip_objects", obj_list=[206, 207], timestamp=1700000000)
    assert only_reply(capture)["result"] == "success"
    request(model, "print", "skip_objects", obj_list=[207, 300])
    assert model.state["s_obj"] == [206, 207, 300]


@pytest.mark.parametrize("obj_list", [None, "206", [True], ["206"]])
def test_skip_objects_rejects_bad_lists(obj_list: Any) -> None:
    model, capture = make_model()
    printing(model)
    capture.clear()
    request(model, "print", "skip_objects", obj_list=obj_list)
    assert only_reply(capture)["result"] == "failed"


def test_skip_objects_without_a_job_fails() -> None:
    model, capture = make_model()
    request(model, "print", "skip_objects", obj_list=[1])
    assert only_reply(capture)["result"] == "failed"


def test_ams_filament_setting_changes_a_tray_and_the_external_spool() -> None:
    model, capture = make_model()
    request(
        model,
        "print",
        "ams_filament_setting",
        ams_id=0,
        tray_id=2,
        slot_id=2,
        tray_info_idx="GFG99",
        tray_color="FF0000FF",
        nozzle_temp_min=220,
        nozzle_temp_max=260,
        tray_type="PETG",
    )
    assert only_reply(capture)["result"] == "success"
    tray = model.state["ams"]["ams"][0]["tray"][2]
    assert (tray["tray_type"], tray["tray_color"], tray["cols"]) == (
        "PETG",
        "FF0000FF",
        ["FF0000FF"],
    )
    assert (tray["nozzle_temp_min"], tray["nozzle_temp_max"]) == ("220", "260")
    capture.clear()
    request(model, "print", "ams_filament_setting", ams_id=255, tray_id=254, tray_color="00FF00FF")
    assert only_reply(capture)["result"] == "success"
    assert model.state["vt_tray"]["tray_color"] == "00FF00FF"
    capture.clear()
    request(model, "print", "ams_filament_setting", ams_id=7, tray_id=0)
    assert only_reply(capture)["result"] == "failed"


# --- Developer Mode off --------------------------------------------------------------------

SIGNED_COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("pause", {"param": ""}),
    ("resume", {"param": ""}),
    ("stop", {"param": ""}),
    ("print_speed", {"param": "3"}),
    ("gcode_line", {"param": "M104 S220\n"}),
    ("project_file", project_file()),
    ("skip_objects", {"obj_list": [1]}),
    ("gcode_file", {"param": "/sdcard/benchy.gcode.3mf"}),
    ("ams_filament_setting", {"ams_id": 0, "tray_id": 0, "tray_color": "FF0000FF"}),
    ("some_future_command", {}),
]


@pytest.mark.parametrize(
    ("command", "fields"), SIGNED_COMMANDS, ids=[c for c, _ in SIGNED_COMMANDS]
)
def test_developer_mode_off_refuses_every_print_command(
    command: str, fields: dict[str, Any]
) -> None:
    model, capture = make_model(dev_mode=False)
    before = model.full_report()["print"]
    request(model, "print", command, sequence_id="5002", **fields)
    reply = only_reply(capture)
    assert reply["command"] == command
    assert reply["sequence_id"] == "5002"
    assert reply["result"] == "failed"
    assert reply["reason"] == "mqtt message verify failed"
    assert reply["err_code"] == 84033543
    if "param" in fields:
        assert reply["param"] == fields["param"]
    assert list(reply)[:2] == ["command", "sequence_id"]
    assert list(reply)[-3:] == ["result", "reason", "err_code"]

    (entry,) = model.state["hms"]
    assert {k: entry[k] for k in ("attr", "code", "action")} == {**VERIFY_FAILED_HMS, "action": 0}
    assert isinstance(entry["timestamp"], int)
    assert capture.deltas()[-1]["hms"] == model.state["hms"]
    after = model.full_report()["print"]
    for key in (
        "gcode_state",
        "spd_lvl",
        "nozzle_target_temper",
        "s_obj",
        "print_error",
        "ams",
        "vt_tray",
    ):
        assert after[key] == before[key], key
    assert model.stats.verify_failures == 1


def test_verify_failed_hms_is_raised_once() -> None:
    model, _ = make_model(dev_mode=False)
    for _ in range(3):
        request(model, "print", "pause", param="")
    assert len(model.state["hms"]) == 1


def test_signature_envelope_we_cannot_verify_is_malformed() -> None:
    model, capture = make_model(dev_mode=False)
    model.handle_request(
        orjson.dumps(
            {
                "print": {"sequence_id": "1", "command": "pause", "param": ""},
                "header": {"sign_ver": "v1.0", "sign_alg": "RSA_SHA256", "sign_string": "AAAA"},
            }
        )
    )
    assert only_reply(capture)["err_code"] == 84033545


def test_developer_mode_can_be_switched_at_run_time() -> None:
    model, capture = make_model(dev_mode=True)
    model.set_dev_mode(False)
    assert not model.dev_mode
    request(model, "print", "print_speed", param="3")
    assert only_reply(capture)["result"] == "failed"
    capture.clear()
    model.set_dev_mode(True)
    request(model, "print", "print_speed", param="3")
    assert only_reply(capture)["result"] == "success"
