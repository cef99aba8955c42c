"""Fixtures for the serve tests."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's config or writes the user's history."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("BAMBU_CONFIG", str(tmp_path / "no-config.toml"))
    for name in ("BAMBU_HOST", "BAMBU_SERIAL", "BAMBU_ACCESS_CODE", "BAMBU_PRINTER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def serve_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="bambu_lan.serve")
    return caplog
