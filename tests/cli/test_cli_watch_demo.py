"""``bambu-lan watch`` (live: JSON lines, plain lines) and ``bambu-lan demo``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from tests.cli.conftest import Cli, Result

from bambu_lan.sim import SimThread, SimulatedPrinter

CLI = [sys.executable, "-c", "from bambu_lan.cli.main import main; main()"]


def start_quick_print(sim_thread: SimThread[SimulatedPrinter], layers: int = 200) -> None:
    """A print with no calibration stages and short layers: layer events come quickly."""
    sim = sim_thread.target
    sim_thread.call(
        lambda: sim.model.start_print(
            layers=layers,
            layer_seconds=1.0,
            prepare_seconds=0.0,
            stage_seconds=0.0,
            bed_leveling=False,
            flow_cali=False,
        )
    )


def test_watch_json_yields_state_and_event_lines(
    cli: Cli,
    sim_thread: SimThread[SimulatedPrinter],
    printer_env: SimulatedPrinter,
    no_secret: Callable[[Result], None],
) -> None:
    start_quick_print(sim_thread)

    result = cli("watch", "--json", "--max-events", "3", "--interval", "0.2")

    assert result.code == 0, result.err
    lines = result.json_lines()
    kinds = [line["type"] for line in lines]
    assert kinds.count("event") == 3
    # One stream, in order: the connection, the first full state with the job found there.
    assert lines[0]["type"] == "event" and lines[0]["event"] == "connected"
    state = next(line for line in lines if line["type"] == "state")
    assert state["serial"] == printer_env.serial
    assert state["job"]["state"] in ("PREPARE", "RUNNING")
    assert "gcode_state" in state["raw"]
    assert state["connection"]["state"] == "connected"
    found = [line for line in lines if line["type"] == "event"][1]
    assert found["event"] == "job_started" and found["present_at_connect"] is True
    assert found["serial"] == printer_env.serial
    assert found["message"]
    no_secret(result)


def test_watch_plain_lines_until_the_duration_ends(
    cli: Cli, printer_env: SimulatedPrinter, no_secret: Callable[[Result], None]
) -> None:
    # Long enough to connect on a loaded machine (the lines below need the connection).
    result = cli("watch", "--duration", "8")

    assert result.code == 0, result.err
    assert result.lines
    assert all(printer_env.serial in line for line in result.lines)
    assert "connecting, waiting for the first report" in result.lines[0]
    assert any("event connected" in line for line in result.lines)
    assert any("IDLE" in line for line in result.lines)
    no_secret(result)


@contextmanager
def watching(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [*CLI, "watch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=120)


def read_json(stream: IO[str] | None) -> dict[str, Any]:
    assert stream is not None
    line = stream.readline()
    assert line, "the watch ended early"
    data: dict[str, Any] = json.loads(line)
    return data


def test_watch_survives_a_dropped_connection(
    sim_thread: SimThread[SimulatedPrinter],
    printer_env: SimulatedPrinter,
    cli_subprocess_env: dict[str, str],
) -> None:
    env = {**cli_subprocess_env}
    with watching(env, "--json", "--interval", "0.2") as process:
        while read_json(process.stdout)["type"] != "state":
            pass

        assert sim_thread.call(printer_env.drop_connections) == 1

        seen: list[str] = []
        while "reconnected" not in seen:
            line = read_json(process.stdout)
            if line["type"] == "event":
                seen.append(line["event"])
        assert seen[0] == "disconnected"
        # Back to normal: later state lines show a live connection again.
        while True:
            line = read_json(process.stdout)
            if line["type"] == "state" and line["connection"]["state"] == "connected":
                break
        assert line["connection"]["connects"] == 2

        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err  # interrupted, as a shell expects
    assert "Traceback" not in err
    assert printer_env.access_code not in err


def test_watch_ends_cleanly_on_sigterm(
    sim_thread: SimThread[SimulatedPrinter],
    printer_env: SimulatedPrinter,
    cli_subprocess_env: dict[str, str],
) -> None:
    with watching(cli_subprocess_env, "--plain") as process:
        assert process.stdout is not None
        assert printer_env.serial in process.stdout.readline()

        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=120)
        sim_thread.run(printer_env.broker.wait_for_sessions(0))

    assert process.returncode == 143, err
    assert "Traceback" not in err


def test_demo_runs_a_print_to_the_end(cli: Cli) -> None:
    result = cli("demo", "--duration", "2", "--layers", "4")

    assert result.code == 0, result.err
    assert "job_started" in result.out
    # A starved loop may let the simulator pass a layer between two reports: the last layer
    # shows in the final state, not necessarily as an event of its own.
    assert "layer_changed: layer " in result.out
    assert "FINISH 'bambu-lan demo' 100% layer 4/4" in result.out
    assert result.lines[-1] == "demo over: bambu-lan demo finished"
    assert "Traceback" not in result.err


def test_demo_ends_cleanly_on_ctrl_c(cli_subprocess_env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [*CLI, "demo", "--duration", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_subprocess_env,
    )
    try:
        assert process.stdout is not None
        while "IDLE" not in process.stdout.readline():
            pass
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "Traceback" not in err
