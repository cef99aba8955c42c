"""The P2S and H2D profiles: the newer printers' report shape (``device``, ``vir_slot``, AMS 2
Pro and AMS HT), checked against the public captures in tests/protocol/captures and read back
through the client's typed state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from bambu_lan.protocol.merge import apply_push
from bambu_lan.protocol.state import AmsKind, PrinterState, StateBuilder, info_from_version_reply
from bambu_lan.sim.profiles import H2D, P2S, ModelProfile

from .support import make_model, request, shape_mismatches

CAPTURES = Path(__file__).resolve().parents[1] / "protocol" / "captures"

# Paths where a capture has an int and the simulator a float, or the other way round: both
# are numbers on the wire (readings are floats in one firmware, ints in another).
_NUMBERS = frozenset(
    {
        ".nozzle_temper",
        ".nozzle_target_temper",
        ".bed_temper",
        ".bed_target_temper",
        ".chamber_temper",
    }
)


def capture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAPTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def full_report(profile: ModelProfile) -> dict[str, Any]:
    model, published = make_model(profile)
    model.push_full()
    body: dict[str, Any] = published.pushes()[-1]
    return body


def typed(profile: ModelProfile, body: dict[str, Any]) -> PrinterState:
    builder = StateBuilder(profile.default_serial())
    raw, full = apply_push({}, body)
    assert full
    return builder.build(raw, None, True)


@pytest.mark.parametrize(("profile", "name"), [(P2S, "p2s"), (H2D, "h2d")], ids=["p2s", "h2d"])
def test_full_report_has_the_shape_of_the_capture(profile: ModelProfile, name: str) -> None:
    body = full_report(profile)
    expected = capture(name)["pushall"]["print"]
    # Keys of the capture that describe its job, not the model, are left out.
    expected = {k: v for k, v in expected.items() if k not in ("msg",)}
    assert shape_mismatches(expected, body, numbers=_NUMBERS) == []
    assert "msg" not in body  # full reports every push, like the X1
    assert orjson.dumps(body)


def test_p2s_reports_what_the_capture_reports_and_nothing_older() -> None:
    body = full_report(P2S)
    assert "vt_tray" not in body  # only vir_slot
    assert "chamber_temper" not in body  # only device.ctc
    assert [slot["id"] for slot in body["vir_slot"]] == ["255"]
    extruder = body["device"]["extruder"]
    assert extruder["state"] == 1
    assert [e["id"] for e in extruder["info"]] == [0]


def test_h2d_has_two_extruders_two_holders_and_an_ams_ht() -> None:
    body = full_report(H2D)
    extruder = body["device"]["extruder"]
    assert [e["id"] for e in extruder["info"]] == [0, 1]
    assert [slot["id"] for slot in body["vir_slot"]] == ["254", "255"]
    units = body["ams"]["ams"]
    assert [u["id"] for u in units] == ["0", "128"]
    assert [t["id"] for t in units[1]["tray"]] == ["0"]
    # The presence bits number the AMS HT after the four AMS, as a real H2D does.
    assert (body["ams"]["ams_exist_bits"], body["ams"]["tray_exist_bits"]) == ("11", "1000f")


def test_h2d_read_by_the_client() -> None:
    model, published = make_model(H2D)
    model.push_full()
    state = typed(H2D, published.pushes()[-1])
    assert state.model == "H2D"
    assert [(n.index, n.active) for n in state.nozzles] == [(0, True), (1, False)]
    assert state.temperatures.chamber is not None
    assert [(u.ams_id, u.kind) for u in state.ams] == [
        (0, AmsKind.AMS_2_PRO),
        (128, AmsKind.AMS_HT),
    ]
    assert [u.humidity_percent for u in state.ams] == [23, 6]
    assert [s.tray_id for s in state.external_spools] == [254, 255]
    assert state.external_spools[0].empty
    assert state.active_tray is None


def test_h2d_printing_from_the_ams_ht_points_at_its_tray() -> None:
    model, published = make_model(H2D)
    model.start_print(layers=3, tray=128)
    for _ in range(30):
        model.advance(1.0)
    body = published.pushes()[-1]
    assert body["ams"]["tray_now"] == "128"
    assert body["device"]["extruder"]["info"][0]["snow"] == 128 << 8
    state = typed(H2D, body)
    assert state.active_tray == 128
    loaded = state.tray(128)
    assert loaded is not None
    assert (loaded.type, loaded.empty) == ("PA", False)
    # The packed reading is the top-level one, in whole degrees.
    assert state.temperatures.nozzle == round(body["nozzle_temper"])
    assert state.temperatures.nozzle_target == body["nozzle_target_temper"]


def test_p2s_printing_from_the_external_spool() -> None:
    model, published = make_model(P2S)
    model.start_print(layers=3)
    for _ in range(10):
        model.advance(1.0)
    state = typed(P2S, published.pushes()[-1])
    assert state.active_tray == 255
    assert state.tray(255) is state.external_spool
    assert state.temperatures.chamber is not None  # from device.ctc alone


@pytest.mark.parametrize("profile", [P2S, H2D], ids=lambda p: p.key)
def test_get_version_names_the_model_and_the_ams_kinds(profile: ModelProfile) -> None:
    model, published = make_model(profile)
    request(model, "info", "get_version")
    (reply,) = [m for m in published.replies() if "info" in m]
    modules = reply["info"]["module"]
    names = [m["name"] for m in modules]
    assert names[:2] == ["ota", "n3f/0"]
    assert ("n3s/128" in names) is profile.ams_ht
    info = info_from_version_reply(reply["info"], profile.default_serial())
    assert info.model == profile.product_name.removeprefix("Bambu Lab ")
    assert info.firmware == profile.firmware
