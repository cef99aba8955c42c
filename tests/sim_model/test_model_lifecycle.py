"""Print lifecycle in (scaled) real time, and the scenario verbs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from tests.sim_model.support import Capture, advance_until, make_model, request

from bambu_lan.sim import report
from bambu_lan.sim.printer import PrinterModel
from bambu_lan.sim.profiles import A1, P1S, X1C, ModelProfile


@pytest.fixture
async def running() -> AsyncIterator[tuple[PrinterModel, Capture]]:
    """A fast A1 with its push loop running."""
    model, capture = make_model(time_scale=1000.0)
    task = asyncio.create_task(model.run())
    yield model, capture
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.stats.internal_errors == 0


async def test_time_scaled_print_runs_prepare_running_finish(
    running: tuple[PrinterModel, Capture],
) -> None:
    model, capture = running
    started = time.monotonic()
    model.start_print(layers=20, layer_seconds=5.0, name="cube")
    assert await model.wait_for_state("PREPARE") == "PREPARE"
    assert await model.wait_for_state("FINISH", timeout=5.0) == "FINISH"
    assert time.monotonic() - started < 5.0
    assert list(model.state_history)[-4:] == ["IDLE", "PREPARE", "RUNNING", "FINISH"]

    deltas = capture.deltas()
    layers = [d["layer_num"] for d in deltas if "layer_num" in d]
    assert layers == sorted(layers)
    assert layers[-1] == 20
    assert len(set(layers)) > 3  # progress shows in several pushes
    stages = [d["stg_cur"] for d in deltas if "stg_cur" in d]
    assert stages[:6] == [2, 14, 13, 1, 8, 0]
    percents = [d["mc_percent"] for d in deltas if "mc_percent" in d]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    prepare = [d["gcode_file_prepare_percent"] for d in deltas if "gcode_file_prepare_percent" in d]
    assert all(isinstance(p, str) for p in prepare)
    assert [int(p) for p in prepare] == sorted(int(p) for p in prepare)
    assert prepare[-1] == "100"

    state = model.state
    assert (state["mc_percent"], state["mc_remaining_time"]) == (100, 0)
    assert (state["nozzle_target_temper"], state["bed_target_temper"]) == (0, 0)
    assert state["print_type"] == "idle"
    assert state["subtask_name"] == "cube"
    assert state["home_flag"] & report.HOME_XYZ == report.HOME_XYZ  # homed in stage 13


async def test_project_file_over_mqtt_prints_to_the_end(
    running: tuple[PrinterModel, Capture],
) -> None:
    model, _ = running
    model.add_sd_file("quick.gcode.3mf", layers=5, layer_seconds=2.0)
    request(
        model, "print", "project_file", param="Metadata/plate_1.gcode", url="ftp:///quick.gcode.3mf"
    )
    await model.wait_for_state("FINISH", timeout=5.0)
    assert model.state["layer_num"] == 5


async def test_wait_until_sees_layers_rise(running: tuple[PrinterModel, Capture]) -> None:
    model, _ = running
    model.start_print(layers=50, layer_seconds=5.0)
    await model.wait_until(lambda m: m.state["layer_num"] >= 10, timeout=5.0)
    assert model.gcode_state == "RUNNING"
    request(model, "print", "pause", param="")
    assert await model.wait_for_state("PAUSE") == "PAUSE"


async def test_wait_for_state_times_out() -> None:
    model, _ = make_model()
    with pytest.raises(TimeoutError):
        await model.wait_for_state("FINISH", timeout=0.05)
    assert model.waiting == 0


async def test_a_failing_predicate_reaches_its_awaiter() -> None:
    model, _ = make_model()

    def broken(m: PrinterModel) -> bool:
        if m.gcode_state == "PREPARE":
            raise KeyError("boom")
        return False

    waiter = asyncio.create_task(model.wait_until(broken, timeout=5.0))
    await asyncio.sleep(0)
    model.start_print()
    with pytest.raises(KeyError):
        await waiter


@pytest.mark.parametrize("profile", [A1, P1S, X1C], ids=lambda p: p.key)
async def test_every_model_prints_through(profile: ModelProfile) -> None:
    model, _ = make_model(profile, time_scale=1000.0)
    task = asyncio.create_task(model.run())
    try:
        model.start_print(layers=4, layer_seconds=3.0)
        await model.wait_for_state("FINISH", timeout=5.0)
    finally:
        task.cancel()
    assert model.state["stg_cur"] == report.idle_stage(profile)


# --- scenario verbs (ticked by hand) -------------------------------------------------------


def test_run_out_of_filament_pauses_with_the_runout_error() -> None:
    model, capture = make_model()
    model.start_print(layers=30)
    advance_until(model, lambda m: m.state["layer_num"] >= 2)
    capture.clear()
    model.run_out_of_filament()
    state = model.state
    assert model.gcode_state == "PAUSE"
    assert state["stg_cur"] == 6
    assert state["print_error"] == 0x03008015  # 50364437
    assert state["hw_switch_state"] == 0
    assert state["mc_print_stage"] == "3"
    (delta,) = capture.deltas()
    assert {"gcode_state", "print_error", "hw_switch_state", "stg_cur"} <= delta.keys()

    request(model, "print", "resume", param="")
    assert model.gcode_state == "RUNNING"
    assert (model.state["print_error"], model.state["hw_switch_state"]) == (0, 1)


def test_run_out_while_idle_only_empties_the_sensor() -> None:
    model, _ = make_model()
    model.start_print(layers=1)
    model.finish_now()
    model.run_out_of_filament()
    assert model.gcode_state == "FINISH"
    assert model.state["hw_switch_state"] == 0


def test_raise_and_clear_hms() -> None:
    model, capture = make_model()
    model.raise_hms("HMS_0300_0100_0001_0007")
    model.raise_hms((0x07000200, 0x00020001))
    model.raise_hms("0300_0100_0001_0007")  # already active: not twice
    hms = model.state["hms"]
    assert [(e["attr"], e["code"]) for e in hms] == [(50331904, 65543), (0x07000200, 0x00020001)]
    assert all(e["action"] == 0 and isinstance(e["timestamp"], int) for e in hms)
    assert capture.deltas()[-1]["hms"] == hms

    model.clear_hms("0300010000010007")
    assert [(e["attr"], e["code"]) for e in model.state["hms"]] == [(0x07000200, 0x00020001)]
    model.clear_hms()
    assert model.state["hms"] == []
    assert capture.deltas()[-1]["hms"] == []


def test_raise_hms_rejects_garbage() -> None:
    model, _ = make_model()
    with pytest.raises(ValueError, match="HMS"):
        model.raise_hms("kaputt")


def test_set_and_empty_trays_keep_the_bits_right() -> None:
    model, capture = make_model()
    model.empty_tray(0, 1)
    ams = model.state["ams"]
    assert ams["ams"][0]["tray"][1] == {"id": "1"}
    assert ams["tray_exist_bits"] == "d"
    assert ams["tray_is_bbl_bits"] == "1"
    model.set_tray(0, 1, tray_type="petg", color="#112233", remain=55)
    tray = model.state["ams"]["ams"][0]["tray"][1]
    assert tray["tray_type"] == "PETG"
    assert tray["tray_color"] == "112233FF"
    assert tray["cols"] == ["112233FF"]
    assert tray["remain"] == 55
    assert tray["tray_info_idx"] == "GFG99"
    assert model.state["ams"]["tray_exist_bits"] == "f"
    assert all("ams" in d for d in capture.deltas())

    model.set_tray(0, 1, color="ABCDEF80")
    assert model.state["ams"]["ams"][0]["tray"][1]["cols"] == ["ABCDEF80"]
    with pytest.raises(ValueError, match="remain"):
        model.set_tray(0, 1, remain=101)
    with pytest.raises(ValueError, match="AMS 3"):
        model.set_tray(3, 0, tray_type="PLA")


def test_external_spool_set_and_empty() -> None:
    model, capture = make_model()
    model.empty_tray(254, 0)
    assert model.state["vt_tray"]["tray_type"] == ""
    assert set(model.state["vt_tray"]) == set(model.full_report()["print"]["vt_tray"])
    model.set_tray(255, 0, tray_type="TPU", color="FF8800")
    vt = model.state["vt_tray"]
    assert (vt["id"], vt["tray_type"], vt["tray_color"]) == ("254", "TPU", "FF8800FF")
    assert "vt_tray" in capture.deltas()[-1]


def test_unplugging_the_ams_changes_modules_and_online_version() -> None:
    model, capture = make_model()
    version = model.state["online"]["version"]
    model.set_ams_attached(False)
    ams = model.state["ams"]
    assert ams["ams"] == []
    assert (ams["ams_exist_bits"], ams["tray_exist_bits"]) == ("0", "0")
    assert model.state["online"]["version"] == version + 1
    assert {"ams", "online"} <= capture.deltas()[-1].keys()
    assert all(not m["name"].startswith("ams") for m in model.version_modules)
    model.set_ams_attached(True)
    assert model.state["ams"]["tray_exist_bits"] == "f"
    assert model.version_modules[-1]["name"] == "ams_f1/0"


def test_finish_now_and_fail() -> None:
    model, _ = make_model()
    model.start_print(layers=100)
    model.finish_now()
    assert model.gcode_state == "FINISH"
    assert (model.state["mc_percent"], model.state["layer_num"]) == (100, 100)
    model.start_print(layers=100)
    model.fail(0x07008006)
    assert model.gcode_state == "FAILED"
    for _ in range(5):
        model.advance(2.0)
    assert model.state["print_error"] == 0x07008006  # stays until the next job
    model.start_print()
    assert model.state["print_error"] == 0
    with pytest.raises(RuntimeError, match="busy"):
        model.start_print()


def test_verbs_without_a_job_raise() -> None:
    model, _ = make_model()
    with pytest.raises(RuntimeError, match="no print job"):
        model.finish_now()
    with pytest.raises(RuntimeError, match="no print job"):
        model.fail()
    with pytest.raises(ValueError, match="layers"):
        model.start_print(layers=0)


def test_x1c_job_sets_gcode_start_time_and_chamber_warms() -> None:
    model, _ = make_model(X1C)
    chamber = model.state["chamber_temper"]
    model.start_print(layers=200, layer_seconds=10.0)
    assert int(model.state["gcode_start_time"]) > 0
    advance_until(model, lambda m: m.state["layer_num"] >= 100, step=20.0)
    assert model.state["chamber_temper"] > chamber + 3


def test_prepare_percent_rises_in_steps_and_restarts_for_the_next_job() -> None:
    model, capture = make_model()
    model.start_print(layers=2, layer_seconds=1.0, prepare_seconds=2.0)
    for _ in range(4):
        model.advance(0.5)
    percents = [
        d["gcode_file_prepare_percent"]
        for d in capture.deltas()
        if "gcode_file_prepare_percent" in d
    ]
    assert percents == ["25", "50", "75", "100"]
    assert model.gcode_state == "RUNNING"
    model.finish_now()
    capture.clear()
    model.start_print()
    assert capture.deltas()[-1]["gcode_file_prepare_percent"] == "0"
