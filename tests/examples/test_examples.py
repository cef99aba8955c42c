"""The two example scripts, run as a user would (subprocesses) against a simulated A1 that runs
in a background thread."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bambu_lan.sim import SimThread, SimulatedPrinter

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str, sim: SimulatedPrinter, *args: str) -> list[str]:
    return [
        sys.executable, str(EXAMPLES / name),
        "--host", sim.host, "--port", str(sim.port),
        "--serial", sim.serial, "--access-code", sim.access_code,
        *args,
    ]  # fmt: skip


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONUNBUFFERED": "1", **_env()}
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60, env=env)


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("BAMBU_")}


# --- a1_minimal.py: plain paho-mqtt ---------------------------------------------------------


def test_minimal_prints_reports_with_the_ca(sim_thread: SimThread[SimulatedPrinter]) -> None:
    sim = sim_thread.target
    result = run(example("a1_minimal.py", sim, "--ca-file", str(sim.ca_path), "--count", "3"))

    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(reports) == 3
    assert reports[0]["print"]["msg"] == 0  # the pushall answer: a full report
    assert "gcode_state" in reports[0]["print"]
    assert result.stderr == ""


def test_minimal_without_a_ca_warns(sim_thread: SimThread[SimulatedPrinter]) -> None:
    result = run(example("a1_minimal.py", sim_thread.target, "--count", "1"))

    assert result.returncode == 0, result.stderr
    assert "NOT verified" in result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_minimal_refuses_a_certificate_for_another_serial(
    sim_thread: SimThread[SimulatedPrinter],
) -> None:
    sim = sim_thread.target
    argv = example("a1_minimal.py", sim, "--ca-file", str(sim.ca_path), "--count", "1")
    argv[argv.index(sim.serial)] = "03919A3B1200123"

    result = run(argv)

    assert result.returncode == 1
    assert "not '03919A3B1200123'" in result.stderr
    assert sim.access_code not in result.stderr


def test_minimal_reports_a_wrong_access_code(sim_thread: SimThread[SimulatedPrinter]) -> None:
    sim = sim_thread.target
    argv = example("a1_minimal.py", sim, "--ca-file", str(sim.ca_path), "--count", "1")
    argv[argv.index(sim.access_code)] = "87654321"

    result = run(argv)

    assert result.returncode == 1
    assert "connection refused: Not authorized" in result.stderr


def test_minimal_follows_the_a1_rules(sim_thread: SimThread[SimulatedPrinter]) -> None:
    """The strict broker closes clients that break a rule; the script gets its reports, and
    the session ends with a DISCONNECT."""
    sim = sim_thread.target
    result = run(example("a1_minimal.py", sim, "--ca-file", str(sim.ca_path), "--count", "2"))

    assert result.returncode == 0, result.stderr
    sim_thread.run(sim.broker.wait_for_sessions(0))
    closes = sim_thread.call(lambda: dict(sim.broker.closes))
    assert set(closes) <= {"disconnect"}, closes


# --- a1_full.py: the library's blocking API -------------------------------------------------


def test_full_prints_state_and_disconnects_cleanly(
    sim_thread: SimThread[SimulatedPrinter],
) -> None:
    sim = sim_thread.target
    result = run(example("a1_full.py", sim, "--ca-file", str(sim.ca_path), "--seconds", "0.5"))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"connected to A1 {sim.serial}, firmware ")
    assert lines[1].startswith("IDLE | nozzle ")
    assert lines[-1] == "disconnected cleanly"
    assert sim.access_code not in result.stdout + result.stderr


def test_full_with_a_ca_dir_shows_a_print_and_a_reconnect(
    sim_thread: SimThread[SimulatedPrinter],
) -> None:
    sim = sim_thread.target
    argv = example("a1_full.py", sim, "--ca-dir", str(sim.ca_path.parent), "--seconds", "60")
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("connected to A1")
        assert process.stdout.readline().startswith("IDLE")
        sim_thread.call(lambda: sim.model.start_print(layers=500, name="vase"))
        lines = []
        while not any(line.startswith("PREPARE") for line in lines):
            lines.append(process.stdout.readline())
        assert "event: vase started\n" in lines

        sim_thread.call(sim.drop_connections)
        while (line := process.stdout.readline()) != "reconnected (1 so far)\n":
            assert line, "the script ended before reconnecting"
            lines.append(line)
        assert any(line.startswith("event: disconnected from") for line in lines)
        process.send_signal(2)  # Ctrl-C
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.splitlines()[-1] == "disconnected cleanly"


def test_full_reports_a_wrong_access_code(sim_thread: SimThread[SimulatedPrinter]) -> None:
    sim = sim_thread.target
    argv = example("a1_full.py", sim, "--ca-file", str(sim.ca_path), "--seconds", "1")
    argv[argv.index(sim.access_code)] = "87654321"

    result = run(argv)

    assert result.returncode == 2
    assert result.stderr.startswith("error: the printer refused the access code")
    assert "hint: " in result.stderr


@pytest.mark.parametrize("name", ["a1_minimal.py", "a1_full.py"])
def test_examples_have_help(name: str) -> None:
    result = run([sys.executable, str(EXAMPLES / name), "--help"])

    assert result.returncode == 0
    for option in ("--host", "--serial", "--access-code", "--ca-file"):
        assert option in result.stdout
