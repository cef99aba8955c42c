"""The dashboard over plain HTTP, against simulated printers: safety, history, the stream."""

from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path

import aiohttp
import orjson
import pytest
from tests.web.farm_fixture import TOKEN, RunningFarm, running_farm

from bambu_lan import EventKind, Secret
from bambu_lan.serve.settings import ServeSettings
from bambu_lan.serve.web import create_sink
from bambu_lan.serve.web.auth import how_to_log_in

SMALL = (("a1", 2),)


def _client() -> aiohttp.ClientSession:
    # The dashboard runs on 127.0.0.1: aiohttp's jar keeps cookies of IP hosts only when unsafe.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _login(http: aiohttp.ClientSession, running: RunningFarm, serial: str) -> str:
    async with http.post(
        f"{running.url}login", data={"secret": TOKEN, "next": "/"}, allow_redirects=False
    ) as resp:
        assert resp.status == 303
    async with http.get(f"{running.url}printer/{serial}") as resp:
        page = await resp.text()
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token on the printer page after logging in"
    return match.group(1)


async def test_read_only_without_a_secret(
    sim_cert_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bambu_lan.serve.web")
    async with running_farm(sim_cert_dir, secret=None, layout=SMALL) as running, _client() as http:
        sim = running.sims[0]
        sim.model.start_print(layers=300, name="read_only")
        async with http.get(f"{running.url}printer/{sim.serial}") as resp:
            page = await resp.text()
        assert resp.status == 200
        assert "data-control" not in page and "Log in" not in page
        assert "web_token" in page  # says how to turn the controls on
        async with http.post(
            f"{running.url}login", data={"secret": "anything"}, allow_redirects=False
        ) as resp:
            assert resp.status == 403
            assert "bambu_lan_session" not in resp.cookies
        async with http.post(
            f"{running.url}printer/{sim.serial}/control", data={"action": "pause"}
        ) as resp:
            assert resp.status == 403
        assert sim.model.gcode_state != "PAUSE"
    # The first run says how to turn the controls on, with a fresh token to paste.
    started = [r.getMessage() for r in caplog.records if r.name == "bambu_lan.serve.web"]
    assert any("read-only" in m and 'web_token = "' in m for m in started), started
    assert how_to_log_in(False, "u") != how_to_log_in(False, "u")  # a new token each time


def test_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAMBU_WEB_TOKEN", "from-env")
    sink = create_sink(ServeSettings(http_port=0))
    assert sink.secret == Secret("from-env")
    configured = create_sink(ServeSettings(http_port=0, web_token=Secret("from-file")))
    assert configured.secret == Secret("from-file")  # the config file wins
    monkeypatch.delenv("BAMBU_WEB_TOKEN")
    assert create_sink(ServeSettings(http_port=0)).secret is None
    assert "from-env" not in repr(sink.secret)


async def test_forged_and_malformed_controls_are_refused(sim_cert_dir: Path) -> None:
    async with running_farm(sim_cert_dir, layout=SMALL) as running, _client() as http:
        sim = running.sims[0]
        sim.model.start_print(layers=300, name="guarded")
        control = f"{running.url}printer/{sim.serial}/control"
        # No session.
        async with (
            aiohttp.ClientSession() as stranger,
            stranger.post(control, data={"action": "pause"}) as resp,
        ):
            assert resp.status == 403
        # Wrong secret: no session either.
        async with http.post(
            f"{running.url}login", data={"secret": "guess"}, allow_redirects=False
        ) as resp:
            assert resp.status == 403
        csrf = await _login(http, running, sim.serial)
        # A session, but no token, a wrong one, or a foreign origin.
        for data, headers in (
            ({"action": "pause"}, {}),
            ({"action": "pause", "csrf": "not-the-token"}, {}),
            ({"action": "pause", "csrf": csrf}, {"Origin": "http://evil.test"}),
        ):
            async with http.post(control, data=data, headers=headers) as resp:
                assert resp.status == 403, (data, headers)
        assert sim.model.gcode_state == "RUNNING"
        # Bad input is a clear 400.
        for data in (
            {"action": "stop", "csrf": csrf},  # no confirmation
            {"action": "launch", "csrf": csrf},
            {"action": "speed", "value": "9", "csrf": csrf},
            {"action": "light", "value": "maybe", "csrf": csrf},
        ):
            async with http.post(control, data=data) as resp:
                assert resp.status == 400, data
        assert sim.model.gcode_state == "RUNNING"
        # The real thing, without JavaScript: a redirect back with the printer's answer.
        async with http.post(
            control, data={"action": "light", "value": "on", "csrf": csrf}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
            assert "accepted" in resp.headers["Location"]
        assert sim.model.state["lights_report"][0]["mode"] == "on"
        # A refusal is reported, not hidden: Developer Mode off.
        sim.model.set_dev_mode(False)
        async with http.post(
            control,
            data={"action": "speed", "value": "3", "csrf": csrf},
            headers={"Accept": "application/json"},
        ) as resp:
            answer = await resp.json()
        assert answer["ok"] is False and "Developer Mode" in answer["answer"]
        # Logged out: the session is gone.
        async with http.post(f"{running.url}logout", data={"csrf": csrf}) as resp:
            assert resp.status == 200
        async with http.post(control, data={"action": "pause", "csrf": csrf}) as resp:
            assert resp.status == 403


async def test_pages_never_show_the_access_code_and_send_a_strict_policy(
    sim_cert_dir: Path,
) -> None:
    async with running_farm(sim_cert_dir, layout=SMALL) as running, _client() as http:
        sim = running.sims[0]
        await _login(http, running, sim.serial)
        bodies: list[str] = []
        for path in ("", f"printer/{sim.serial}", "history", "history.csv", "login"):
            async with http.get(f"{running.url}{path}") as resp:
                assert resp.status == 200, path
                bodies.append(await resp.text())
                if path != "history.csv":
                    policy = resp.headers["Content-Security-Policy"]
                    assert "default-src 'self'" in policy and "script-src 'self'" in policy
        async with http.get(f"{running.url}events") as resp:
            await resp.content.readuntil(b"\n\n")  # retry: ...
            first = await resp.content.readuntil(b"\n\n")  # every card
            bodies.append(first.decode())
            assert sim.serial in bodies[-1]
        for body in bodies:
            for p in running.sims:
                assert p.access_code not in body
        # Nothing from the internet: no absolute URLs in the pages or the script.
        async with http.get(f"{running.url}static/dashboard.js") as resp:
            script = await resp.text()
            assert resp.status == 200 and "javascript" in resp.headers["Content-Type"]
        for body in [*bodies, script]:
            assert not re.search(r"(src|href)=\"(https?:)?//", body)
            assert "https://" not in script and "http://" not in script


async def test_history_page_totals_and_csv(sim_cert_dir: Path, tmp_path: Path) -> None:
    async with (
        running_farm(sim_cert_dir, layout=SMALL, time_scale=20, history_dir=tmp_path) as running,
        _client() as http,
    ):
        first, second = running.sims
        first.model.start_print(layers=2, name="=HYPERLINK(evil)", layer_seconds=1)
        second.model.start_print(layers=50, name="<i>doomed</i>")
        second.model.fail()  # cancelled by default
        await running.probe.wait_for(first.serial, EventKind.JOB_FINISHED)
        await running.probe.wait_for(second.serial, EventKind.JOB_CANCELLED)
        async with http.get(f"{running.url}history") as resp:
            waiting = await resp.text()  # kept by serve, maybe not yet in the database
        assert re.search(r'id="total-jobs">2<', waiting)
        await running.history.flush()
        assert not running.history.pending and running.history.written == 2
        async with http.get(f"{running.url}history") as resp:
            page = await resp.text()  # now from serve's SQLite database
        assert "&lt;i&gt;doomed&lt;/i&gt;" in page and "<i>doomed" not in page
        assert re.search(r'id="total-jobs">2<', page)
        assert "50 %" in page  # one of two jobs finished
        async with http.get(f"{running.url}history?outcome=cancelled") as resp:
            failed_page = await resp.text()
        assert "doomed" in failed_page and "HYPERLINK" not in failed_page
        async with http.get(f"{running.url}history.csv?printer={first.serial}") as resp:
            assert resp.content_type == "text/csv"
            rows = list(csv.reader(io.StringIO(await resp.text())))
        assert rows[0][:3] == ["printer", "serial", "job"]
        assert len(rows) == 2
        assert rows[1][2] == "'=HYPERLINK(evil)"  # a spreadsheet will not run it
        assert rows[1][7] == "finished"


@pytest.mark.parametrize("reconnect", [False, True])
async def test_stream_catches_up_from_the_rendered_tick(
    sim_cert_dir: Path, reconnect: bool
) -> None:
    async with running_farm(sim_cert_dir, layout=SMALL) as running, _client() as http:
        live = running.live
        tick = live.tick
        sim = running.sims[1]
        sim.model.start_print(layers=300, name="late")
        # Wait until the change went out in a tick after the page's.
        while live.cards[sim.serial]["job"] != "late":
            await live_changed(running)
        header = {"Last-Event-ID": str(tick)} if reconnect else {}
        query = "" if reconnect else f"&since={tick}"
        async with http.get(f"{running.url}events?x=1{query}", headers=header) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            assert await resp.content.readuntil(b"\n\n") == b"retry: 2000\n\n"
            message = await resp.content.readuntil(b"\n\n")
        data = orjson.loads(message.split(b"data: ", 1)[1])
        assert data["cards"][sim.serial]["job"] == "late"


async def live_changed(running: RunningFarm) -> None:
    """Wait for the next tick that sent something (a page of our own listening)."""
    sub = running.live.subscribe(None, running.live.tick)
    try:
        await sub.queue.get()
    finally:
        running.live.unsubscribe(sub)


async def test_camera_snapshot_and_live_stream(sim_cert_dir: Path) -> None:
    layout = (("a1", 1), ("x1c", 1))
    async with running_farm(sim_cert_dir, layout=layout) as running, _client() as http:
        a1, x1c = running.sims
        async with http.get(f"{running.url}printer/{a1.serial}/snapshot.jpg") as resp:
            assert resp.status == 200 and resp.content_type == "image/jpeg"
            assert (await resp.read())[:2] == b"\xff\xd8"
        async with http.get(f"{running.url}printer/{a1.serial}") as resp:
            assert "camera.mjpeg" in await resp.text()
        async with http.get(f"{running.url}printer/{a1.serial}/camera.mjpeg") as resp:
            assert resp.content_type == "multipart/x-mixed-replace"
            frames = 0
            while frames < 2:  # two pictures through the one shared upstream
                part = await resp.content.readuntil(b"\r\n\r\n")
                assert part.lstrip(b"\r\n").startswith(b"--bambulanframe")
                length = int(part.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                assert (await resp.content.readexactly(length))[:2] == b"\xff\xd8"
                frames += 1
        # An X1C whose report says its live view is off (this one has no RTSPS camera): its
        # card and page say so, its endpoints answer why, and nothing connects to it.
        card = running.live.cards[x1c.serial]
        assert card["camera"] is False
        assert "live view is switched off" in card["camera_note"]
        for path in ("snapshot.jpg", "camera.mjpeg"):
            async with http.get(f"{running.url}printer/{x1c.serial}/{path}") as resp:
                assert resp.status == 503 and resp.content_type == "text/plain"
                assert "LAN Mode Liveview" in await resp.text()
        async with http.get(f"{running.url}printer/{x1c.serial}") as resp:
            page = await resp.text()
        assert "live view is switched off (ipcam.rtsp_url is &#34;disable&#34;)" in page
        assert '<img data-live="' in page and " hidden>" in page  # no broken picture


async def test_a_job_without_a_name_is_shown_by_its_file(sim_cert_dir: Path) -> None:
    """A job started from the printer's screen may have no name: the running row (and the
    history) fall back to its file, then to "unnamed job", never an empty cell."""
    from bambu_lan.serve.web.source import JobRecord

    async with running_farm(sim_cert_dir, layout=SMALL) as running, _client() as http:
        sim = running.sims[0]
        sim.model.start_print(layers=300, name="", file="nameless.gcode.3mf")
        await running.probe.wait_for(sim.serial, EventKind.JOB_STARTED)
        async with http.get(f"{running.url}printer/{sim.serial}") as resp:
            page = await resp.text()
    assert re.search(r"<tr><td>nameless\.gcode\.3mf</td>", page), page
    assert "<tr><td></td>" not in page
    record = JobRecord("s", "p", "", "", started_at=None, ended_at=None, outcome="running")
    assert record.label == "unnamed job"
