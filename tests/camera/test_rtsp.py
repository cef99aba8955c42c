"""X1/P2S/H2 cameras against the simulator's RTSPS server, with the real ffmpeg: snapshots,
the access code kept off ffmpeg's command line and environment, and every failure."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import stat
from pathlib import Path

import pytest
from tests.camera.support import (
    jpeg_size,
    looks_like_the_drawn_frame,
    require_tool,
    rtsp_sim,
    server,
    x1_config,
)

from bambu_lan.camera import Camera, CameraAuthError, CameraError, CameraUnavailable
from bambu_lan.camera_rtsp import live_view_problem, rtsp_url, rtsps_snapshot
from bambu_lan.camera_rtsp_wire import (
    Credentials,
    Response,
    parse_challenges,
    parse_response_head,
    request,
)
from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.errors import TrustError
from bambu_lan.sim.camera_rtsp import RTSP_PATH
from bambu_lan.trust import KnownPrinters, TrustConfig

X1_SERIAL = "00M09A350100001"
RTSP_MODELS = ["x1c", "p2s", "h2d"]


# --- addresses and the live-view switch ----------------------------------------------------------


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


# --- snapshots ------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", RTSP_MODELS)
async def test_snapshot_of_each_rtsps_model(sim_factory: object, model: str) -> None:
    """The library's own RTSP session (TLS, Digest login, RTP over the connection) and the
    real ffmpeg decoding the simulator's real H.264."""
    sim = await rtsp_sim(sim_factory, model)
    assert sim.model.state["ipcam"]["rtsp_url"].endswith(f":{sim.camera_port}/streaming/live/1")
    frame = await Camera(x1_config(sim)).snapshot(timeout=30)
    assert jpeg_size(frame.jpeg) == (1280, 720)
    assert looks_like_the_drawn_frame(frame.jpeg, sim) < 3  # another serial or state: ~5
    stats = server(sim).stats
    assert (stats.plays, stats.challenges, stats.auth_failures) == (1, 1, 0)


async def test_wrong_code_is_refused(sim_factory: object) -> None:
    sim = await rtsp_sim(sim_factory)
    wrong = "87654321" if sim.access_code != "87654321" else "12345678"
    with pytest.raises(CameraAuthError, match="refused the access code") as caught:
        await rtsps_snapshot(x1_config(sim, code=wrong), sim.camera_port, timeout=30)
    assert "access code" in caught.value.hint
    assert wrong not in str(caught.value) and sim.access_code not in str(caught.value)
    assert server(sim).stats.auth_failures == 1
    assert server(sim).stats.plays == 0


async def test_live_view_switched_off(sim_factory: object) -> None:
    """An H2's default: the report says "disable" and the port closes every connection."""
    sim = await rtsp_sim(sim_factory, "h2d", live_view=False)
    assert live_view_problem(sim.model.state) is not None
    with pytest.raises(CameraUnavailable, match="live view is probably switched off") as caught:
        await rtsps_snapshot(x1_config(sim), sim.camera_port, timeout=30)
    assert "Liveview" in caught.value.hint
    assert server(sim).stats.refused_live_view_off == 1
    sim.set_live_view(True)
    assert live_view_problem(sim.model.state) is None
    frame = await rtsps_snapshot(x1_config(sim), sim.camera_port, timeout=30)
    assert jpeg_size(frame.jpeg) == (1280, 720)


async def test_identity_is_checked_before_anything_is_sent(
    sim_factory: object, tmp_path: Path
) -> None:
    sim = await rtsp_sim(sim_factory)
    pins = tmp_path / "pins"
    KnownPrinters(pins).pin(sim.serial, "11" * 32)
    cfg = x1_config(sim, TrustConfig(known_printers=pins))
    with pytest.raises(TrustError, match="changed since it was pinned"):
        await rtsps_snapshot(cfg, sim.camera_port, timeout=30)
    assert server(sim).stats.connections == 1
    assert server(sim).stats.requests == 0  # not even OPTIONS: no credential left


async def test_closed_rtsps_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    require_tool("ffmpeg")
    cfg = PrinterConfig("127.0.0.1", X1_SERIAL, Secret("12345678"))
    with pytest.raises(CameraUnavailable, match="refused the connection") as caught:
        await rtsps_snapshot(cfg, port)
    assert "Liveview" in caught.value.hint


async def test_a_port_that_is_not_rtsp(sim_factory: object) -> None:
    """TLS with the printer's certificate but no RTSP behind it (its MQTT port)."""
    require_tool("ffmpeg")
    sim = await sim_factory("x1c")  # type: ignore[operator]
    with pytest.raises(CameraError) as caught:
        await rtsps_snapshot(x1_config(sim), sim.port, timeout=30)
    assert "live view" in str(caught.value)
    assert sim.access_code not in str(caught.value)


async def test_without_ffmpeg_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no ffmpeg
    cfg = PrinterConfig("127.0.0.1", X1_SERIAL, Secret("12345678"))
    with pytest.raises(CameraUnavailable, match="needs ffmpeg") as caught:
        await Camera(cfg).snapshot()
    assert "install ffmpeg" in caught.value.hint


# --- the access code never reaches ffmpeg ---------------------------------------------------------


async def test_ffmpeg_gets_neither_the_address_nor_the_code(
    sim_factory: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in ffmpeg first on PATH records its command line and environment (what ``ps``
    and /proc show other users), then runs the real one: the picture still comes."""
    real = require_tool("ffmpeg")
    sim = await rtsp_sim(sim_factory)  # its encoder found the real ffmpeg already
    record = tmp_path / "record"
    record.mkdir()
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{record}/argv"\n'
        f'env > "{record}/env"\n'
        f'exec "{real}" "$@"\n'
    )
    fake.chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("BAMBU_ACCESS_CODE", sim.access_code)  # as a user may have it
    monkeypatch.setenv("SOMETHING_ELSE", f"x{sim.access_code}x")
    frame = await rtsps_snapshot(x1_config(sim), sim.camera_port, timeout=30)
    assert jpeg_size(frame.jpeg) == (1280, 720)
    argv = (record / "argv").read_text()
    env = (record / "env").read_text()
    assert "pipe:0" in argv  # the stand-in really ran, as the decoder
    assert sim.access_code not in argv
    assert "rtsp" not in argv and sim.host not in argv
    assert sim.access_code not in env
    assert "BAMBU_ACCESS_CODE" not in env and "SOMETHING_ELSE" not in env
    assert f"PATH={fake.parent}" in env  # the rest of the environment is passed on


# --- the simulator as other clients see it --------------------------------------------------------


async def test_ffmpeg_itself_plays_the_simulated_stream(sim_factory: object) -> None:
    """ffmpeg's own RTSP client (what VLC, go2rtc and Home Assistant resemble) logs in with
    Digest and decodes the simulator's stream: the server is real RTSP, not a mirror of
    bambu-lan's client. (The code on ffmpeg's command line is the simulator's, in a test.)"""
    sim = await rtsp_sim(sim_factory, "p2s")
    url = f"rtsps://bblp:{sim.access_code}@{sim.host}:{sim.camera_port}/streaming/live/1"
    proc = await asyncio.create_subprocess_exec(
        require_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp",
        "-analyzeduration", "0", "-probesize", "32768", "-fflags", "nobuffer",
        "-i", url, "-frames:v", "3", "-f", "image2pipe", "-c:v", "png", "pipe:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err
    assert out.count(b"\x89PNG") == 3
    assert server(sim).stats.plays == 1 and server(sim).stats.auth_failures == 0


async def test_the_simulator_refuses_udp_and_unknown_paths(sim_factory: object) -> None:
    sim = await rtsp_sim(sim_factory)
    ctx = ssl.create_default_context(cafile=str(sim.ca_path))
    ctx.check_hostname = False
    reader, writer = await asyncio.open_connection(sim.host, sim.camera_port, ssl=ctx)
    creds = Credentials("bblp", sim.access_code)
    stream = f"rtsps://{sim.host}:{sim.camera_port}{RTSP_PATH}"

    async def call(method: str, uri: str, cseq: int, headers: dict[str, str]) -> Response:
        login = creds.authorization(method, uri)
        writer.write(
            request(method, uri, cseq, headers | ({"Authorization": login} if login else {}))
        )
        return parse_response_head(await reader.readuntil(b"\r\n\r\n"))

    try:
        assert (await call("DESCRIBE", stream.replace("live/1", "live/9"), 1, {})).status == 404
        challenged = await call("DESCRIBE", stream, 2, {})
        assert challenged.status == 401
        assert creds.choose(parse_challenges(challenged.headers["www-authenticate"]))
        udp = {"Transport": "RTP/AVP;unicast;client_port=5000-5001"}
        assert (await call("SETUP", stream + "/track1", 3, udp)).status == 461
        tcp = {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"}
        assert (await call("SETUP", stream + "/track1", 4, tcp)).status == 200
        assert (await call("PLAY", stream, 5, {"Session": "not-ours"})).status == 454
    finally:
        writer.close()


async def test_an_ffmpeg_that_cannot_decode_is_a_clear_error(
    sim_factory: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = await rtsp_sim(sim_factory)
    fake = tmp_path / "ffmpeg"
    fake.write_text(
        "#!/bin/sh\n"
        "printf 'pipe:0: Invalid data found when processing input\\033[31m\\n' >&2\nexit 1\n"
    )
    fake.chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CameraError, match="ffmpeg could not decode") as caught:
        await rtsps_snapshot(x1_config(sim), sim.camera_port, timeout=30)
    assert "Invalid data found when processing input" in str(caught.value)
    assert "\033" not in str(caught.value)  # what ffmpeg prints reaches no terminal raw
    assert "try again" in caught.value.hint
