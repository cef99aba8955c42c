"""The dashboard in a real headless Chromium, over 12 simulated printers.

Screenshots land in the test's temporary folder; with ``BAMBU_LAN_SCREENSHOTS=docs/screenshots``
they are also copied there (that is how the README's pictures are made).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from tests.web.browser import Browser, Page, chromium, chromium_path
from tests.web.farm_fixture import HTML_JOB, TOKEN, RunningFarm, running_farm

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[RunningFarm, Browser]]:
    chromium_path()  # skip (or fail under CI) before starting anything
    cert_dir = tmp_path_factory.mktemp("web-certs")
    history = tmp_path_factory.mktemp("web-history")
    async with running_farm(cert_dir, history_dir=history) as running, chromium() as browser:
        s = running.sims
        # A farm that looks like one: jobs at different points, a pause, an alert, one offline.
        s[0].model.start_print(layers=400, name=HTML_JOB, tray=0)
        s[1].model.start_print(layers=100, name="gearbox_housing", tray=1, layer_seconds=4)
        s[2].model.start_print(layers=400, name="phone_stand", tray=2)
        s[3].model.start_print(layers=300, name="drawer_front", tray=3)
        s[3].model.raise_hms("0300_0100_0001_0007")
        s[4].model.start_print(layers=2, name="calibration_cube", layer_seconds=1)
        s[5].model.start_print(layers=300, name="lamp_shade")
        s[5].model.run_out_of_filament()
        s[6].model.start_print(layers=250, name="planter")
        s[9].model.start_print(layers=350, name="helmet_left")
        await s[11].stop()
        yield running, browser


def _copy_screenshot(path: Path) -> None:
    target = os.environ.get("BAMBU_LAN_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def _farm_page(page: Page, url: str) -> None:
    await page.goto(url)
    await page.wait_for("document.getElementById('live-status').dataset.live === 'open'")


def _card(serial: str) -> str:
    return f"document.querySelector('.card[data-serial=\"{serial}\"]')"


async def test_farm_page_shows_12_cards(env: tuple[RunningFarm, Browser], tmp_path: Path) -> None:
    running, browser = env
    page = await browser.new_page()
    await page.viewport(1440, 900)
    await _farm_page(page, running.url)
    # Wait until the scenario shows: the offline printer and the finished job.
    offline = running.sims[11].serial
    finished = running.sims[4].serial
    await page.wait_for(f"{_card(offline)}.dataset.cls === 'offline'")
    await page.wait_for(f"{_card(finished)}.dataset.cls === 'finished'", timeout=40)
    cards = await page.eval(
        "Array.from(document.querySelectorAll('.card')).map(c => {"
        " const r = c.getBoundingClientRect();"
        " return {name: c.querySelector('.name').textContent, w: r.width, h: r.height,"
        " hidden: c.hidden, cls: c.dataset.cls}; })"
    )
    assert len(cards) == 12
    assert sorted(c["name"] for c in cards) == sorted(running.names.values())
    assert all(c["w"] > 200 and c["h"] > 100 and not c["hidden"] for c in cards)
    summary = await page.eval(
        "Object.fromEntries(Array.from(document.querySelectorAll('[data-sum]'))"
        ".map(b => [b.dataset.sum, Number(b.textContent)]))"
    )
    groups = await page.eval("JSON.parse(document.getElementById('cards').dataset.groups)")
    assert summary["total"] == 12
    for group, members in groups.items():  # the summary line agrees with the cards
        assert summary[group] == sum(c["cls"] in members for c in cards), group
    assert summary["offline"] == 1
    # Camera pictures on the A1 and P1S cards (the X1C streams RTSPS: none on its card).
    a1, x1c = running.sims[1].serial, running.sims[10].serial
    await page.wait_for(f"{_card(a1)}.querySelector('.snap img').naturalWidth > 0")
    assert await page.eval(f"{_card(x1c)}.querySelector('.snap').hidden") is True
    assert await page.eval(f"{_card(running.sims[5].serial)}.dataset.cls") == "paused"
    assert await page.eval(f"{_card(running.sims[3].serial)}.dataset.cls") == "error"
    shot = await page.screenshot(tmp_path / "farm.png")
    width, height = _png_size(shot)
    assert width == 1440 and height >= 600
    _copy_screenshot(shot)

    # On a phone: one column, nothing wider than the screen.
    await page.viewport(390, 844, mobile=True)
    await page.goto(running.url)
    overflow = await page.eval("document.documentElement.scrollWidth")
    assert overflow <= 390
    phone = await page.screenshot(tmp_path / "farm-phone.png", full_page=False)
    _copy_screenshot(phone)
    assert not page.console_errors
    await page.close()


async def test_progress_changes_without_reload(env: tuple[RunningFarm, Browser]) -> None:
    running, browser = env
    serial = running.sims[1].serial
    page = await browser.new_page()
    await _farm_page(page, running.url)
    await page.eval("window.__sameDocument = true")
    before = await page.eval(f"Number({_card(serial)}.querySelector('progress').value)")
    after = await page.wait_for(
        f"Number({_card(serial)}.querySelector('progress').value) > {before}"
        f" && Number({_card(serial)}.querySelector('progress').value)",
        timeout=30,
    )
    assert after > before
    assert running.sims[1].model.state["mc_percent"] >= after  # the printer's own figure
    assert await page.eval("window.__sameDocument") is True  # no reload happened
    layer = await page.eval(f"{_card(serial)}.querySelector('[data-f=layer]').textContent")
    assert layer.endswith("/ 100")
    assert not page.console_errors
    await page.close()


async def _log_in(page: Page, url: str, next_path: str) -> None:
    await page.goto(f"{url}login?next={next_path}")
    loaded = page.next_event("Page.loadEventFired")
    await page.eval(
        f"document.querySelector('input[name=secret]').value = {json.dumps(TOKEN)};"
        "document.querySelector('form.login button').click()"
    )
    await asyncio.wait_for(loaded, 10)
    assert await page.eval("location.pathname") == next_path


async def test_pause_after_login(env: tuple[RunningFarm, Browser], tmp_path: Path) -> None:
    running, browser = env
    sim = running.sims[2]
    page = await browser.new_page()
    await page.viewport(1280, 900)
    await _log_in(page, running.url, f"/printer/{sim.serial}")
    await page.wait_for("document.getElementById('live-status').dataset.live === 'open'")
    assert sim.model.gcode_state == "RUNNING"
    # The live camera: frames of the MJPEG stream arrive in the page.
    await page.wait_for("document.querySelector('.camera img').naturalWidth > 0")
    await page.eval("document.getElementById('btn-pause').click()")
    answer = await page.wait_for(
        "document.getElementById('answer').textContent.startsWith('pause: accepted')"
        " && document.getElementById('answer').textContent"
    )
    assert "confirmed" in answer
    assert sim.model.gcode_state == "PAUSE"
    await page.wait_for(f"{_card(sim.serial)}.querySelector('.badge').textContent === 'Paused'")
    shot = await page.screenshot(tmp_path / "printer.png")
    _copy_screenshot(shot)

    # The farm page shows the card paused too.
    await _farm_page(page, running.url)
    assert await page.eval(f"{_card(sim.serial)}.dataset.cls") == "paused"

    # Resume from the printer page; the page reports the printer's answer.
    await page.goto(f"{running.url}printer/{sim.serial}")
    await page.eval("document.getElementById('btn-resume').click()")
    await page.wait_for(
        "document.getElementById('answer').textContent.startsWith('resume: accepted')"
    )
    assert sim.model.gcode_state == "RUNNING"
    assert not page.console_errors
    await page.close()


async def test_without_login_no_controls_and_forged_post_refused(
    env: tuple[RunningFarm, Browser],
) -> None:
    running, browser = env
    sim = running.sims[3]
    page = await browser.new_page()
    await page.goto(f"{running.url}printer/{sim.serial}")
    assert await page.eval("document.getElementById('controls')") is None
    assert await page.eval("document.querySelectorAll('form[data-control]').length") == 0
    assert await page.eval("document.body.textContent.includes('Log in')")

    # A logged-in operator opens a page from another origin that posts a control form.
    control = f"{running.url}printer/{sim.serial}/control"
    evil = web.Application()

    async def attack(_: web.Request) -> web.Response:
        return web.Response(
            content_type="text/html",
            text=(
                f'<form id="f" method="post" action="{control}">'
                '<input name="action" value="stop"><input name="confirm" value="yes"></form>'
                "<script>document.getElementById('f').submit()</script>"
            ),
        )

    evil.router.add_get("/", attack)
    runner = web.AppRunner(evil)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        evil_port = runner.addresses[0][1]
        await _log_in(page, running.url, "/")
        await page.send("Network.enable")
        await page.send("Page.navigate", url=f"http://127.0.0.1:{evil_port}/")
        response = await page.response_to(control)
        assert response["status"] == 403
    finally:
        await runner.cleanup()
    assert sim.model.gcode_state == "RUNNING"

    # Without a session at all: refused, whatever the form says.
    async with (
        aiohttp.ClientSession() as http,
        http.post(control, data={"action": "stop", "confirm": "yes"}) as resp,
    ):
        assert resp.status == 403
    assert sim.model.gcode_state == "RUNNING"
    await page.close()


async def test_html_job_name_renders_as_text(env: tuple[RunningFarm, Browser]) -> None:
    running, browser = env
    page = await browser.new_page()
    await _farm_page(page, running.url)
    # Server-rendered: the job started before the page was opened.
    first = running.sims[0].serial
    name = f"{_card(first)}.querySelector('.jobname')"
    assert await page.eval(f"{name}.textContent") == HTML_JOB
    assert await page.eval(f"{name}.childElementCount") == 0
    # Pushed live: a job started while the page is open.
    live = running.sims[7]
    live_name = HTML_JOB.replace("Benchy", "Live")
    live.model.start_print(layers=50, name=live_name)
    await page.wait_for(
        f"{_card(live.serial)}.querySelector('.jobname').textContent === {json.dumps(live_name)}"
    )
    assert await page.eval(f"{_card(live.serial)}.querySelector('.jobname').childElementCount") == 0
    assert await page.eval("document.querySelectorAll('.card img[src=x]').length") == 0
    assert await page.eval("window.__pwned") is None
    await page.close()


async def test_stop_asks_for_confirmation(env: tuple[RunningFarm, Browser]) -> None:
    running, browser = env
    sim = running.sims[9]
    page = await browser.new_page()
    await _log_in(page, running.url, f"/printer/{sim.serial}")
    assert sim.model.gcode_state == "RUNNING"
    # Dismissed: nothing is sent.
    dialog = page.next_event("Page.javascriptDialogOpening")
    clicked = asyncio.ensure_future(page.eval("document.getElementById('btn-stop').click()"))
    opened = await asyncio.wait_for(dialog, 10)
    assert opened["type"] == "confirm" and "Stop the print on Bay 10" in opened["message"]
    await page.send("Page.handleJavaScriptDialog", accept=False)
    await clicked
    assert await page.eval("document.getElementById('answer').hidden") is True
    assert sim.model.gcode_state == "RUNNING"
    # Accepted: the printer stops, and the page says what it answered.
    dialog = page.next_event("Page.javascriptDialogOpening")
    clicked = asyncio.ensure_future(page.eval("document.getElementById('btn-stop').click()"))
    await asyncio.wait_for(dialog, 10)
    await page.send("Page.handleJavaScriptDialog", accept=True)
    await clicked
    await page.wait_for(
        "document.getElementById('answer').textContent.startsWith('stop: accepted')"
    )
    assert sim.model.gcode_state in ("FAILED", "IDLE")
    await page.close()


async def test_filter_and_sort(env: tuple[RunningFarm, Browser]) -> None:
    running, browser = env
    s = running.sims
    page = await browser.new_page()
    await _farm_page(page, running.url)
    # The farm as the fixture made it, as this page knows it: one pause (Bay 06), the alert
    # (Bay 04), Bay 12 offline. On a loaded machine the page may not know it yet, and a pause
    # another test just resumed may still show.
    await page.wait_for(
        "Array.from(document.querySelectorAll('.card')).filter(c => c.dataset.cls === 'paused')"
        f".length === 1 && {_card(s[5].serial)}.dataset.cls === 'paused'"
        f" && {_card(s[3].serial)}.dataset.cls === 'error'"
        f" && {_card(s[11].serial)}.dataset.cls === 'offline'",
        timeout=60,
    )

    async def use(q: str, show: str, sort: str) -> list[tuple[str, float]]:
        """The visible cards in their order, with their progress, read in the same turn as
        the filter is applied (live progress moves on between two reads)."""
        shown = await page.eval(
            "(() => { const t = document.getElementById('tools');"
            f" t.elements.q.value = {json.dumps(q)}; t.elements.show.value = {json.dumps(show)};"
            f" t.elements.sort.value = {json.dumps(sort)};"
            " t.dispatchEvent(new Event('input'));"
            " return Array.from(document.querySelectorAll('.card')).filter(c => !c.hidden)"
            ".sort((a, b) => Number(a.style.order) - Number(b.style.order))"
            ".map(c => [c.querySelector('.name').textContent, Number(c.dataset.progress)]); })()"
        )
        return [(name, progress) for name, progress in shown]

    def names(shown: list[tuple[str, float]]) -> list[str]:
        return [name for name, _ in shown]

    assert names(await use("", "paused", "name")) == ["Bay 06"]
    assert await page.eval("location.search") == "?show=paused"
    assert names(await use("bay 1", "all", "name")) == ["Bay 10", "Bay 11", "Bay 12"]
    by_state = names(await use("", "all", "state"))
    assert by_state[-1] == "Bay 12"  # offline last
    assert by_state.index("Bay 04") < by_state.index("Bay 06")  # the alert before the pause
    by_progress = await use("", "all", "progress")
    progress = [value for _, value in by_progress]
    assert len(by_progress) == 12 and progress == sorted(progress, reverse=True)
    # The server renders the same order and filter from the address (links, no script).
    async with aiohttp.ClientSession() as http, http.get(f"{running.url}?sort=state") as resp:
        html = await resp.text()
    assert html.rindex('data-name="Bay 12"') > html.rindex('data-name="Bay 04"')
    await page.close()
