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
from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.sim import SimulatedPrinter
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
