"""Fixtures of the command-line tests: the CLI run in-process against a simulated printer.

``cli`` calls ``bambu_lan.cli.main.main`` exactly as the console script does (so the error
handling under test is the real one: ``error:`` + ``hint:``, exit code 2) and captures what
it printed. Every test gets its own config file, pin file and BAMBU_* environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bambu_lan.cli.main import main
from bambu_lan.sim import SimThread, SimulatedPrinter

#: Every variable bambu-lan reads. ``isolated_env`` clears these and any other BAMBU_* the
#: shell has, so that the developer's environment can never change a test.
ENV_VARS = (
    "BAMBU_HOST",
    "BAMBU_SERIAL",
    "BAMBU_ACCESS_CODE",
    "BAMBU_ACCESS_CODE_FILE",
    "BAMBU_PORT",
    "BAMBU_FTPS_PORT",
    "BAMBU_CAMERA_PORT",
    "BAMBU_CA_FILE",
    "BAMBU_CA_DIR",
    "BAMBU_PRINTER",
    "BAMBU_CONFIG",
    "BAMBU_KNOWN_PRINTERS",
    "BAMBU_WEB_TOKEN",
)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def json(self) -> Any:
        return json.loads(self.out)

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines if line.strip()]


Cli = Callable[..., Result]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No BAMBU_* from the developer's shell; config and pin files in a temp dir."""
    for name in {*ENV_VARS, *(name for name in os.environ if name.startswith("BAMBU_"))}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("BAMBU_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("BAMBU_KNOWN_PRINTERS", str(tmp_path / "known_printers"))
    return tmp_path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("status", "--json")`` → Result(code, out, err), via the real entry point."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        try:
            returned = main(list(args))
            code = returned if isinstance(returned, int) else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


@pytest.fixture
def printer_env(
    sim_thread: SimThread[SimulatedPrinter], monkeypatch: pytest.MonkeyPatch
) -> SimulatedPrinter:
    """The simulated A1 of ``sim_thread``, named by BAMBU_* variables (its CA trusted)."""
    sim = sim_thread.target
    monkeypatch.setenv("BAMBU_HOST", sim.host)
    monkeypatch.setenv("BAMBU_PORT", str(sim.port))
    monkeypatch.setenv("BAMBU_SERIAL", sim.serial)
    monkeypatch.setenv("BAMBU_ACCESS_CODE", sim.access_code)
    monkeypatch.setenv("BAMBU_CA_FILE", str(sim.ca_path))
    return sim


@pytest.fixture
def no_secret(printer_env: SimulatedPrinter) -> Callable[[Result], None]:
    """``no_secret(result)`` asserts the access code appears in neither stdout nor stderr."""

    def check(result: Result) -> None:
        assert printer_env.access_code not in result.out
        assert printer_env.access_code not in result.err

    return check


@pytest.fixture
def cli_subprocess_env(printer_env: SimulatedPrinter) -> dict[str, str]:
    """The environment for running the CLI as a real process against ``printer_env``."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}
