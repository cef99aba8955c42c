"""Helpers for the printer-model tests: capture what a model publishes, compare JSON shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from bambu_lan.sim.printer import PrinterModel
from bambu_lan.sim.profiles import A1, ModelProfile

# The real A1 report lives next to the repository, never inside it.
REFERENCE_PATH = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "reference"
    / "a1_pushall_and_version.json"
)

PUSH_TAIL = ["command", "msg", "sequence_id"]


def load_reference() -> dict[str, Any]:
    """The real A1 pushall + get_version replies; skips the test when the file is absent."""
    if not REFERENCE_PATH.is_file():
        pytest.skip(
            f"real A1 reference report not found at {REFERENCE_PATH} (kept outside the repo)"
        )
    reference: dict[str, Any] = json.loads(REFERENCE_PATH.read_text())
    return reference


class Capture:
    """Collects every payload a model publishes, decoded."""

    def __init__(self, model: PrinterModel) -> None:
        self.raw: list[bytes] = []
        model.publish = self.raw.append

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [orjson.loads(payload) for payload in self.raw]

    def pushes(self) -> list[dict[str, Any]]:
        """The ``print`` bodies of push_status messages, in order."""
        return [
            m["print"]
            for m in self.messages
            if "print" in m and m["print"].get("command") == "push_status"
        ]

    def deltas(self) -> list[dict[str, Any]]:
        return [p for p in self.pushes() if p.get("msg") == 1]

    def replies(self) -> list[dict[str, Any]]:
        """Everything that is not a push_status: command replies, whole message."""
        return [
            m
            for m in self.messages
            if not ("print" in m and m["print"].get("command") == "push_status")
        ]

    def clear(self) -> None:
        self.raw.clear()


def make_model(
    profile: ModelProfile = A1,
    *,
    dev_mode: bool = True,
    time_scale: float = 1.0,
    seed: int | None = 7,
) -> tuple[PrinterModel, Capture]:
    model = PrinterModel(
        profile, profile.default_serial(), dev_mode=dev_mode, time_scale=time_scale, seed=seed
    )
    return model, Capture(model)


def request(model: PrinterModel, klass: str, command: str, **fields: Any) -> None:
    """Publish one command to the model the way a client would."""
    body = {"sequence_id": "5001", "command": command, **fields}
    model.handle_request(orjson.dumps({klass: body}))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", dict: "object"}[type(value)]


def shape_mismatches(
    expected: Any, actual: Any, path: str = "", *, numbers: frozenset[str] = frozenset()
) -> list[str]:
    """Every place where ``actual`` lacks a key of ``expected`` or has another JSON type,
    recursively. List elements are compared with the reference's element at the same index
    (or its last one). Paths in ``numbers`` may be int or float."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: object expected, got {json_type(actual)}"]
        problems: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += shape_mismatches(value, actual[key], f"{path}.{key}", numbers=numbers)
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: list expected, got {json_type(actual)}"]
        problems = []
        if expected:
            for index, item in enumerate(actual):
                model_item = expected[min(index, len(expected) - 1)]
                problems += shape_mismatches(model_item, item, f"{path}[{index}]", numbers=numbers)
        return problems
    if path in numbers and {json_type(expected), json_type(actual)} <= {"int", "float"}:
        return []
    if json_type(expected) != json_type(actual):
        return [f"{path}: {json_type(expected)} expected, got {json_type(actual)} ({actual!r})"]
    return []


def extra_keys(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Keys ``actual`` has that ``expected`` lacks, recursively."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        extras = [f"{path}.{key}" for key in actual if key not in expected]
        for key in actual.keys() & expected.keys():
            extras += extra_keys(expected[key], actual[key], f"{path}.{key}")
        return extras
    if isinstance(expected, list) and isinstance(actual, list) and expected:
        extras = []
        for index, item in enumerate(actual):
            extras += extra_keys(expected[min(index, len(expected) - 1)], item, f"{path}[{index}]")
        return extras
    return []


def merge(state: dict[str, Any], delta: dict[str, Any]) -> None:
    """A client's merge of a delta: top-level keys replaced (nested objects come whole)."""
    for key, value in delta.items():
        state[key] = value


def advance_until(
    model: PrinterModel, condition: Any, *, step: float = 5.0, limit: int = 500
) -> None:
    """Tick the model by hand until ``condition(model)`` holds (deterministic, no loop)."""
    for _ in range(limit):
        if condition(model):
            return
        model.advance(step)
    raise AssertionError(f"condition not reached after {limit} ticks: {model.state_history}")
