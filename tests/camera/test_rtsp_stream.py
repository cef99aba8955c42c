"""X1/P2S/H2 cameras as JPEG streams: ``frames()`` and ``camera serve``'s MJPEG, through one
RTSPS session and one long-running ffmpeg, against the simulator's RTSPS camera (real H.264
from libx264) and the real ffmpeg, over real sockets."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.camera.support import (
    eventually,
    get,
    jpeg_size,
    looks_like_the_drawn_frame,
    read_parts,
    request,
    require_tool,
    rtsp_sim,
    server,
    x1_config,
)

from bambu_lan.camera import (
    Camera,
    CameraError,
    CameraEventKind,
    CameraFrame,
    CameraOptions,
    CameraUnavailable,
    open_streams,
)
from bambu_lan.camera_http import MjpegServer
from bambu_lan.camera_rtsp_stream import JpegSplitter, RtspsCameraStream
from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.sim import SimulatedPrinter

#: Quick reconnects and a short linger; the simulator sends 10 pictures a second.
OPTIONS = CameraOptions(
    silence_timeout=3.0, connect_timeout=5.0, backoff_initial=0.05, fps=10, idle_linger=0.3
)
GET_STREAM = b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n"


def gone(pid: int) -> bool:
    """The process has ended and was reaped (a zombie still has its /proc entry)."""
    return not os.path.exists(f"/proc/{pid}")


def stream_of(camera: Camera) -> RtspsCameraStream:
    frames = camera.frames()
    stream = frames.stream
    frames.close()
    assert isinstance(stream, RtspsCameraStream)
    return stream


async def take(frames: AsyncIterator[CameraFrame], count: int) -> list[CameraFrame]:
    out: list[CameraFrame] = []
    async with asyncio.timeout(15):
        async for frame in frames:
            out.append(frame)
            if len(out) == count:
                break
    return out


@pytest.fixture
async def x1c(sim_factory: object) -> SimulatedPrinter:
    return await rtsp_sim(sim_factory, "x1c", camera_interval=0.1)


# --- camera serve ---------------------------------------------------------------------------


async def test_mjpeg_viewers_of_an_x1c_share_one_rtsps_session(x1c: SimulatedPrinter) -> None:
    """Two viewers get decodable pictures that are the simulator's drawing, from one RTSPS
    session and one ffmpeg; /snapshot.jpg comes from the same stream."""
    async with MjpegServer(Camera(x1_config(x1c), options=OPTIONS), port=0) as srv:
        viewers = [await request(srv, GET_STREAM) for _ in range(2)]
        try:
            batches = await asyncio.gather(*(read_parts(r, 4) for r, _, _, _ in viewers))
            for batch in batches:
                for jpeg in batch:
                    assert jpeg_size(jpeg) == (1280, 720)
                    assert looks_like_the_drawn_frame(jpeg, x1c) < 3  # another serial: ~5
            status, headers, body = await get(srv, "/snapshot.jpg")
            assert status == 200 and headers["content-type"] == "image/jpeg"
            assert jpeg_size(body) == (1280, 720)
            stats = server(x1c).stats
            assert (stats.plays, server(x1c).viewers) == (1, 1)  # the check at start: the same
            assert srv.camera.stats is not None and srv.camera.stats.decoder_starts == 1
        finally:
            for _, writer, _, _ in viewers:
                writer.close()


async def test_no_viewer_no_session_and_no_ffmpeg(x1c: SimulatedPrinter) -> None:
    """Checked at the start, then stopped after the linger; the first viewer starts it again;
    after the server stops no ffmpeg it started is left (by pid)."""
    pids: list[int] = []
    async with MjpegServer(Camera(x1_config(x1c), options=OPTIONS), port=0) as srv:
        stream = stream_of(srv.camera)
        pid = stream.decoder_pid
        assert pid is not None
        pids.append(pid)
        await eventually(lambda: server(x1c).viewers == 0 and gone(pid))
        assert stream.decoder_pid is None and not stream.session_open
        reader, writer, status, _ = await request(srv, GET_STREAM)
        assert status == 200
        assert jpeg_size((await read_parts(reader, 1))[0]) == (1280, 720)
        again = stream.decoder_pid
        assert again is not None and again != pid
        pids.append(again)
        assert server(x1c).stats.plays == 2
        await read_parts(reader, 1)  # still streaming while the server closes
    writer.close()
    # The server's stop skips the linger: the session, ffmpeg and the stream are gone.
    assert stream.closed and open_streams() == 0
    await eventually(lambda: all(gone(p) for p in pids))
    await eventually(lambda: server(x1c).viewers == 0)


async def test_a_killed_ffmpeg_is_restarted_on_the_same_session(x1c: SimulatedPrinter) -> None:
    camera = Camera(x1_config(x1c), options=OPTIONS)
    with camera.frames() as frames, camera.events() as events:
        await take(frames, 2)
        stream = frames.stream
        assert isinstance(stream, RtspsCameraStream)
        killed = stream.decoder_pid
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        async with asyncio.timeout(15):
            async for event in events:
                if event.kind is CameraEventKind.DECODER_FAILED:
                    break
        assert "restarting" in event.message and x1c.access_code not in event.message
        after = await take(frames, 3)
        assert all(jpeg_size(f.jpeg) == (1280, 720) for f in after)
        assert stream.decoder_pid not in (None, killed)
        assert stream.stats.decoder_starts == 2 and stream.stats.decoder_failures == 1
        assert server(x1c).stats.plays == 1  # the RTSPS session stayed
    await eventually(lambda: server(x1c).viewers == 0)


async def test_an_ffmpeg_that_keeps_failing_is_logged_once(
    x1c: SimulatedPrinter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first ffmpeg works and is killed; every later one fails at once: restarted with
    a growing wait (0.5, 1, 2 s…), one warning for the whole run of failures."""
    real = require_tool("ffmpeg")
    fake = tmp_path / "ffmpeg"
    fake.write_text(
        "#!/bin/sh\n"
        f'if {shutil.which("mkdir")} "{tmp_path}/ran" 2>/dev/null; then exec "{real}" "$@"; fi\n'
        "echo 'broken' >&2\nexit 1\n"
    )
    fake.chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", str(tmp_path))
    options = CameraOptions(silence_timeout=2.0, connect_timeout=5.0, backoff_initial=0.05)
    camera = Camera(x1_config(x1c), options=options)
    with caplog.at_level(logging.DEBUG, "bambu_lan.camera"), camera.frames() as frames:
        await take(frames, 1)
        stream = frames.stream
        assert isinstance(stream, RtspsCameraStream) and stream.decoder_pid is not None
        os.kill(stream.decoder_pid, signal.SIGKILL)
        # Through a silence (2 s): the session is reconnected, the run of failures goes on.
        await eventually(lambda: stream.stats.decoder_failures >= 4, timeout=15)
        assert stream.stats.silences >= 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "broken" not in warnings[0].getMessage()  # the kill's
    assert any("broken" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


async def test_a_dropped_session_reconnects(x1c: SimulatedPrinter) -> None:
    camera = Camera(x1_config(x1c), options=OPTIONS)
    with camera.frames() as frames:
        await take(frames, 2)
        assert server(x1c).drop_viewers() == 1
        await take(frames, 3)
        assert server(x1c).stats.plays == 2 and server(x1c).viewers == 1


async def test_live_view_switched_off_while_streaming_backs_off(x1c: SimulatedPrinter) -> None:
    """Refused reconnects wait longer each time (0.05, 0.1, 0.2, … s here), also after a
    session that had worked: a printer is not asked twenty times a second."""
    camera = Camera(x1_config(x1c), options=OPTIONS)
    with camera.frames() as frames:
        await take(frames, 2)
        before = server(x1c).stats.connections
        x1c.set_live_view(False)
        await asyncio.sleep(1.6)
        tries = server(x1c).stats.connections - before
        assert 2 <= tries <= 8  # doubling from 0.05 s: about 5; without backoff: about 30


async def test_library_consumers_share_one_session(x1c: SimulatedPrinter) -> None:
    camera = Camera(x1_config(x1c), options=OPTIONS)
    with camera.frames() as one, camera.frames() as two:
        got = await asyncio.gather(take(one, 3), take(two, 3))
        assert {f.index for f in got[0]} & {f.index for f in got[1]}  # the same pictures
        snap = await camera.snapshot()  # from the stream, not a session of its own
        assert jpeg_size(snap.jpeg) == (1280, 720)
        assert server(x1c).stats.plays == 1


# --- faults ---------------------------------------------------------------------------------


async def test_live_view_switched_off_is_said_at_start(sim_factory: object) -> None:
    sim = await rtsp_sim(sim_factory, "h2d", live_view=False)
    srv = MjpegServer(Camera(x1_config(sim), options=OPTIONS), port=0)
    with pytest.raises(CameraUnavailable, match="live view is probably switched off") as caught:
        await srv.start()
    await srv.close()
    assert "Liveview" in caught.value.hint
    assert open_streams() == 0


async def test_without_ffmpeg_frames_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no ffmpeg
    cfg = PrinterConfig("127.0.0.1", "00M09A350100001", Secret("12345678"))
    with pytest.raises(CameraUnavailable, match="needs ffmpeg") as caught:
        Camera(cfg).frames()
    assert "install ffmpeg" in caught.value.hint
    assert open_streams() == 0


async def test_an_ffmpeg_that_cannot_decode_is_said_at_start(
    x1c: SimulatedPrinter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffmpeg stops before a single picture: `camera serve` does not start, and says why
    (ffmpeg's last line, terminal-safe)."""
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nprintf 'pipe:0: Invalid data found\\033[31m\\n' >&2\nexit 1\n")
    fake.chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", str(tmp_path))  # the simulator found the real one already
    srv = MjpegServer(Camera(x1_config(x1c), options=OPTIONS), port=0)
    with pytest.raises(CameraError, match="ffmpeg could not decode") as caught:
        await srv.start()
    await srv.close()
    assert "Invalid data found" in str(caught.value) and "\033" not in str(caught.value)
    assert open_streams() == 0


async def test_the_transcoder_gets_neither_the_address_nor_the_code(
    x1c: SimulatedPrinter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in ffmpeg first on PATH records its command line and environment, then runs
    the real one: the pictures still come."""
    real = require_tool("ffmpeg")
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
    monkeypatch.setenv("BAMBU_ACCESS_CODE", x1c.access_code)
    with Camera(x1_config(x1c), options=OPTIONS).frames() as frames:
        assert jpeg_size((await take(frames, 2))[1].jpeg) == (1280, 720)
    argv = (record / "argv").read_text()
    env = (record / "env").read_text()
    assert "image2pipe" in argv  # the stand-in really ran, as the transcoder
    assert x1c.access_code not in argv and "rtsp" not in argv and x1c.host not in argv
    assert x1c.access_code not in env and "BAMBU_ACCESS_CODE" not in env


# --- cutting JPEGs out of ffmpeg's output ---------------------------------------------------


def jpeg(body: bytes, comment: bytes = b"") -> bytes:
    """A minimal marker structure: SOI, a comment segment, SOS, entropy data, EOI."""
    com = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    sos = b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + com + sos + body + b"\xff\xd9"


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
def test_splitter_cuts_whole_pictures_at_any_chunking(chunk: int) -> None:
    pictures = [
        jpeg(b"\x12\xff\x00\x34\xff\xd3\x56", comment=b"has \xff\xd9 inside"),  # stuffed, RST
        jpeg(b"\xff\xff\xff\x00\x01" * 5),  # fill bytes before a stuffed zero
        jpeg(b""),
    ]
    data = b"garbage" + b"".join(pictures) + b"\xff\xd8\xff\xfe\x00"  # a picture begun
    splitter = JpegSplitter(1 << 20)
    out: list[bytes] = []
    for i in range(0, len(data), chunk):
        out += splitter.feed(data[i : i + chunk])
    assert out == pictures
    assert splitter.dropped == 0


def test_splitter_drops_an_oversized_picture_and_goes_on() -> None:
    splitter = JpegSplitter(200)
    big = jpeg(b"\x01" * 500)
    small = jpeg(b"\x02" * 10)
    out = splitter.feed(big[:300]) + splitter.feed(big[300:] + small)
    assert out == [small]
    assert splitter.dropped == 1


def test_splitter_resyncs_after_a_broken_segment() -> None:
    splitter = JpegSplitter(1 << 20)
    good = jpeg(b"\x05")
    assert splitter.feed(b"\xff\xd8\x00\x00\x00" + good) == [good]
    assert splitter.dropped == 1
    # Many false starts in one read: skipped one after another (no recursion per start).
    assert splitter.feed(b"\xff\xd8\x00" * 100_000 + good) == [good]
    assert splitter.dropped == 100_001


def test_options_refuse_what_ffmpeg_would_refuse() -> None:
    with pytest.raises(ValueError, match="fps"):
        CameraOptions(fps=0)
    with pytest.raises(ValueError, match="jpeg_quality"):
        CameraOptions(jpeg_quality=1)
