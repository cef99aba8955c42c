"""The dashboard's camera on an X1C: its card picture and live view over RTSPS through the
library's shared camera, against the simulator's RTSPS camera (real H.264 from libx264) and
the real ffmpeg; without ffmpeg, the page and the endpoints say so."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from tests.camera.support import (
    eventually,
    jpeg_size,
    looks_like_the_drawn_frame,
    require_tool,
    server,
)
from tests.web.browser import Page, chromium, chromium_path
from tests.web.farm_fixture import RunningFarm, running_farm

from bambu_lan.camera import CameraOptions, open_streams, shared_stream
from bambu_lan.camera_rtsp_stream import RtspsCameraStream
from bambu_lan.serve.web import app

#: The live view's options: a short linger, so the test sees the session stop.
OPTIONS = CameraOptions(silence_timeout=3.0, connect_timeout=5.0, fps=10, idle_linger=0.5)


@contextlib.asynccontextmanager
async def x1c_farm(cert_dir: Path) -> AsyncIterator[RunningFarm]:
    """``serve`` with its dashboard watching one simulated X1C whose RTSPS camera sends ten
    pictures a second."""
    require_tool("ffmpeg")  # the simulator's encoder and the library's decoder
    async with running_farm(cert_dir, layout=(("x1c", 1),), rtsps_interval=0.1) as running:
        running.web.camera_options = OPTIONS
        yield running


def _client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def gone(pid: int) -> bool:
    """The process has ended and was reaped (a zombie still has its /proc entry)."""
    return not os.path.exists(f"/proc/{pid}")


async def read_parts(resp: aiohttp.ClientResponse, count: int) -> list[bytes]:
    """``count`` JPEGs of a multipart/x-mixed-replace answer, by their Content-Length."""
    parts: list[bytes] = []
    while len(parts) < count:
        head = await resp.content.readuntil(b"\r\n\r\n")
        assert head.lstrip(b"\r\n").startswith(b"--bambulanframe")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        parts.append(await resp.content.readexactly(length))
    return parts


async def picture_shown(page: Page) -> None:
    """Wait until the live view's image shows a whole 1280x720 picture (its load event: a
    picture arriving changes nothing in the DOM for ``wait_for`` to see)."""
    script = (
        "new Promise(resolve => { const img = document.querySelector('img[data-live]');"
        " const done = () => !img.hidden && img.naturalWidth === 1280 && resolve(true);"
        " img.addEventListener('load', done); done(); })"
    )
    assert await asyncio.wait_for(page.eval(script), 20) is True


async def test_x1c_card_picture_and_live_view(sim_cert_dir: Path) -> None:
    """The card's picture is the simulator's drawing, from one RTSPS session closed once it
    is taken; the live view streams it from one session and one ffmpeg, which Home
    Assistant's picture shares; after the page leaves and the linger, neither runs."""
    async with x1c_farm(sim_cert_dir) as running, _client() as http:
        sim = running.sims[0]
        camera = server(sim)
        base = f"{running.url}printer/{sim.serial}"
        assert running.live.cards[sim.serial]["camera"] is True
        assert running.live.cards[sim.serial]["camera_note"] == ""

        async def card_picture() -> bytes:
            async with http.get(f"{base}/snapshot.jpg") as resp:
                assert resp.status == 200 and resp.content_type == "image/jpeg"
                return await resp.read()

        # The card's picture and Home Assistant's, asked for at once: one session for both.
        watched = running.daemon.hub.printers[sim.serial]
        jpeg, frame = await asyncio.gather(card_picture(), watched.camera_picture(10.0))
        assert jpeg == frame.jpeg
        assert jpeg_size(jpeg) == (1280, 720)
        assert looks_like_the_drawn_frame(jpeg, sim) < 3  # a grey or green frame: ~40+
        assert open_streams() == 0  # a picture leaves no lasting session or ffmpeg
        await eventually(lambda: camera.viewers == 0)
        assert camera.stats.plays == 1

        async with http.get(base) as resp:
            assert f'src="/printer/{sim.serial}/camera.mjpeg"' in await resp.text()
        async with http.get(f"{base}/camera.mjpeg") as resp:
            assert resp.status == 200 and resp.content_type == "multipart/x-mixed-replace"
            for part in await read_parts(resp, 3):
                assert jpeg_size(part) == (1280, 720)
                assert looks_like_the_drawn_frame(part, sim) < 3
            stream = shared_stream(running.printer(0).config, sim.camera_port or 0)
            assert isinstance(stream, RtspsCameraStream)
            pid = stream.decoder_pid
            assert pid is not None
            # serve's other camera user rides on the same session and ffmpeg
            frame = await watched.camera_picture(5.0)
            assert jpeg_size(frame.jpeg) == (1280, 720)
            assert (camera.stats.plays, camera.viewers) == (2, 1)
            assert stream.stats.decoder_starts == 1
        await eventually(lambda: camera.viewers == 0 and open_streams() == 0 and gone(pid))
        assert stream.decoder_pid is None and not stream.session_open


async def test_x1c_without_ffmpeg_the_page_says_so(
    sim_cert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ffmpeg on PATH: the live view's image is hidden and the page says what to install
    (from the live stream, after the image's request failed); the farm card shows that
    instead of a picture; the endpoints answer it; nothing connects to the printer."""
    chromium_path()
    async with x1c_farm(sim_cert_dir) as running, chromium() as browser, _client() as http:
        monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no ffmpeg anywhere
        sim = running.sims[0]
        base = f"{running.url}printer/{sim.serial}"
        page = await browser.new_page()
        await page.goto(base)
        live = "document.querySelector('img[data-live]')"
        note = "document.querySelector('.camnote')"
        await page.wait_for(f"{live}.hidden && {note}.textContent.includes('ffmpeg')")
        text = await page.eval(f"{note}.textContent")
        assert "ffmpeg is not installed" in text and "apt install ffmpeg" in text
        assert await page.eval(f"{live}.getAttribute('src')") is None

        await page.goto(running.url)
        card = f"document.querySelector('.card[data-serial=\"{sim.serial}\"]')"
        assert await page.eval(f"{card}.querySelector('.snap').hidden") is True
        card_note = f"{card}.querySelector('.camnote')"
        await page.wait_for(
            f"{card_note}.textContent.includes('ffmpeg is not installed')"
            f" && getComputedStyle({card_note}).display !== 'none'"
        )

        for path in ("snapshot.jpg", "camera.mjpeg"):
            async with http.get(f"{base}/{path}") as resp:
                assert resp.status == 503 and resp.content_type == "text/plain"
                assert "ffmpeg is not installed" in await resp.text()
        assert server(sim).stats.connections == 0
        assert open_streams() == 0


async def test_x1c_live_view_switched_off_and_on_in_the_page(sim_cert_dir: Path) -> None:
    """The printer page's live view shows pictures; the printer's live view switched off: the
    picture goes (no frozen frame), the page says why, and the session and ffmpeg stop (not
    retried while nobody sees a picture); switched on again: the pictures come back."""
    chromium_path()
    async with x1c_farm(sim_cert_dir) as running, chromium() as browser:
        sim = running.sims[0]
        camera = server(sim)
        page = await browser.new_page()
        await page.goto(f"{running.url}printer/{sim.serial}")
        live = "document.querySelector('img[data-live]')"
        note = "document.querySelector('.camnote')"
        await picture_shown(page)
        stream = shared_stream(running.printer(0).config, sim.camera_port or 0)
        assert isinstance(stream, RtspsCameraStream)
        pid = stream.decoder_pid
        assert pid is not None

        sim.set_live_view(False)
        await page.wait_for(f"{live}.hidden && {note}.textContent.includes('switched off')")
        assert "LAN Mode Liveview" in await page.eval(f"{note}.textContent")
        await eventually(lambda: open_streams() == 0 and camera.viewers == 0 and gone(pid))

        sim.set_live_view(True)
        await picture_shown(page)
        assert await page.eval(f"{note}.textContent") == ""
        assert camera.stats.plays == 2


async def test_a_live_view_left_while_the_camera_is_away_lets_it_go(
    sim_cert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The camera goes away during a live view (its session is retried); the viewer closes
    the page: no picture will come to find that out at a write, yet the camera is let go."""
    monkeypatch.setattr(app, "LIVE_VIEWER_CHECK", 0.2)
    async with x1c_farm(sim_cert_dir) as running, _client() as http:
        sim = running.sims[0]
        async with http.get(f"{running.url}printer/{sim.serial}/camera.mjpeg") as resp:
            await read_parts(resp, 1)
            await server(sim).stop()  # every session ends; reconnects are refused
            assert open_streams() == 1
        await eventually(lambda: open_streams() == 0)
