"""The CLI against trouble: a busy or starting printer, Ctrl-C at any moment, a closed pipe.

Real processes against the simulator (or a plain TCP listener that never answers TLS).
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bambu_lan.sim import SimThread, SimulatedPrinter

CLI = [sys.executable, "-c", "from bambu_lan.cli.main import main; main()"]


class Watcher:
    """One ``bambu-lan watch --json`` process, its lines read on a thread."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [*CLI, "watch", "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def until(self, what: str, timeout: float = 30) -> dict[str, Any]:
        """The next line whose type ("state") or event name ("retrying") is ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"the watch ended: {self.stop()}"
            self.seen.append(line)
            if what in (line["type"], line.get("event")):
                return line

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        if self.alive():
            self.process.send_signal(sig)
        _out, err = self.process.communicate(timeout=30)
        return self.process.returncode, err


@contextmanager
def watchers(env: dict[str, str], count: int) -> Iterator[list[Watcher]]:
    started = [Watcher(env) for _ in range(count)]
    try:
        yield started
    finally:
        for watcher in started:
            if watcher.alive():
                watcher.process.kill()
            watcher.process.communicate(timeout=30)


def test_six_watchers_against_a_four_session_printer_all_survive(
    sim_thread: SimThread[SimulatedPrinter],
    printer_env: SimulatedPrinter,
    cli_subprocess_env: dict[str, str],
) -> None:
    assert printer_env.broker.rules.max_sessions == 4
    with watchers(cli_subprocess_env, 6) as six:
        # Four get a state; the other two are told why they wait, and keep waiting.
        outcome: dict[str, list[Watcher]] = {"state": [], "retrying": []}
        for watcher in six:
            outcome[_first_of(watcher)].append(watcher)
        assert len(outcome["state"]) == 4, [w.seen for w in six]
        assert len(outcome["retrying"]) == 2
        for waiting in outcome["retrying"]:
            notice = next(line for line in waiting.seen if line.get("event") == "retrying")
            assert "session limit" in notice["message"] and "retrying in" in notice["message"]
        # Two watchers end (Ctrl-C: DISCONNECT sent); the two waiting get their state.
        for leaving in outcome["state"][:2]:
            code, err = leaving.stop()
            assert code == 130 and "Traceback" not in err
        for waiting in outcome["retrying"]:
            assert waiting.until("state", timeout=60)["connection"]["state"] == "connected"
        assert all(w.alive() for w in outcome["state"][2:] + outcome["retrying"])
        for watcher in outcome["state"][2:] + outcome["retrying"]:
            code, err = watcher.stop()
            assert code == 130 and "Traceback" not in err, err


def _first_of(watcher: Watcher) -> str:
    """ "state" when the watcher got a state first, "retrying" when it was refused first."""
    while True:
        got = watcher.lines.get(timeout=60)
        assert got is not None, watcher.stop()
        watcher.seen.append(got)
        if got["type"] == "state":
            return "state"
        if got.get("event") == "retrying":
            return "retrying"


@pytest.mark.parametrize("command", ["watch", "status"])
def test_started_during_a_boot_window_they_wait_for_the_printer(
    sim_thread: SimThread[SimulatedPrinter],
    printer_env: SimulatedPrinter,
    cli_subprocess_env: dict[str, str],
    command: str,
) -> None:
    sim_thread.call(lambda: printer_env.boot_window(1.5))
    if command == "watch":
        watcher = Watcher(cli_subprocess_env)
        try:
            notice = watcher.until("retrying")
            assert "starting up" in notice["message"]
            assert watcher.until("state")["connection"]["state"] == "connected"
        finally:
            code, err = watcher.stop()
        assert code == 130, err
        return
    result = subprocess.run(
        [*CLI, "status", "--json", "--timeout", "30"],
        capture_output=True,
        text=True,
        env=cli_subprocess_env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["job"]["state"] == "IDLE"
    assert printer_env.broker.closes.get("boot_window", 0) >= 1  # it was refused at first


@pytest.fixture
def hung_tls(cli_subprocess_env: dict[str, str]) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    """A TCP port on 127.0.0.1 that accepts connections and never answers TLS."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(30)
        env = {**cli_subprocess_env, "BAMBU_PORT": str(server.getsockname()[1])}
        yield server, env


@pytest.mark.parametrize("command", ["watch", "status"])
def test_ctrl_c_during_a_hung_tls_handshake_ends_at_once(
    hung_tls: tuple[socket.socket, dict[str, str]], command: str
) -> None:
    server, env = hung_tls
    process = subprocess.Popen(
        [*CLI, command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(30)
            assert conn.recv(5)[:1] == b"\x16"  # the ClientHello: the handshake is under way
            started = time.monotonic()
            process.send_signal(signal.SIGINT)
            _out, err = process.communicate(timeout=30)
            took = time.monotonic() - started
            # The socket was closed (EOF or reset), not left to the printer to time out.
            conn.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                while conn.recv(4096):  # the rest of the ClientHello, then EOF
                    pass
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "timed out" not in err
    # Budget 0.5 s; the bound here is loose for a loaded CI machine, far below the 10 s
    # connect timeout that used to hold Ctrl-C up.
    assert took < 3.0, took


def test_watch_json_into_a_closed_pipe_ends_quietly(
    sim_thread: SimThread[SimulatedPrinter],
    printer_env: SimulatedPrinter,
    cli_subprocess_env: dict[str, str],
) -> None:
    command = " ".join(CLI[:2]) + ' "' + CLI[2] + '" watch --json | head -1'
    result = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        env={**cli_subprocess_env, "PYTHONUNBUFFERED": "1"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert json.loads(result.stdout)["type"] == "event"
    assert result.stderr == ""


def test_watch_with_a_wrong_access_code_fails_at_once(
    printer_env: SimulatedPrinter, cli_subprocess_env: dict[str, str]
) -> None:
    env = {**cli_subprocess_env, "BAMBU_ACCESS_CODE": "98765432"}
    started = time.monotonic()
    result = subprocess.run(
        [*CLI, "watch"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "hint: " in result.stderr
    assert "98765432" not in result.stderr + result.stdout
    assert time.monotonic() - started < 20  # not after the slow retries (60 s apart)
