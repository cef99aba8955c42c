"""The storage tests share the CLI tests' fixtures (in-process CLI, isolated environment)."""

from __future__ import annotations

import pytest
from tests.cli.conftest import cli, isolated_env, no_secret, printer_env

from bambu_lan.sim import SimThread, SimulatedPrinter

__all__ = ["cli", "isolated_env", "no_secret", "printer_env", "storage_env"]


@pytest.fixture
def storage_env(
    sim_thread: SimThread[SimulatedPrinter],
    printer_env: SimulatedPrinter,
    monkeypatch: pytest.MonkeyPatch,
) -> SimulatedPrinter:
    """``printer_env`` plus BAMBU_FTPS_PORT: the simulated A1's storage, named by variables."""
    assert printer_env.ftps is not None
    monkeypatch.setenv("BAMBU_FTPS_PORT", str(printer_env.ftps.port))
    return printer_env
