"""Helpers of the camera tests: a simulated A1 with a fast camera, configs, tool checks."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import time
from collections.abc import Callable

import pytest

from bambu_lan.camera import Camera, CameraOptions
from bambu_lan.camera_http import BOUNDARY, MjpegServer
from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.sim import SimulatedPrinter
from bambu_lan.sim.camera_frames import FrameRenderer
from bambu_lan.sim.camera_rtsp import RtspCameraServer
from bambu_lan.trust import TrustConfig

#: Seconds between the simulated camera's frames in tests (a printer: about 1).
FRAME_INTERVAL = 0.05
FAST = CameraOptions(silence_timeout=1.0, connect_timeout=2.0, backoff_initial=0.05)


def config(
    sim: SimulatedPrinter,
    *,
    access_code: str | None = None,
    trust: TrustConfig | None = None,
    host: str | None = None,
) -> PrinterConfig:
    return PrinterConfig(
        host=host or sim.host,
        serial=sim.serial,
        access_code=Secret(access_code or sim.access_code),
        port=sim.port,
        trust=trust or TrustConfig(ca_file=sim.ca_path),
        camera_port=sim.camera_port,
    )


def camera(sim: SimulatedPrinter, options: CameraOptions = FAST, **kwargs: object) -> Camera:
    return Camera(config(sim, **kwargs), options=options)  # type: ignore[arg-type]


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height as Pillow decodes them (fails on anything but a whole image)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def require_tool(name: str) -> str:
    """The path of an installed program; skips without it, except on CI where it fails."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``check()`` holds (for state another task changes, e.g. a server's
    counters); fails with the timeout."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# --- X1/P2S/H2: the simulator's RTSPS camera -----------------------------------------------------

#: Seconds between the simulated RTSPS camera's frames in tests.
INTERVAL = 0.2


def x1_config(
    sim: SimulatedPrinter, trust: TrustConfig | None = None, code: str | None = None
) -> PrinterConfig:
    return PrinterConfig(
        sim.host,
        sim.serial,
        Secret(code or sim.access_code),
        port=sim.port,
        trust=trust or TrustConfig(ca_file=sim.ca_path),
        camera_port=sim.camera_port,
    )


async def rtsp_sim(sim_factory: object, model: str = "x1c", **kwargs: object) -> SimulatedPrinter:
    """A started simulated printer with its RTSPS camera on a free port (needs ffmpeg)."""
    require_tool("ffmpeg")
    options: dict[str, object] = {"camera_port": 0, "camera_interval": INTERVAL} | kwargs
    sim: SimulatedPrinter = await sim_factory(model, **options)  # type: ignore[operator]
    return sim


def server(sim: SimulatedPrinter) -> RtspCameraServer:
    assert isinstance(sim.camera, RtspCameraServer)
    return sim.camera


def looks_like_the_drawn_frame(jpeg: bytes, sim: SimulatedPrinter) -> float:
    """Mean difference (0-255) between the decoded picture's text band (model, serial, job,
    progress) and the simulator's own drawing of it: small for the right picture, large for
    a grey or green frame a decoder makes of a broken stream."""
    from PIL import Image, ImageChops, ImageStat

    drawn = FrameRenderer(sim.profile.product_name, sim.serial).draw(sim.model.state)
    with Image.open(io.BytesIO(jpeg)) as got:
        band = (0, 0, 1280, 200)
        diff = ImageChops.difference(got.convert("L").crop(band), drawn.convert("L").crop(band))
        return float(ImageStat.Stat(diff).mean[0])


# --- an MJPEG server's viewers -------------------------------------------------------------------


async def request(
    srv: MjpegServer, raw: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, dict[str, str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return reader, writer, status, headers


async def get(
    srv: MjpegServer, path: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    reader, writer, status, headers = await request(
        srv, f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    body = await reader.read()
    writer.close()
    return status, headers, body


async def read_parts(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    """``count`` JPEGs from a multipart/x-mixed-replace body, read as any MJPEG client does."""
    parts: list[bytes] = []
    async with asyncio.timeout(15):
        while len(parts) < count:
            line = await reader.readline()
            if line.strip() != f"--{BOUNDARY}".encode():
                continue
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(h.split(b":", 1)[1])
                for h in head.split(b"\r\n")
                if h.lower().startswith(b"content-length:")
            )
            parts.append(await reader.readexactly(length))
    return parts
