"""``bambu-lan doctor`` in-process against a simulator on its own thread: JSON that parses,
no access code anywhere, exit code 0 only when healthy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bambu_lan.cli.main import cli
from bambu_lan.sim import SimThread, SimulatedPrinter

SimOnThread = SimThread[SimulatedPrinter]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str | None]:
    """An environment with no BAMBU_* settings of the machine running the tests."""
    return {
        "BAMBU_CONFIG": str(tmp_path / "config.toml"),
        "BAMBU_KNOWN_PRINTERS": str(tmp_path / "known_printers"),
        "BAMBU_HOST": None,
        "BAMBU_SERIAL": None,
        "BAMBU_ACCESS_CODE": None,
        "BAMBU_PORT": None,
        "BAMBU_PRINTER": None,
        "BAMBU_CA_FILE": None,
        "BAMBU_CA_DIR": None,
    }


def _doctor(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(cli, ["doctor", "--timeout", "3", *args], env=env)


def _target(sim: SimulatedPrinter, **changes: str) -> list[str]:
    options = {
        "--host": sim.host,
        "--port": str(sim.port),
        "--serial": sim.serial,
        "--access-code": sim.access_code,
        "--ca-file": str(sim.ca_path),
    }
    options.update(changes)
    return [part for pair in options.items() for part in pair]


def _json(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _assert_no_code(result: Result, code: str) -> None:
    assert code not in result.stdout
    assert code not in result.stderr


def test_healthy_json(sim_thread: SimOnThread, env: dict[str, str | None]) -> None:
    sim = sim_thread.target

    result = _doctor(env, *_target(sim), "--json")

    assert result.exit_code == 0, result.output
    data = _json(result)
    assert data["ok"] is True
    assert data["cause"] is None
    assert {s["status"] for s in data["steps"]} == {"pass"}
    assert data["target"]["access_code"] == "********"
    assert "-P '********'" in data["mosquitto_sub"]
    _assert_no_code(result, sim.access_code)


def test_wrong_access_code_json(sim_thread: SimOnThread, env: dict[str, str | None]) -> None:
    sim = sim_thread.target
    wrong = "24681357" if sim.access_code != "24681357" else "13572468"

    result = _doctor(env, *_target(sim, **{"--access-code": wrong}), "--json")

    assert result.exit_code == 1
    data = _json(result)
    assert data["ok"] is False
    assert data["cause"] == "wrong_access_code"
    assert [s["cause"] for s in data["steps"] if s["status"] == "fail"] == ["wrong_access_code"]
    _assert_no_code(result, wrong)
    _assert_no_code(result, sim.access_code)


def test_invalid_input_is_diagnosed_not_refused(
    sim_thread: SimOnThread, env: dict[str, str | None]
) -> None:
    sim = sim_thread.target

    result = _doctor(env, *_target(sim, **{"--serial": sim.serial.lower()}), "--json")

    assert result.exit_code == 1
    data = _json(result)
    assert data["cause"] == "serial_invalid"
    assert data["steps"][0]["id"] == "input.host"


def test_settings_from_the_environment_and_the_table(
    sim_thread: SimOnThread, env: dict[str, str | None]
) -> None:
    sim = sim_thread.target
    env |= {
        "BAMBU_HOST": sim.host,
        "BAMBU_SERIAL": sim.serial,
        "BAMBU_ACCESS_CODE": sim.access_code,
    }

    result = _doctor(env, "--port", str(sim.port), "--ca-file", str(sim.ca_path))

    assert result.exit_code == 0, result.output
    assert "OK: " in result.stdout
    assert "Printer address" in result.stdout
    assert "mosquitto_sub" in result.stdout
    _assert_no_code(result, sim.access_code)


def test_a_failure_in_the_table(sim_thread: SimOnThread, env: dict[str, str | None]) -> None:
    sim = sim_thread.target
    sim_thread.call(sim.boot_window, 60)

    result = _doctor(env, *_target(sim))

    assert result.exit_code == 1
    assert "FAIL: Printer still starting up" in result.stdout
    assert "Fix: " in result.stdout
    _assert_no_code(result, sim.access_code)


def test_bare_ports_option_checks_ftps_and_camera(
    sim_thread: SimOnThread, env: dict[str, str | None]
) -> None:
    result = _doctor(env, *_target(sim_thread.target), "--ports", "--json")

    data = _json(result)
    ids = [s["id"] for s in data["steps"]]
    assert "net.port_990" in ids
    assert "net.port_6000" in ids
    assert result.exit_code == (0 if data["ok"] else 1)


def test_a_bad_ports_list_is_a_usage_error(
    sim_thread: SimOnThread, env: dict[str, str | None]
) -> None:
    result = _doctor(env, *_target(sim_thread.target), "--ports", "990,ftp")

    assert result.exit_code == 2
    assert "not a port number" in result.output


def test_an_unknown_profile(env: dict[str, str | None], tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[printers.workshop]\nhost = "192.168.1.50"\n', encoding="utf-8")

    result = _doctor(env, "--printer", "garage", "--json")

    assert result.exit_code == 1
    data = _json(result)
    assert data["cause"] == "config_invalid"
    assert "workshop" in data["fix"]


def test_an_invalid_serial_in_a_profile_is_diagnosed(
    sim_thread: SimOnThread, env: dict[str, str | None], tmp_path: Path
) -> None:
    sim = sim_thread.target
    (tmp_path / "config.toml").write_text(
        "[printers.workshop]\n"
        f'host = "{sim.host}"\nport = {sim.port}\nserial = "{sim.serial.lower()}"\n'
        f'access_code = "{sim.access_code}"\nca_file = "{sim.ca_path}"\n',
        encoding="utf-8",
    )

    result = _doctor(env, "--printer", "workshop", "--json")

    assert result.exit_code == 1
    data = _json(result)
    assert data["cause"] == "serial_invalid"
    target = data["target"]
    assert (target["name"], target["host"], target["port"]) == ("workshop", sim.host, sim.port)
    _assert_no_code(result, sim.access_code)


def test_the_doctor_imports_no_simulator() -> None:
    # A diagnosis of a real printer must not depend on (or load) the fake one.
    code = (
        "import sys, bambu_lan.doctor; "
        "print(sorted(m for m in sys.modules if m.startswith('bambu_lan.sim')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
