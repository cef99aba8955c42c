"""Fixtures of the camera tests: a simulated A1 whose camera sends 20 frames a second; the
CLI tests' in-process ``cli`` and isolated environment (shared with tests/cli)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.camera.support import FRAME_INTERVAL
from tests.cli.conftest import cli, isolated_env

from bambu_lan.sim import SimulatedPrinter

__all__ = ["cam_sim", "cli", "isolated_env"]


@pytest.fixture
async def cam_sim(sim_cert_dir: Path) -> AsyncIterator[SimulatedPrinter]:
    """A started simulated A1 with its camera on a free port, a frame every 0.05 s."""
    async with SimulatedPrinter(
        "a1",
        cert_dir=sim_cert_dir,
        time_scale=20.0,
        seed=1,
        camera_port=0,
        camera_interval=FRAME_INTERVAL,
    ) as printer:
        yield printer
