"""Fixtures for the protocol tests: the real A1 report (kept outside the repository)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

#: The real A1 pushall + get_version replies live next to the repository, never inside it.
REFERENCE_PATH = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "reference"
    / "a1_pushall_and_version.json"
)

#: An A1 serial number: prefix 039 (protocol.md §11).
A1_SERIAL = "03919A3B1200123"


@pytest.fixture(scope="session")
def a1_reference() -> dict[str, Any]:
    if not REFERENCE_PATH.is_file():
        pytest.skip(
            f"the real A1 reference report is not at {REFERENCE_PATH} "
            "(it is kept outside the repository and not copied into it)"
        )
    data: dict[str, Any] = json.loads(REFERENCE_PATH.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def a1_full(a1_reference: dict[str, Any]) -> dict[str, Any]:
    """The A1 pushall ``print`` object (msg:0), a fresh copy per test."""
    body: dict[str, Any] = copy.deepcopy(a1_reference["pushall"]["print"])
    return body


@pytest.fixture
def a1_version(a1_reference: dict[str, Any]) -> dict[str, Any]:
    """The A1 get_version ``info`` object."""
    body: dict[str, Any] = copy.deepcopy(a1_reference["get_version"]["info"])
    return body
