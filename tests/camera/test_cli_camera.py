"""``bambu-lan camera snapshot|url|serve`` in-process, against a simulated A1 on a thread."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.camera.support import FRAME_INTERVAL, jpeg_size, require_tool
from tests.cli.conftest import Cli

from bambu_lan.sim import SimThread, SimulatedPrinter
from bambu_lan.trust import KnownPrinters

BAMBU_LAN = str(Path(sys.executable).parent / "bambu-lan")  # the console script


@pytest.fixture(autouse=True)
def no_camera_port_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAMBU_CAMERA_PORT", raising=False)


@pytest.fixture
def printer(sim_cert_dir: Path) -> Iterator[SimulatedPrinter]:
    sim = SimulatedPrinter(
        "a1", cert_dir=sim_cert_dir, time_scale=20, camera_port=0, camera_interval=FRAME_INTERVAL
    )
    with SimThread(sim) as running:
        yield running.target


def connect_args(sim: SimulatedPrinter, code: str | None = None) -> list[str]:
    return [
        "--host", sim.host, "--port", str(sim.port), "--serial", sim.serial,
        "--access-code", code or sim.access_code, "--ca-file", str(sim.ca_path),
        "--camera-port", str(sim.camera_port),
    ]  # fmt: skip


def test_snapshot_writes_a_jpeg(cli: Cli, printer: SimulatedPrinter, tmp_path: Path) -> None:
    out = tmp_path / "now.jpg"
    result = cli("camera", "snapshot", str(out), *connect_args(printer))
    assert result.code == 0, result.err
    assert jpeg_size(out.read_bytes()) == (1280, 720)
    assert "saved" in result.out
    assert printer.access_code not in result.out + result.err


def test_snapshot_json(cli: Cli, printer: SimulatedPrinter, tmp_path: Path) -> None:
    out = tmp_path / "now.jpg"
    result = cli("camera", "snapshot", str(out), "--json", *connect_args(printer))
    data = json.loads(result.out)
    assert data["ok"] is True and data["bytes"] == out.stat().st_size


def test_wrong_code_is_one_error_and_one_hint(
    cli: Cli, printer: SimulatedPrinter, tmp_path: Path
) -> None:
    out = tmp_path / "now.jpg"
    result = cli("camera", "snapshot", str(out), *connect_args(printer, "ZZ987654"))
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("error: ") and "access code is wrong" in lines[0]
    assert lines[1].startswith("hint: ")
    assert len(lines) == 2
    assert "Traceback" not in result.err
    assert not out.exists()


def test_closed_camera_port(cli: Cli, printer: SimulatedPrinter, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    args = [*connect_args(printer)[:-1], str(free)]
    result = cli("camera", "snapshot", str(tmp_path / "x.jpg"), *args)
    assert result.code == 2
    assert "refused the connection" in result.err and "hint:" in result.err


def test_unwritable_output_is_a_clear_error(cli: Cli, printer: SimulatedPrinter) -> None:
    result = cli("camera", "snapshot", "/nonexistent-dir/x.jpg", *connect_args(printer))
    assert result.code == 2
    assert "cannot write /nonexistent-dir/x.jpg" in result.err


def test_url_of_an_a1_says_to_use_serve(cli: Cli, printer: SimulatedPrinter) -> None:
    result = cli("camera", "url", *connect_args(printer))
    assert result.code == 2
    assert "camera serve" in result.err


def test_url_of_an_x1_masks_the_code_and_reads_the_live_view_switch(
    cli: Cli, sim_cert_dir: Path
) -> None:
    sim = SimulatedPrinter("x1c", cert_dir=sim_cert_dir, time_scale=20)
    with SimThread(sim) as running:
        x1 = running.target
        args = [
            "--host", x1.host, "--port", str(x1.port), "--serial", x1.serial,
            "--access-code", x1.access_code, "--ca-file", str(x1.ca_path),
        ]  # fmt: skip
        # The simulated X1C reports ipcam.rtsp_url "disable", as a real one with LAN live
        # view off does.
        off = cli("camera", "url", *args)
        assert off.code == 2
        assert 'rtsp_url is "disable"' in off.err and "Liveview" in off.err
        masked = cli("camera", "url", "--no-check", *args)
        assert masked.out.strip() == f"rtsps://bblp:********@{x1.host}:322/streaming/live/1"
        shown = cli("camera", "url", "--no-check", "--show-code", "--json", *args)
        assert json.loads(shown.out)["url"].startswith(f"rtsps://bblp:{x1.access_code}@")


def test_serve_runs_as_a_process_and_streams(printer: SimulatedPrinter, tmp_path: Path) -> None:
    """The real console command: serve, fetch a snapshot and stream frames, Ctrl-C."""
    args = [
        BAMBU_LAN, "camera", "serve", "--http-port", "0",
        "--json", *connect_args(printer),
    ]  # fmt: skip
    env = {"BAMBU_KNOWN_PRINTERS": str(tmp_path / "kp"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        with urllib.request.urlopen(info["snapshot"], timeout=60) as response:  # noqa: S310
            assert jpeg_size(response.read()) == (1280, 720)
        with urllib.request.urlopen(info["stream"], timeout=60) as response:  # noqa: S310
            assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            seen = response.read(200_000)
        assert seen.count(b"Content-Type: image/jpeg") >= 2
    finally:
        proc.send_signal(2)  # Ctrl-C
        try:
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err = proc.stderr.read() if proc.stderr is not None else b""
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    assert code == 130
    assert b"Traceback" not in err


def test_snapshot_of_an_x1_with_live_view_off(sim_cert_dir: Path, tmp_path: Path) -> None:
    """The report says the LAN live view is off: said before ffmpeg is even started."""
    sim = SimulatedPrinter("x1c", cert_dir=sim_cert_dir, time_scale=20)
    with SimThread(sim) as running:
        x1 = running.target
        args = [
            BAMBU_LAN, "camera", "snapshot",
            str(tmp_path / "x.jpg"), "--host", x1.host, "--port", str(x1.port), "--serial",
            x1.serial, "--access-code", x1.access_code, "--ca-file", str(x1.ca_path),
        ]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert time.monotonic() - started < 60
    assert done.returncode == 2
    assert 'rtsp_url is "disable"' in done.stderr
    assert x1.access_code not in done.stderr


def test_snapshot_to_stdout(printer: SimulatedPrinter, tmp_path: Path) -> None:
    args = [BAMBU_LAN, "camera", "snapshot", "-", *connect_args(printer)]
    env = {"BAMBU_KNOWN_PRINTERS": str(tmp_path / "kp"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(args, capture_output=True, timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert jpeg_size(done.stdout) == (1280, 720)


@pytest.fixture(params=["x1c"])
def x1(sim_cert_dir: Path, request: pytest.FixtureRequest) -> Iterator[SimulatedPrinter]:
    """A simulated X1C (or the model given by indirect parametrisation) with its RTSPS
    camera (live view on) on a free port."""
    require_tool("ffmpeg")
    sim = SimulatedPrinter(
        request.param, cert_dir=sim_cert_dir, time_scale=20, camera_port=0, camera_interval=0.2
    )
    with SimThread(sim) as running:
        yield running.target


@pytest.mark.parametrize("x1", ["x1c", "p2s", "h2d"], indirect=True)
def test_snapshot_of_an_x1_through_rtsps(x1: SimulatedPrinter, tmp_path: Path) -> None:
    """The console command end to end: the report's live-view switch, then the picture."""
    out = tmp_path / "x1.jpg"
    args = [BAMBU_LAN, "camera", "snapshot", str(out), *connect_args(x1)]
    env = {"BAMBU_KNOWN_PRINTERS": str(tmp_path / "kp"), "PATH": os.environ["PATH"]}
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"saved {out}")
    assert jpeg_size(out.read_bytes()) == (1280, 720)
    assert x1.access_code not in done.stdout + done.stderr


def test_snapshot_of_an_x1_without_ffmpeg(x1: SimulatedPrinter, tmp_path: Path) -> None:
    args = [BAMBU_LAN, "camera", "snapshot", str(tmp_path / "x.jpg"), *connect_args(x1)]
    env = {"BAMBU_KNOWN_PRINTERS": str(tmp_path / "kp"), "PATH": str(tmp_path)}  # no ffmpeg
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 2
    error, hint = done.stderr.strip().splitlines()
    assert error.startswith("error: ") and "needs ffmpeg" in error
    assert hint.startswith("hint: ") and "install ffmpeg" in hint
    assert not (tmp_path / "x.jpg").exists()


def test_serve_ends_with_error_and_hint_when_the_camera_fails_for_good(
    sim_cert_dir: Path, tmp_path: Path
) -> None:
    """The printer's identity changes while `camera serve` runs with a viewer: one error and
    one hint, exit 2, no traceback (asyncio printed the viewer's failure as unhandled)."""
    sim = SimulatedPrinter(
        "a1", cert_dir=sim_cert_dir, time_scale=20, camera_port=0, camera_interval=FRAME_INTERVAL
    )
    pins = tmp_path / "kp"
    with SimThread(sim) as running:
        printer = running.target
        args = [BAMBU_LAN, "camera", "serve", "--http-port", "0", *connect_args(printer)]
        args.remove("--ca-file")
        args.remove(str(printer.ca_path))  # trust on first use: the pin can change under it
        env = {"BAMBU_KNOWN_PRINTERS": str(pins), "PATH": "/usr/bin:/bin"}
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        try:
            assert proc.stdout is not None
            stream = next(
                line.split()[-1] for line in proc.stdout if line.strip().startswith("stream")
            )
            with urllib.request.urlopen(stream, timeout=10) as response:  # noqa: S310
                assert b"image/jpeg" in response.read(1000)
                KnownPrinters(pins).pin(printer.serial, "11" * 32)  # as if it were another
                assert printer.camera is not None
                running.call(printer.camera.drop_viewers)
                response.read()  # the viewer's response ends
            code = proc.wait(timeout=20)
            err = proc.stderr.read() if proc.stderr is not None else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    assert code == 2, err
    assert "Traceback" not in err and "Unhandled" not in err
    lines = err.strip().splitlines()
    assert lines[-2].startswith("error: ") and "changed since it was pinned" in lines[-2]
    assert lines[-1].startswith("hint: ")
    assert err.count("changed since it was pinned") == 1  # told once
    assert printer.access_code not in err


def test_snapshot_of_an_x1_whose_camera_port_is_closed(
    x1: SimulatedPrinter, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    args = [BAMBU_LAN, "camera", "snapshot", str(tmp_path / "x.jpg"), *connect_args(x1)]
    args[args.index("--camera-port") + 1] = str(closed)
    env = {"BAMBU_KNOWN_PRINTERS": str(tmp_path / "kp"), "PATH": os.environ["PATH"]}
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 2
    error, hint = done.stderr.strip().splitlines()[-2:]
    assert error.startswith("error: ") and "refused the connection" in error
    assert hint.startswith("hint: ") and "Liveview" in hint
    assert x1.access_code not in done.stderr


def children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


def test_serve_of_an_x1_streams_mjpeg(x1: SimulatedPrinter, tmp_path: Path) -> None:
    """The console command with an X1C: the MJPEG stream through ffmpeg, Ctrl-C, and no
    ffmpeg left behind (by pid)."""
    args = [BAMBU_LAN, "camera", "serve", "--http-port", "0", "--json", *connect_args(x1)]
    env = {"BAMBU_KNOWN_PRINTERS": str(tmp_path / "kp"), "PATH": os.environ["PATH"]}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        with urllib.request.urlopen(info["stream"], timeout=60) as response:  # noqa: S310
            assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            parts = response.read(400_000).split(b"Content-Type: image/jpeg")
            decoders = children(proc.pid)
        assert len(parts) >= 3
        first = parts[1].split(b"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]
        assert jpeg_size(first) == (1280, 720)
        assert len(decoders) == 1  # the one ffmpeg
    finally:
        proc.send_signal(2)  # Ctrl-C
        try:
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err = proc.stderr.read() if proc.stderr is not None else b""
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    assert code == 130, err
    assert b"Traceback" not in err and x1.access_code.encode() not in err
    for pid in decoders:
        assert not os.path.exists(f"/proc/{pid}")


def test_serve_of_an_x1_without_ffmpeg(x1: SimulatedPrinter, tmp_path: Path) -> None:
    args = [BAMBU_LAN, "camera", "serve", "--http-port", "0", *connect_args(x1)]
    env = {"BAMBU_KNOWN_PRINTERS": str(tmp_path / "kp"), "PATH": str(tmp_path)}  # no ffmpeg
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 2
    error, hint = done.stderr.strip().splitlines()
    assert error.startswith("error: ") and "needs ffmpeg" in error
    assert hint.startswith("hint: ") and "install ffmpeg" in hint
