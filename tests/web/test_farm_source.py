"""The dashboard without serve: ``DashboardServer(FarmSource(farm))`` in a script's own loop."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from bambu_lan import Farm, PrinterConfig, Secret
from bambu_lan.serve.web.server import DashboardServer
from bambu_lan.serve.web.source import FarmSource, HistoryQuery
from bambu_lan.sim import SimFleet
from bambu_lan.trust import TrustConfig


async def test_dashboard_over_a_plain_farm(sim_cert_dir: Path) -> None:
    async with SimFleet(2, "a1", host_mode="port", cert_dir=sim_cert_dir, seed=5) as fleet:
        configs = [
            PrinterConfig(
                host=p.host,
                serial=p.serial,
                access_code=Secret(p.access_code),
                port=p.port,
                trust=TrustConfig(ca_file=p.ca_path),
            )
            for p in fleet.printers
        ]
        async with Farm(configs) as farm:
            await farm.wait_for_states(timeout=30)
            source = FarmSource(farm, {fleet.printers[0].serial: "Left"}, interval=0.1)
            try:
                async with (
                    DashboardServer(source, secret=Secret("s3cret"), interval=0.1) as server,
                    aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
                ):
                    assert server.url.startswith("http://127.0.0.1:")
                    async with http.get(server.url) as resp:
                        page = await resp.text()
                    assert page.count('class="card ') == 2 and ">Left<" in page
                    async with http.post(
                        f"{server.url}login", data={"secret": "s3cret"}, allow_redirects=False
                    ) as resp:
                        assert resp.status == 303
                    serial = fleet.printers[1].serial
                    async with http.get(f"{server.url}printer/{serial}") as resp:
                        match = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
                    assert match
                    async with http.post(
                        f"{server.url}printer/{serial}/control",
                        data={"action": "light", "value": "on", "csrf": match[1]},
                        headers={"Accept": "application/json"},
                    ) as resp:
                        answer = await resp.json()
                    assert answer == {
                        "ok": True,
                        "action": "light",
                        "answer": "accepted, confirmed by the printer",
                    }
                    fleet.printers[0].model.start_print(layers=3, name="from_a_script")
                    sub = server.live.subscribe(fleet.printers[0].serial, server.live.tick)
                    while server.live.cards[fleet.printers[0].serial]["job"] != "from_a_script":
                        await sub.queue.get()
                    jobs = await source.history(HistoryQuery(serial=fleet.printers[0].serial))
                    assert [j.name for j in jobs] == ["from_a_script"]
            finally:
                await source.aclose()
