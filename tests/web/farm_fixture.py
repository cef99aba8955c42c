"""Twelve simulated printers (A1, P1S, X1C) watched by a Farm, with the dashboard in front."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bambu_lan import Farm, PrinterConfig, Secret
from bambu_lan.serve.web.server import DashboardServer
from bambu_lan.serve.web.source import FarmSource
from bambu_lan.sim import SimFleet, SimulatedPrinter
from bambu_lan.trust import TrustConfig

TOKEN = "correct-horse-battery"
HTML_JOB = '<img src=x onerror="window.__pwned=1"><b>Benchy</b> & "friends"'


@dataclass
class RunningFarm:
    sims: list[SimulatedPrinter]
    farm: Farm
    source: FarmSource
    server: DashboardServer
    names: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    def sim(self, index: int) -> SimulatedPrinter:
        return self.sims[index]


@contextlib.asynccontextmanager
async def running_farm(
    cert_dir: Path,
    *,
    secret: str | None = TOKEN,
    time_scale: float = 4.0,
    layout: tuple[tuple[str, int], ...] = (("a1", 6), ("p1s", 3), ("x1c", 3)),
) -> AsyncIterator[RunningFarm]:
    """By default 12 printers: 6 A1, 3 P1S, 3 X1C, named "Bay 01" .. "Bay 12", all idle and
    connected, the dashboard in front of them."""
    async with contextlib.AsyncExitStack() as stack:
        sims: list[SimulatedPrinter] = []
        for i, (model, count) in enumerate(layout):
            seed = 10 * (i + 1)
            fleet = SimFleet(
                count,
                model,
                host_mode="port",
                cert_dir=cert_dir,
                time_scale=time_scale,
                seed=seed,
            )
            await stack.enter_async_context(fleet)
            sims.extend(fleet.printers)
        configs = [
            PrinterConfig(
                host=p.host,
                serial=p.serial,
                access_code=Secret(p.access_code),
                port=p.port,
                trust=TrustConfig(ca_file=p.ca_path),
            )
            for p in sims
        ]
        names = {p.serial: f"Bay {i + 1:02d}" for i, p in enumerate(sims)}
        farm = await stack.enter_async_context(Farm(configs))
        await farm.wait_for_states(timeout=60)
        source = FarmSource(farm, names, interval=0.25)
        stack.push_async_callback(source.aclose)
        server = await stack.enter_async_context(
            DashboardServer(source, secret=Secret(secret) if secret else None, interval=0.5)
        )
        yield RunningFarm(sims, farm, source, server, names)
