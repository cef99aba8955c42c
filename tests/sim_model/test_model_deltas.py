"""Deltas carry exactly what changed; cadence, pushing.start/stop, X1 full pushes."""

from __future__ import annotations

from typing import Any

import pytest
from tests.sim_model.support import PUSH_TAIL, Capture, advance_until, make_model, merge, request

from bambu_lan.sim.printer import PrinterModel
from bambu_lan.sim.profiles import A1, P1S, X1C

STATE_KEYS_EXCLUDED = {"command", "msg", "sequence_id"}


def state_of(model: PrinterModel) -> dict[str, Any]:
    body = model.full_report()["print"]
    return {k: v for k, v in body.items() if k not in STATE_KEYS_EXCLUDED}


def check_delta_stream(model: PrinterModel, capture: Capture, mirror: dict[str, Any]) -> None:
    """Every delta key really changed; applying the deltas reproduces the model's state."""
    for delta in capture.deltas():
        assert list(delta)[-3:] == PUSH_TAIL
        assert delta["msg"] == 1
        changed = {k: v for k, v in delta.items() if k not in STATE_KEYS_EXCLUDED}
        assert changed, "a delta with nothing in it"
        for key, value in changed.items():
            assert key in mirror, f"delta brought an unknown key {key}"
            assert mirror[key] != value, f"{key} is in the delta but did not change"
        merge(mirror, changed)
    capture.clear()
    assert mirror == state_of(model)


def test_deltas_through_a_whole_print_carry_only_changes_and_miss_none() -> None:
    model, capture = make_model(A1)
    mirror = state_of(model)
    for _ in range(5):
        model.advance(2.0)
    check_delta_stream(model, capture, mirror)

    request(model, "system", "ledctrl", led_node="chamber_light", led_mode="on")
    model.start_print(layers=8, layer_seconds=5.0)
    check_delta_stream(model, capture, mirror)

    advance_until(model, lambda m: m.state["layer_num"] >= 3, step=3.0)
    model.set_tray(0, 2, color="00FF00")
    model.raise_hms("0300_0100_0001_0007")
    request(model, "print", "print_speed", param="3")
    request(model, "print", "gcode_line", param="M106 P1 S128\nG28\n")
    check_delta_stream(model, capture, mirror)

    advance_until(model, lambda m: m.gcode_state == "FINISH", step=3.0)
    for _ in range(5):
        model.advance(2.0)
    check_delta_stream(model, capture, mirror)


def test_push_sequence_ids_are_the_printers_own_counter() -> None:
    model, capture = make_model()
    model.push_full()
    for _ in range(6):
        model.advance(2.0)
    request(model, "pushing", "pushall", sequence_id="77")
    ids = [int(push["sequence_id"]) for push in capture.pushes()]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert 77 not in ids


def test_delta_keys_follow_the_full_report_order() -> None:
    model, capture = make_model()
    model.start_print()
    order = list(model.state)
    for delta in capture.deltas():
        keys = [k for k in delta if k not in STATE_KEYS_EXCLUDED]
        assert keys == sorted(keys, key=order.index)


def test_nested_objects_are_sent_whole() -> None:
    model, capture = make_model()
    model.set_tray(0, 1, remain=42)
    (delta,) = capture.deltas()
    assert set(delta) == {"ams", *PUSH_TAIL}
    assert delta["ams"] == model.state["ams"]
    assert delta["ams"]["ams"][0]["tray"][1]["remain"] == 42


def test_idle_printer_sends_a_delta_at_least_every_second_tick() -> None:
    model, capture = make_model(seed=3)
    quiet_run = 0
    for _ in range(60):
        before = len(capture.raw)
        model.advance(2.0)
        quiet_run = quiet_run + 1 if len(capture.raw) == before else 0
        assert quiet_run < 2
    idle_keys = {k for d in capture.deltas() for k in d} - STATE_KEYS_EXCLUDED
    assert idle_keys <= {"nozzle_temper", "bed_temper", "wifi_signal"}
    assert "wifi_signal" in idle_keys


def test_wifi_signal_jitters_within_a_few_db() -> None:
    model, capture = make_model(seed=11)
    for _ in range(200):
        model.advance(2.0)
    values = {
        int(d["wifi_signal"].removesuffix("dBm")) for d in capture.deltas() if "wifi_signal" in d
    }
    assert len(values) > 2
    assert max(values) - min(values) <= 8


def test_temperatures_are_floats_in_32nds_and_targets_ints() -> None:
    model, capture = make_model()
    model.start_print()
    advance_until(model, lambda m: m.state["stg_cur"] == 0 and m.gcode_state == "RUNNING")
    for delta in capture.deltas():
        for key in ("nozzle_temper", "bed_temper"):
            if key in delta:
                assert isinstance(delta[key], float)
                assert (delta[key] * 32).is_integer()
        for key in ("nozzle_target_temper", "bed_target_temper"):
            if key in delta:
                assert isinstance(delta[key], int)
    assert model.state["nozzle_temper"] == pytest.approx(220, abs=0.5)
    assert model.state["bed_temper"] == pytest.approx(65, abs=0.5)


def test_pushing_stop_and_start() -> None:
    model, capture = make_model()
    started: list[bool] = []
    model.on_pushing_start = lambda: started.append(True)

    request(model, "pushing", "stop")
    assert capture.raw == []
    for _ in range(5):
        model.advance(2.0)
    assert capture.raw == []
    assert not model.pushing
    request(model, "info", "get_version")  # replies still flow while pushes are stopped
    assert len(capture.replies()) == 1
    capture.clear()

    request(model, "pushing", "start")
    assert started == [True]
    (push,) = capture.pushes()
    assert push["msg"] == 0
    model.advance(2.0)
    model.advance(2.0)
    assert capture.deltas()


def test_pushall_publishes_the_full_object_and_no_reply() -> None:
    model, capture = make_model()
    request(model, "pushing", "pushall", version=1, push_target=1)
    (message,) = capture.messages
    assert message["print"]["msg"] == 0
    assert set(message["print"]) == set(model.full_report()["print"])


def test_x1c_pushes_the_full_object_every_tick_without_msg() -> None:
    model, capture = make_model(X1C)
    for _ in range(3):
        model.advance(1.0)
    pushes = capture.pushes()
    assert len(pushes) == 3
    full_keys = set(model.full_report()["print"])
    for push in pushes:
        assert "msg" not in push
        assert set(push) == full_keys
        assert list(push)[-2:] == ["command", "sequence_id"]
    capture.clear()
    request(model, "pushing", "pushall")
    (push,) = capture.pushes()
    assert "msg" not in push


def test_tick_interval_follows_activity_and_time_scale() -> None:
    idle_a1 = PrinterModel(A1, A1.default_serial(), seed=1)
    assert idle_a1.tick_interval == PrinterModel.IDLE_INTERVAL
    idle_a1.start_print()
    assert idle_a1.tick_interval == PrinterModel.ACTIVE_INTERVAL
    fast = PrinterModel(P1S, P1S.default_serial(), time_scale=10.0, seed=1)
    assert fast.tick_interval == pytest.approx(0.2)
    very_fast = PrinterModel(A1, A1.default_serial(), time_scale=1e6, seed=1)
    assert very_fast.tick_interval == PrinterModel.MIN_INTERVAL
    assert PrinterModel(X1C, X1C.default_serial(), seed=1).tick_interval == 1.0


def test_time_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        PrinterModel(A1, A1.default_serial(), time_scale=0)


def test_full_report_for_the_owner_takes_a_fresh_sequence_id() -> None:
    model, capture = make_model()
    model.advance(2.0)
    model.advance(2.0)
    last = int(capture.pushes()[-1]["sequence_id"])
    assert int(model.full_report()["print"]["sequence_id"]) == last + 1
    payload = model.full_report_payload()
    assert b"\n" not in payload
    x1c, _ = make_model(X1C)
    assert b"\n  " in x1c.full_report_payload()
