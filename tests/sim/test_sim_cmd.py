"""``bambu-lan sim`` as a user runs it: a real process, real sockets, Ctrl-C to stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.sim.support import RawClient

from bambu_lan.sim import SimulatedPrinter

CLI = [sys.executable, "-c", "from bambu_lan.cli.main import main; main()"]


@asynccontextmanager
async def running_sim(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """Start ``bambu-lan sim ARGS``; yields the process and its first line of output."""
    process = await asyncio.create_subprocess_exec(
        *CLI, "sim", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            first = (await process.stdout.readline()).decode()
        yield process, first
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def interrupt(process: asyncio.subprocess.Process, signum: int = signal.SIGINT) -> str:
    """Send a signal; returns stderr after a clean exit 0."""
    process.send_signal(signum)
    async with asyncio.timeout(15):
        _out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return err.decode()


def as_printer(info: dict[str, Any]) -> SimulatedPrinter:
    """A stand-in carrying what RawClient needs to reach the CLI's printer."""
    stand_in = SimulatedPrinter(
        info["model"], info["serial"], info["access_code"], cert_dir=Path(info["ca_path"]).parent
    )
    stand_in.host, stand_in.port = info["host"], info["port"]
    return stand_in


async def test_sim_json_serves_until_interrupted(tmp_path: Path) -> None:
    async with running_sim(
        "--port", "0", "--cert-dir", str(tmp_path), "--json", "--speed", "20",
        "--access-code", "24681357", "--print", "3",
    ) as (process, first):  # fmt: skip
        [info] = json.loads(first)
        assert info["access_code"] == "24681357"
        assert info["ca_path"] == str(tmp_path / "ca.pem")
        client = await RawClient.session(as_printer(info))
        report = await client.full_report()
        assert report["print"]["gcode_state"] in {"PREPARE", "RUNNING", "FINISH"}  # --print
        await client.disconnect()
        err = await interrupt(process)
    assert "stopped" in err
    assert "Traceback" not in err


async def test_sim_human_output_and_sigterm(tmp_path: Path) -> None:
    async with running_sim("--port", "0", "--cert-dir", str(tmp_path), "--model", "p1s") as (
        process,
        first,
    ):
        assert "P1S" in first
        assert process.stdout is not None
        rest = []
        while "bambu-lan status" not in (line := (await process.stdout.readline()).decode()):
            rest.append(line)
        text = "".join(rest)
        for needle in ("access code", "serial", "01PSIM000000000", "ca.pem", "mosquitto_sub"):
            assert needle in text
        await interrupt(process, signal.SIGTERM)


async def test_sim_count_prints_a_fleet(tmp_path: Path) -> None:
    async with running_sim(
        "--count", "3", "--port", "0", "--cert-dir", str(tmp_path), "--json"
    ) as (process, first):
        listing = json.loads(first)
        assert [p["host"] for p in listing] == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
        assert len({p["serial"] for p in listing}) == 3
        client = await RawClient.session(as_printer(listing[2]))
        await client.disconnect()
        await interrupt(process)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "a7"], "unknown printer model 'a7'"),
        (["--speed", "0"], "--speed must be greater than 0"),
        (["--count", "2", "--serial", "X"], "--serial names one printer"),
        (["--serial", "../x"], "invalid serial"),
    ],
)
async def test_sim_errors_are_one_line_with_a_hint(
    tmp_path: Path, args: list[str], message: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        *CLI, "sim", "--port", "0", "--cert-dir", str(tmp_path), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        _out, err = await process.communicate()
    text = err.decode()
    assert process.returncode == 2
    assert text.startswith(f"error: {message}") or message in text.splitlines()[0], text
    assert "Traceback" not in text


async def test_sim_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            *CLI, "sim", "--port", str(port), "--cert-dir", str(tmp_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(30):
            _out, err = await process.communicate()
    lines = err.decode().splitlines()
    assert process.returncode == 2
    assert lines[0] == f"error: cannot listen on 127.0.0.1:{port}: the port is already in use"
    assert lines[1].startswith("hint: ")
    assert "Traceback" not in err.decode()


async def test_sim_help_teaches() -> None:
    process = await asyncio.create_subprocess_exec(
        *CLI, "sim", "--help", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    text = out.decode()
    for needle in ("--cert-dir", "ca.pem", "--speed", "--count", "--print", "Examples"):
        assert needle in text
