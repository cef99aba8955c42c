"""Full reports keep one copy of the short strings every printer repeats."""

from __future__ import annotations

import copy

import orjson
import pytest

from bambu_lan.protocol import shared_values
from bambu_lan.protocol.merge import ENVELOPE_KEYS, apply_push
from bambu_lan.protocol.shared_values import share

REPORT = (
    b'{"command":"push_status","msg":0,"sequence_id":"7","gcode_state":"IDLE",'
    b'"nozzle_temper":25.0,"ams":{"ams":[{"id":"0","tray":[{"id":"0","tray_type":"PLA",'
    b'"tray_color":"F4EE2AFF"},{"id":"1","tray_type":"PLA","tray_color":"161616FF"}]}]},'
    b'"subtask_name":"' + b"a long job name that nobody else prints" * 2 + b'"}'
)


def strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return [value] if isinstance(value, str) else []


def test_two_printers_reports_share_their_short_strings() -> None:
    first, second = orjson.loads(REPORT), orjson.loads(REPORT)
    assert strings(first)[0] is not strings(second)[0]  # orjson makes new objects each time
    kept_first, kept_second = share(first, ENVELOPE_KEYS), share(second, ENVELOPE_KEYS)
    assert kept_first == {k: v for k, v in first.items() if k not in ENVELOPE_KEYS}
    pairs = list(zip(strings(kept_first), strings(kept_second), strict=True))
    short = [(a, b) for a, b in pairs if len(a) <= shared_values.MAX_LENGTH]
    assert short and all(a is b for a, b in short)
    assert any(len(a) > shared_values.MAX_LENGTH for a, _ in pairs)  # left as they are


def test_the_input_is_not_changed_and_full_reports_go_through_it() -> None:
    report = orjson.loads(REPORT)
    before = copy.deepcopy(report)
    state, full = apply_push({}, report)
    assert full and report == before
    assert state == {k: v for k, v in before.items() if k not in ENVELOPE_KEYS}
    again, _ = apply_push(state, orjson.loads(REPORT))
    assert (
        again["ams"]["ams"][0]["tray"][0]["tray_type"]
        is state["ams"]["ams"][0]["tray"][0]["tray_type"]
    )


def test_the_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_values, "MAX_ENTRIES", 10)
    monkeypatch.setattr(shared_values, "_table", {})
    for n in range(100):
        share({"name": f"job {n}"})
        assert len(shared_values._table) <= 11
