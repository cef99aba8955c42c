"""A third-party camera client gets frames from the simulator unchanged: bambulabs-api's
``PrinterCamera`` (it relies on the 16-byte header arriving in a TLS record of its own and
on JFIF frames), run from the benchmarks' peers virtualenv."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from pathlib import Path

import pytest
from tests.camera.support import jpeg_size

from bambu_lan.sim import SimulatedPrinter

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"

CLIENT = """
import base64, json, sys, time
from bambulabs_api.camera_client import PrinterCamera
host, port, code = sys.argv[1], int(sys.argv[2]), sys.argv[3]
camera = PrinterCamera(host, code, port)
camera.start()
deadline = time.monotonic() + 30
frames = []
while time.monotonic() < deadline and len(frames) < 3:
    try:
        frame = camera.get_frame()
    except Exception:
        frame = None
    if frame is not None and (not frames or frame != frames[-1]):
        frames.append(frame)
    time.sleep(0.02)
camera.alive = False
print(json.dumps(frames[:3]))
"""


def peers_python() -> Path:
    """The peers venv's python with bambulabs-api (installed on first use from PyPI)."""
    sys.path.insert(0, str(BENCH_DIR))
    try:
        import peers  # type: ignore[import-not-found]

        ready, info = peers.ensure(["bambulabs-api"])
    finally:
        sys.path.remove(str(BENCH_DIR))
    if "bambulabs-api" not in ready:
        message = f"bambulabs-api unavailable: {info.get('bambulabs-api')}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    python: Path = ready["bambulabs-api"]
    return python


@pytest.mark.timeout(600)  # the first run installs the peer
async def test_bambulabs_api_camera_client_gets_frames(sim_cert_dir: Path) -> None:
    python = await asyncio.to_thread(peers_python)
    async with SimulatedPrinter(
        "a1", cert_dir=sim_cert_dir, camera_port=0, camera_interval=0.1
    ) as sim:
        assert sim.camera_port is not None
        proc = await asyncio.create_subprocess_exec(
            str(python), "-c", CLIENT, sim.host, str(sim.camera_port), sim.access_code,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with asyncio.timeout(60):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    frames = json.loads(out or b"[]")
    assert len(frames) == 3, err.decode(errors="replace")[-2000:]
    for frame in frames:
        assert jpeg_size(base64.b64decode(frame)) == (1280, 720)
