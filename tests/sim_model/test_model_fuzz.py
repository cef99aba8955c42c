"""Whatever arrives on /request, the printer model never raises and publishes valid JSON."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.sim_model.support import make_model

from bambu_lan.sim.printer import PrinterModel
from bambu_lan.sim.profiles import A1, X1C

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
CLASSES = ["print", "pushing", "info", "system", "camera", "upgrade", "header", "bogus"]
COMMANDS = [
    "pushall", "start", "stop", "get_version", "ledctrl", "pause", "resume", "print_speed",
    "gcode_line", "project_file", "gcode_file", "skip_objects", "ams_filament_setting", "nope",
]  # fmt: skip
FIELDS = [
    "param", "url", "file", "led_node", "led_mode", "obj_list", "ams_id", "tray_id", "slot_id",
    "tray_color", "tray_type", "use_ams", "ams_mapping", "bed_leveling", "subtask_name",
    "nozzle_temp_min", "sequence_id",
]  # fmt: skip
gcode_text = st.lists(
    st.sampled_from(
        ["M104", "M109", "M140", "M190", "M106", "M107", "G28", "G1", "M400", "X"]
    ).flatmap(lambda word: st.builds(lambda args: f"{word} {args}", st.text(max_size=12))),
    max_size=5,
).map("\n".join)
command_bodies = st.fixed_dictionaries(
    {"command": st.sampled_from(COMMANDS) | st.text(max_size=8) | json_values},
    optional={
        **dict.fromkeys(FIELDS, json_values),
        "param": json_values
        | gcode_text
        | st.sampled_from(["1", "4", "5", "file:///sdcard/benchy.gcode.3mf"]),
        "url": st.sampled_from(["file:///sdcard/benchy.gcode.3mf", "ftp:///x", "http://[::1", ""])
        | json_values,
        "led_node": st.sampled_from(["chamber_light", "work_light"]) | json_values,
        "led_mode": st.sampled_from(["on", "off", "flashing"]) | json_values,
    },
)
requests = st.dictionaries(
    st.sampled_from(CLASSES) | st.text(max_size=6), command_bodies | json_values, max_size=3
)


def assert_healthy(model: PrinterModel, published: list[bytes]) -> None:
    assert model.stats.internal_errors == 0
    for payload in published:
        message = orjson.loads(payload)
        assert isinstance(message, dict)
        assert len(message) == 1


@FUZZ
@given(payload=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    model, capture = make_model()
    model.handle_request(payload)
    model.handle_request(payload + b"\x00")
    assert_healthy(model, capture.raw)


@FUZZ
@given(
    messages=st.lists(requests, min_size=1, max_size=6), dev_mode=st.booleans(), x1=st.booleans()
)
def test_arbitrary_commands_never_raise(
    messages: list[dict[str, Any]], dev_mode: bool, x1: bool
) -> None:
    model, capture = make_model(X1C if x1 else A1, dev_mode=dev_mode)
    for message in messages:
        model.handle_request(orjson.dumps(message))
        model.advance(3.0)
    assert_healthy(model, capture.raw)
    assert model.stats.requests == len(messages)
    assert orjson.loads(orjson.dumps(model.full_report()))["print"]["command"] == "push_status"


@FUZZ
@given(text=gcode_text)
def test_arbitrary_gcode_never_raises(text: str) -> None:
    model, capture = make_model()
    model.handle_request(
        orjson.dumps({"print": {"sequence_id": "1", "command": "gcode_line", "param": text}})
    )
    assert_healthy(model, capture.raw)
    state = model.state
    assert 0 <= state["nozzle_target_temper"] <= 300
    assert 0 <= state["bed_target_temper"] <= 120
    assert 0 <= int(state["cooling_fan_speed"]) <= 15
