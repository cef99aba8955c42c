"""Command builders and reply parsing (protocol.md §3.6, §5)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bambu_lan.protocol import commands as cmd
from bambu_lan.protocol.commands import Command, SequenceIds, parse_reply
from bambu_lan.protocol.merge import apply_push
from bambu_lan.protocol.state import PrinterState, StateBuilder

from .conftest import A1_SERIAL


def state_of(**fields: Any) -> PrinterState:
    raw, _ = apply_push({}, {"gcode_state": "IDLE", "nozzle_temper": 1, **fields, "msg": 0})
    return StateBuilder(A1_SERIAL).build(raw, None, True)


def test_payload_shape_puts_sequence_id_and_command_in_the_class_object() -> None:
    payload = cmd.get_version().payload("5001")
    assert payload == {"info": {"sequence_id": "5001", "command": "get_version"}}
    # What goes on the wire is plain JSON.
    assert orjson.loads(orjson.dumps(payload)) == payload


def test_pushall() -> None:
    command = cmd.pushall()
    assert command.payload("7") == {
        "pushing": {"sequence_id": "7", "command": "pushall", "version": 1, "push_target": 1}
    }
    assert command.label == "pushing.pushall"


def test_start_pushing() -> None:
    assert cmd.start_pushing().payload("1") == {"pushing": {"sequence_id": "1", "command": "start"}}


@pytest.mark.parametrize(
    ("build", "name"), [(cmd.pause, "pause"), (cmd.resume, "resume"), (cmd.stop, "stop")]
)
def test_job_control_is_qos1_with_an_empty_param(build: Any, name: str) -> None:
    command: Command = build()
    assert command.payload("9") == {"print": {"sequence_id": "9", "command": name, "param": ""}}
    assert command.qos == 1


def test_job_control_is_confirmed_by_state() -> None:
    pause = cmd.pause().confirmed_by
    assert pause is not None
    assert pause(state_of(gcode_state="PAUSE"))
    assert not pause(state_of(gcode_state="RUNNING"))
    resume = cmd.resume().confirmed_by
    assert resume is not None
    assert resume(state_of(gcode_state="RUNNING"))
    stop = cmd.stop().confirmed_by
    assert stop is not None
    assert stop(state_of(gcode_state="FAILED"))
    assert not stop(state_of(gcode_state="RUNNING"))


def test_ledctrl_fields() -> None:
    on = cmd.light(True)
    assert on.payload("3") == {
        "system": {
            "sequence_id": "3",
            "command": "ledctrl",
            "led_node": "chamber_light",
            "led_mode": "on",
            "led_on_time": 500,
            "led_off_time": 500,
            "loop_times": 0,
            "interval_time": 0,
        }
    }
    off = cmd.light(False, node="work_light")
    body = off.payload("4")["system"]
    assert (body["led_node"], body["led_mode"]) == ("work_light", "off")
    assert on.confirmed_by is not None
    assert on.confirmed_by(state_of(lights_report=[{"node": "chamber_light", "mode": "on"}]))
    assert not on.confirmed_by(state_of(lights_report=[{"node": "chamber_light", "mode": "off"}]))


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_print_speed_param_is_a_string(level: int) -> None:
    command = cmd.print_speed(level)
    assert command.payload("8") == {
        "print": {"sequence_id": "8", "command": "print_speed", "param": str(level)}
    }
    assert command.confirmed_by is not None
    assert command.confirmed_by(state_of(spd_lvl=level))
    assert not command.confirmed_by(state_of(spd_lvl=level % 4 + 1))


@pytest.mark.parametrize("level", [0, 5, -1, 2.0, True, "2"])
def test_invalid_speed_level_raises(level: Any) -> None:
    with pytest.raises(ValueError, match="speed level"):
        cmd.print_speed(level)


@pytest.mark.parametrize(
    ("lines", "param"),
    [
        ("G28", "G28\n"),
        ("M104 S220\n", "M104 S220\n"),
        (["G28", "M104 S220"], "G28\nM104 S220\n"),
        ("G28\r\n\r\nM400  ", "G28\nM400\n"),
        (("M106 P3 S255",), "M106 P3 S255\n"),
        # ';' starts a comment, as in G-code files: the comment is not sent.
        ("G28 ; home all axes", "G28\n"),
        ("; only a comment\nM400", "M400\n"),
        (["G28;", ";M400", "M400"], "G28\nM400\n"),
    ],
)
def test_gcode_is_newline_terminated(lines: Any, param: str) -> None:
    body = cmd.gcode(lines).payload("2")["print"]
    assert body["command"] == "gcode_line"
    assert body["param"] == param
    assert body["param"].endswith("\n")
    assert not body["param"].endswith("\n\n")


@pytest.mark.parametrize("lines", ["", "   ", [], ["", "  "]])
def test_empty_gcode_raises(lines: Any) -> None:
    with pytest.raises(ValueError, match="G-code"):
        cmd.gcode(lines)


def test_raw_command_copies_its_params() -> None:
    params = {"param": "x"}
    command = cmd.raw("camera", "ipcam_record_set", params)
    params["param"] = "changed"
    assert command.payload("1") == {
        "camera": {"sequence_id": "1", "command": "ipcam_record_set", "param": "x"}
    }


def test_sequence_ids_are_unique_decimal_strings() -> None:
    ids = SequenceIds()
    seen = [ids.next() for _ in range(1000)]
    assert len(set(seen)) == 1000
    assert all(isinstance(s, str) and s.isdecimal() for s in seen)
    assert int(seen[0]) >= 5000  # high, away from other clients' "0"
    assert SequenceIds(start=10).next() == "10"
    # Two generators (two printers) do not need to agree; each is unique on its own.
    other = SequenceIds(start=int(seen[-1]) + 1)
    assert other.next() not in seen


# --- replies --------------------------------------------------------------------------------


def test_reply_success() -> None:
    reply = parse_reply(
        "print",
        {
            "command": "gcode_line",
            "param": "M104 S220\n",
            "result": "success",
            "sequence_id": "2006",
        },
    )
    assert reply is not None
    assert (reply.cls, reply.sequence_id, reply.command) == ("print", "2006", "gcode_line")
    assert reply.ok is True
    assert reply.err_code is None
    assert not reply.developer_mode_required


def test_reply_upper_case_success() -> None:
    reply = parse_reply(
        "print",
        {
            "command": "gcode_line",
            "result": "SUCCESS",
            "reason": "SUCCESS",
            "err_code": 0,
            "sequence_id": "5001",
        },
    )
    assert reply is not None
    assert reply.ok is True
    assert reply.err_code == 0
    assert not reply.developer_mode_required


def test_reply_failed_for_want_of_developer_mode() -> None:
    reply = parse_reply(
        "print",
        {
            "command": "gcode_line",
            "result": "failed",
            "reason": "mqtt message verify failed",
            "err_code": 84033543,
            "param": "M106 P3 S255\n",
            "sequence_id": "5002",
        },
    )
    assert reply is not None
    assert reply.ok is False
    assert reply.err_code == 84033543
    assert reply.reason == "mqtt message verify failed"
    assert reply.developer_mode_required


@pytest.mark.parametrize(
    "body",
    [
        {"result": "failed", "err_code": 84033545, "sequence_id": "1"},
        {"result": "fail", "reason": "MQTT message verify failed", "sequence_id": "1"},
    ],
)
def test_developer_mode_is_recognised_by_code_or_reason(body: dict[str, Any]) -> None:
    reply = parse_reply("print", body)
    assert reply is not None
    assert reply.developer_mode_required


def test_other_failures_are_not_developer_mode() -> None:
    reply = parse_reply(
        "print", {"command": "stop", "result": "failed", "reason": "busy", "sequence_id": "3"}
    )
    assert reply is not None
    assert reply.ok is False
    assert not reply.developer_mode_required


def test_a1_mini_reply_without_command() -> None:
    reply = parse_reply(
        "print", {"sequence_id": "1", "param": "G28", "result": "success", "reason": "success"}
    )
    assert reply is not None
    assert reply.command == ""
    assert reply.ok is True
    assert reply.sequence_id == "1"


def test_system_reply_for_ledctrl() -> None:
    reply = parse_reply(
        "system",
        {"command": "ledctrl", "led_node": "chamber_light", "result": "success", "sequence_id": 77},
    )
    assert reply is not None
    assert (reply.cls, reply.command, reply.sequence_id) == ("system", "ledctrl", "77")


def test_info_reply_without_result() -> None:
    reply = parse_reply("info", {"command": "get_version", "sequence_id": "0", "module": []})
    assert reply is not None
    assert reply.ok is None


@pytest.mark.parametrize(
    "body",
    [
        {"nozzle_temper": 200.0, "command": "push_status", "msg": 1, "sequence_id": "40941"},
        {"gcode_state": "RUNNING", "nozzle_temper": 200.0},  # X1 push without command
        {"command": "gcode_line", "result": "success"},  # no sequence id: cannot be matched
        {"gcode_state": "IDLE", "sequence_id": "3"},  # no command, no result: a push
    ],
)
def test_pushes_are_not_replies(body: dict[str, Any]) -> None:
    assert parse_reply("print", body) is None
