"""apply_push / deep_merge: copy-on-write deep merge, lists replaced, full reports replace
(protocol.md §3.5)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bambu_lan.protocol.merge import ENVELOPE_KEYS, apply_push, deep_merge, is_full_report


def delta(**fields: Any) -> dict[str, Any]:
    return {**fields, "command": "push_status", "msg": 1, "sequence_id": "7"}


BASE: dict[str, Any] = {
    "gcode_state": "RUNNING",
    "nozzle_temper": 200.0,
    "bed_temper": 60.0,
    "hms": [{"attr": 1, "code": 2}, {"attr": 3, "code": 4}],
    "stg": [2, 14, 13],
    "lights_report": [
        {"node": "chamber_light", "mode": "on"},
        {"node": "work_light", "mode": "on"},
    ],
    "ams": {
        "ams": [{"id": "0", "tray": [{"id": "0"}, {"id": "1"}]}, {"id": "1", "tray": []}],
        "tray_now": "1",
        "tray_tar": "1",
    },
    "ipcam": {"ipcam_dev": "1", "resolution": "1080p"},
    "upgrade_state": {"status": "IDLE", "new_ver_list": [{"name": "ota"}]},
}


def test_scalar_delta_replaces_only_its_keys() -> None:
    merged, full = apply_push(BASE, delta(nozzle_temper=201.5, wifi_signal="-51dBm"))
    assert not full
    assert merged["nozzle_temper"] == 201.5
    assert merged["wifi_signal"] == "-51dBm"
    assert {k: v for k, v in merged.items() if k not in ("nozzle_temper", "wifi_signal")} == {
        k: v for k, v in BASE.items() if k != "nozzle_temper"
    }


def test_nested_dicts_are_merged_deeply() -> None:
    merged, _ = apply_push(
        BASE, delta(ipcam={"resolution": "720p"}, upgrade_state={"status": "DOWNLOADING"})
    )
    assert merged["ipcam"] == {"ipcam_dev": "1", "resolution": "720p"}
    assert merged["upgrade_state"] == {"status": "DOWNLOADING", "new_ver_list": [{"name": "ota"}]}


def test_partial_ams_block_keeps_the_units() -> None:
    merged, _ = apply_push(BASE, delta(ams={"tray_now": "255"}))
    assert merged["ams"]["tray_now"] == "255"
    assert merged["ams"]["tray_tar"] == "1"
    assert merged["ams"]["ams"] == BASE["ams"]["ams"]


@pytest.mark.parametrize(
    ("key", "new"),
    [
        ("hms", []),
        ("hms", [{"attr": 9, "code": 9}]),
        ("stg", [1]),
        ("lights_report", [{"node": "chamber_light", "mode": "off"}]),
    ],
)
def test_top_level_lists_are_replaced_whole(key: str, new: list[Any]) -> None:
    merged, _ = apply_push(BASE, delta(**{key: new}))
    assert merged[key] == new


def test_ams_unit_list_is_replaced_not_merged_by_index() -> None:
    # One unit left: the second one is gone, and the remaining one has no trays left over.
    merged, _ = apply_push(BASE, delta(ams={"ams": [{"id": "0", "tray": [{"id": "0"}]}]}))
    assert merged["ams"]["ams"] == [{"id": "0", "tray": [{"id": "0"}]}]
    assert merged["ams"]["tray_now"] == "1"


def test_dict_replaces_a_scalar_and_a_scalar_replaces_a_dict() -> None:
    merged, _ = apply_push({"a": 1, "b": {"x": 1}}, delta(a={"y": 2}, b=3))
    assert merged == {"a": {"y": 2}, "b": 3}


def test_msg0_full_report_replaces_everything() -> None:
    full_body = {"gcode_state": "IDLE", "nozzle_temper": 25.0, "ams": {"ams": []}}
    merged, full = apply_push(BASE, {**full_body, "command": "push_status", "msg": 0})
    assert full
    assert merged == full_body
    # Keys absent from the full report disappear, nested ones too.
    assert "hms" not in merged
    assert "tray_now" not in merged["ams"]


def test_x1_full_report_without_msg_replaces_everything() -> None:
    x1 = {"gcode_state": "RUNNING", "nozzle_temper": 220.0, "bed_temper": 55.0}
    merged, full = apply_push(BASE, {**x1, "command": "push_status", "sequence_id": "9"})
    assert full
    assert merged == x1


def test_is_full_report() -> None:
    assert is_full_report({"msg": 0})
    assert not is_full_report({"msg": 1, "gcode_state": "IDLE", "nozzle_temper": 1})
    assert is_full_report({"gcode_state": "IDLE", "nozzle_temper": 1})
    # An X1-less delta without msg that lacks the core fields is not a full report.
    assert not is_full_report({"nozzle_temper": 1})
    assert not is_full_report({"gcode_state": "IDLE"})


def test_envelope_keys_are_dropped() -> None:
    merged, _ = apply_push({}, delta(bed_temper=1.0))
    assert merged == {"bed_temper": 1.0}
    merged, _ = apply_push(
        {}, {"gcode_state": "IDLE", "nozzle_temper": 1, "msg": 0, "command": "x"}
    )
    assert ENVELOPE_KEYS.isdisjoint(merged)


def test_inputs_are_never_mutated_and_old_snapshots_stay_valid() -> None:
    base = copy.deepcopy(BASE)
    push = delta(
        nozzle_temper=1.0,
        ams={"tray_now": "0", "ams": [{"id": "0"}]},
        ipcam={"resolution": "720p"},
        hms=[],
    )
    push_copy = copy.deepcopy(push)
    merged, _ = apply_push(base, push)
    assert base == BASE
    assert push == push_copy
    # Merging again on top of the result does not reach back into either input.
    merged2, _ = apply_push(merged, delta(ams={"tray_now": "5"}, ipcam={"ipcam_dev": "0"}))
    assert base == BASE
    assert push == push_copy
    assert merged["ams"]["tray_now"] == "0"
    assert merged2["ams"]["tray_now"] == "5"
    assert merged["ipcam"] == {"ipcam_dev": "1", "resolution": "720p"}


def test_untouched_subtrees_are_shared_not_copied() -> None:
    merged, _ = apply_push(BASE, delta(nozzle_temper=1.0))
    assert merged is not BASE
    assert merged["ams"] is BASE["ams"]
    assert merged["hms"] is BASE["hms"]
    merged2, _ = apply_push(BASE, delta(ams={"tray_now": "0"}))
    assert merged2["ams"] is not BASE["ams"]
    assert merged2["ams"]["ams"] is BASE["ams"]["ams"]


def test_full_report_does_not_alias_the_envelope_dict() -> None:
    push = {"gcode_state": "IDLE", "nozzle_temper": 1, "msg": 0}
    merged, _ = apply_push({}, push)
    merged2, _ = apply_push(merged, delta(nozzle_temper=2))
    assert push == {"gcode_state": "IDLE", "nozzle_temper": 1, "msg": 0}
    assert merged == {"gcode_state": "IDLE", "nozzle_temper": 1}
    assert merged2["nozzle_temper"] == 2


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-100, 100) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner),
    max_leaves=8,
)
_objects = st.dictionaries(st.sampled_from("abcde"), _json, max_size=5)


def _reference_merge(base: Any, new: Any) -> Any:
    if isinstance(base, dict) and isinstance(new, dict):
        out = copy.deepcopy(base)
        for key, value in new.items():
            out[key] = _reference_merge(out.get(key), value)
        return out
    return copy.deepcopy(new)


@settings(max_examples=300, deadline=None)
@given(_objects, _objects)
def test_deep_merge_matches_a_reference_and_mutates_nothing(
    base: dict[str, Any], new: dict[str, Any]
) -> None:
    base_copy, new_copy = copy.deepcopy(base), copy.deepcopy(new)
    assert deep_merge(base, new) == _reference_merge(base, new)
    assert base == base_copy
    assert new == new_copy
