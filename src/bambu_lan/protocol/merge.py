"""Merging partial reports into one object (protocol.md §3.5).

A1/P1 printers send deltas (``msg: 1``) holding only the changed keys; ``msg: 0`` is the full
object (a resync point for every client on the topic); X1-class printers send the full object
without ``msg``. Dicts are deep-merged, lists replaced whole.

Merging never mutates its inputs: changed paths are copied, unchanged subtrees shared. Old
snapshots stay valid and a delta costs about the size of the top level, not of the report.
"""

from __future__ import annotations

from typing import Any

from bambu_lan.protocol.shared_values import share

# Keys of the push_status envelope, not printer state.
ENVELOPE_KEYS = frozenset({"command", "msg", "sequence_id"})


def is_full_report(print_obj: dict[str, Any]) -> bool:
    """True when ``print_obj`` (a push_status) replaces the state rather than patching it."""
    msg = print_obj.get("msg")
    return msg == 0 or (msg is None and "gcode_state" in print_obj and "nozzle_temper" in print_obj)


def deep_merge(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``delta`` applied: dicts merged recursively, everything else replaced."""
    merged = dict(base)
    for key, value in delta.items():
        if isinstance(value, dict):
            old = merged.get(key)
            merged[key] = deep_merge(old, value) if isinstance(old, dict) else value
        else:
            merged[key] = value
    return merged


def apply_push(state: dict[str, Any], print_obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Apply one push_status ``print`` object; returns (new state, whether it was a full report).

    Envelope keys are dropped, so the state holds printer data only.
    """
    msg = print_obj.get("msg")
    if msg == 0 or (msg is None and "gcode_state" in print_obj and "nozzle_temper" in print_obj):
        # is_full_report(print_obj), inlined: this runs for every report. A full report is
        # kept for long (in a farm, one per printer): its short strings are shared.
        return share(print_obj, ENVELOPE_KEYS), True
    # deep_merge(state, body) in one pass, without building the body first (the hot path).
    merged = state.copy()
    envelope = ENVELOPE_KEYS
    for key, value in print_obj.items():
        if type(value) is dict:
            old = merged.get(key)
            merged[key] = deep_merge(old, value) if isinstance(old, dict) else value
        elif key not in envelope:
            merged[key] = value
    return merged, False
