"""``camera serve``'s HTTP side: MJPEG to many viewers from one upstream, snapshots, errors."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.camera.support import (
    camera,
    eventually,
    get,
    jpeg_size,
    read_parts,
    request,
    require_tool,
)

from bambu_lan.camera_http import BOUNDARY, MjpegServer
from bambu_lan.errors import TrustError
from bambu_lan.sim import SimulatedPrinter
from bambu_lan.trust import KnownPrinters, TrustConfig


@pytest.fixture
async def server(cam_sim: SimulatedPrinter) -> AsyncIterator[MjpegServer]:
    async with MjpegServer(camera(cam_sim), host="127.0.0.1", port=0, max_viewers=30) as srv:
        yield srv


async def test_snapshot_jpg(server: MjpegServer) -> None:
    status, headers, body = await get(server, "/snapshot.jpg")
    assert status == 200
    assert headers["content-type"] == "image/jpeg"
    assert int(headers["content-length"]) == len(body)
    assert jpeg_size(body) == (1280, 720)


async def test_twenty_viewers_share_one_upstream(
    server: MjpegServer, cam_sim: SimulatedPrinter
) -> None:
    assert cam_sim.camera is not None
    viewers = [
        await request(server, b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(20)
    ]
    try:
        for _, _, status, headers in viewers:
            assert status == 200
            assert headers["content-type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        batches = await asyncio.gather(*(read_parts(r, 3) for r, _, _, _ in viewers))
        for batch in batches:
            assert all(jpeg_size(part) == (1280, 720) for part in batch)
        assert server.stats.viewers == 20
        assert cam_sim.camera.viewers == 1
        assert cam_sim.camera.stats.logins_received == 1
    finally:
        for _, writer, _, _ in viewers:
            writer.close()
    await eventually(lambda: server.stats.viewers == 0)


async def test_viewers_beyond_the_limit_are_refused(cam_sim: SimulatedPrinter) -> None:
    async with MjpegServer(camera(cam_sim), port=0, max_viewers=1) as srv:
        reader, writer, status, _ = await request(srv, b"GET /stream.mjpg HTTP/1.1\r\n\r\n")
        assert status == 200
        await read_parts(reader, 1)
        status2, _, body = await get(srv, "/stream.mjpg")
        writer.close()
    assert status2 == 503
    assert b"too many viewers" in body


async def test_a_viewer_that_stops_reading_does_not_hold_up_the_others(
    server: MjpegServer,
) -> None:
    _stalled_reader, stalled, _, _ = await request(server, b"GET /stream.mjpg HTTP/1.1\r\n\r\n")
    try:
        reader, writer, _, _ = await request(server, b"GET /stream.mjpg HTTP/1.1\r\n\r\n")
        parts = await read_parts(reader, 10)  # 10 frames while the other reads nothing
        assert len(parts) == 10
        writer.close()
    finally:
        stalled.close()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /nothing HTTP/1.1\r\n\r\n", 404),
        (b"POST /snapshot.jpg HTTP/1.1\r\n\r\n", 405),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 400),
    ],
)
async def test_bad_requests_get_clear_statuses(
    server: MjpegServer, raw: bytes, status: int
) -> None:
    reader, writer, got, _ = await request(server, raw)
    await reader.read()
    writer.close()
    assert got == status


async def test_head_and_index_page(server: MjpegServer) -> None:
    status, headers, body = await get(server, "/snapshot.jpg", "HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 1000
    status, headers, body = await get(server, "/")
    assert status == 200 and b"/stream.mjpg" in body
    assert headers["content-type"].startswith("text/html")


async def test_chromium_shows_the_stream(server: MjpegServer, tmp_path: object) -> None:
    """A real browser opens the page, whose <img> is the MJPEG stream, and draws a frame."""
    chromium = require_tool("chromium")
    from pathlib import Path

    shot = Path(str(tmp_path)) / "page.png"
    args = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", f"--user-data-dir={Path(str(tmp_path)) / 'profile'}",
        "--window-size=1280,800", "--virtual-time-budget=3000", f"--screenshot={shot}",
        f"{server.url}/",
    ]  # fmt: skip
    env = dict(os.environ, HOME=str(tmp_path))
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    try:
        async with asyncio.timeout(60):
            _, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert shot.exists(), err.decode(errors="replace")[-2000:]
    assert server.stats.viewers_total >= 1
    assert server.stats.frames_written >= 1
    from PIL import Image

    with Image.open(shot) as image:
        # The frame's orange nozzle tip is on the page: the browser decoded a JPEG.
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    orange = sum(n for n, (r, g, b) in colors if r > 200 and 80 < g < 160 and b < 90)
    assert orange > 50


async def test_a_camera_failing_for_good_ends_the_viewers_cleanly(
    cam_sim: SimulatedPrinter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The printer's identity changes while a viewer watches: the camera gives up for good.
    Each viewer's response ends with a log line; no handler dies with an unhandled error
    (it did: asyncio reported the viewer's task as never retrieved, with a traceback)."""
    assert cam_sim.camera is not None
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    pins = tmp_path / "pins"
    cam = camera(cam_sim, trust=TrustConfig(known_printers=pins))  # pinned on first use
    caplog.set_level(logging.INFO, logger="bambu_lan.camera_http")
    try:
        srv = MjpegServer(cam, port=0)
        await srv.start()
        try:
            reader, writer, status, _ = await request(srv, b"GET /stream.mjpg HTTP/1.1\r\n\r\n")
            assert status == 200
            await read_parts(reader, 1)
            KnownPrinters(pins).pin(cam_sim.serial, "11" * 32)  # as if the printer changed
            cam_sim.camera.drop_viewers()
            with pytest.raises(TrustError):
                async with asyncio.timeout(15):
                    await srv.serve_forever()  # what `camera serve` turns into error + hint
            async with asyncio.timeout(15):
                while await reader.read(65536):
                    pass  # the viewer's response ends
            writer.close()
            await eventually(lambda: srv.stats.viewers == 0)
        finally:
            await srv.close()
        gc.collect()  # a task that died unhandled is reported when it is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert unhandled == []
    ended = [r.getMessage() for r in caplog.records if "the stream ended" in r.getMessage()]
    assert len(ended) == 1 and "changed since it was pinned" in ended[0]
