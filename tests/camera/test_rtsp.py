"""X1/P2S/H2 cameras: the RTSPS address, the live-view switch, snapshots through ffmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.camera.support import require_tool

from bambu_lan.camera import Camera, CameraError, CameraUnavailable
from bambu_lan.camera_rtsp import live_view_problem, rtsp_url, rtsps_snapshot
from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.errors import TrustError
from bambu_lan.sim import SimulatedPrinter
from bambu_lan.trust import KnownPrinters, TrustConfig

X1_SERIAL = "00M09A350100001"


def x1_config(sim: SimulatedPrinter, trust: TrustConfig | None = None) -> PrinterConfig:
    return PrinterConfig(
        sim.host,
        sim.serial,
        Secret(sim.access_code),
        port=sim.port,
        trust=trust or TrustConfig(ca_file=sim.ca_path),
    )


def test_url_masks_the_code_unless_asked() -> None:
    cfg = PrinterConfig("192.0.2.7", X1_SERIAL, Secret("ab/cd@12"))
    cam = Camera(cfg)
    assert cam.rtsp_url() == "rtsps://bblp:********@192.0.2.7:322/streaming/live/1"
    # Characters with a meaning in URLs are escaped in the real one.
    assert cam.rtsp_url(masked=False) == "rtsps://bblp:ab%2Fcd%4012@192.0.2.7:322/streaming/live/1"
    assert "ab/cd@12" not in repr(cam)
    assert rtsp_url(cfg, 8322).endswith(":8322/streaming/live/1")


@pytest.mark.parametrize(
    ("ipcam", "problem"),
    [
        ({"rtsp_url": "disable"}, "switched off"),
        ({"ipcam_dev": "0"}, "no camera"),
        ({"rtsp_url": "rtsps://192.0.2.7/streaming/live/1"}, None),
        ({}, None),
    ],
)
def test_live_view_problem(ipcam: dict[str, str], problem: str | None) -> None:
    found = live_view_problem({"ipcam": ipcam})
    assert (found is None) if problem is None else (problem in (found or ""))
    assert live_view_problem({"ipcam": "garbage"}) is None


async def test_without_ffmpeg_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no ffmpeg
    cfg = PrinterConfig("127.0.0.1", X1_SERIAL, Secret("12345678"))
    with pytest.raises(CameraUnavailable, match="needs ffmpeg") as caught:
        await Camera(cfg).snapshot()
    assert "install ffmpeg" in caught.value.hint


async def test_ffmpeg_failure_is_clear_and_masked(sim_factory: object) -> None:
    """ffmpeg really runs: TLS with the printer's certificate on the port, but no RTSP."""
    require_tool("ffmpeg")
    sim = await sim_factory("x1c")  # type: ignore[operator]
    cfg = x1_config(sim)
    with pytest.raises(CameraError, match="ffmpeg could not read the live view") as caught:
        await rtsps_snapshot(cfg, sim.port, timeout=30)
    assert sim.access_code not in str(caught.value)


async def test_identity_is_checked_before_ffmpeg_gets_the_code(
    sim_factory: object, tmp_path: Path
) -> None:
    require_tool("ffmpeg")
    sim = await sim_factory("x1c")  # type: ignore[operator]
    pins = tmp_path / "pins"
    KnownPrinters(pins).pin(sim.serial, "11" * 32)
    with pytest.raises(TrustError, match="changed since it was pinned"):
        await rtsps_snapshot(x1_config(sim, TrustConfig(known_printers=pins)), sim.port)


async def test_closed_rtsps_port() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    require_tool("ffmpeg")
    cfg = PrinterConfig("127.0.0.1", X1_SERIAL, Secret("12345678"))
    with pytest.raises(CameraUnavailable, match="refused the connection"):
        await rtsps_snapshot(cfg, port)
