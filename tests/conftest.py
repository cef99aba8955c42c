"""Fixtures shared by every test: simulated printers on loopback.

* the user's cache directory is replaced by a temporary one for the whole session;
* ``sim_cert_dir`` (session): one certificate directory for the whole run, so RSA keys are
  generated once, not per test.
* ``sim``: a started ``SimulatedPrinter`` (A1) on 127.0.0.1, a free port, time x20.
* ``sim_factory``: an async factory for other models or options; everything it made is
  stopped at teardown.
* ``sim_thread``: a started A1 on a background thread (``SimThread``), for blocking code.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bambu_lan.sim import SimThread, SimulatedPrinter
from bambu_lan.sim.certs import CertAuthority

#: Simulated seconds per real second in tests: idle reports every 0.1 s instead of 2 s.
SIM_TIME_SCALE = 20.0


@pytest.fixture(scope="session", autouse=True)
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the tests out of the user's cache: the simulator's default cert dir lives there."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if saved is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture(scope="session")
def sim_cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A certificate directory shared by the whole test session (keys made once)."""
    cert_dir = tmp_path_factory.mktemp("sim-certs")
    CertAuthority.load_or_create(cert_dir)
    return cert_dir


@pytest.fixture
async def sim(sim_cert_dir: Path) -> AsyncIterator[SimulatedPrinter]:
    """A started simulated A1 on 127.0.0.1 (free port), time x20, strict rules."""
    async with SimulatedPrinter(
        "a1", cert_dir=sim_cert_dir, time_scale=SIM_TIME_SCALE, seed=1
    ) as printer:
        yield printer


SimFactory = Callable[..., Awaitable[SimulatedPrinter]]


@pytest.fixture
async def sim_factory(sim_cert_dir: Path) -> AsyncIterator[SimFactory]:
    """``await sim_factory(model="p1s", max_sessions=2, ...)``: more simulated printers.

    Keyword arguments go to ``SimulatedPrinter``; defaults: 127.0.0.1, a free port, the
    shared certificate directory, time x20. All are stopped at teardown.
    """
    started: list[SimulatedPrinter] = []

    async def make(model: str = "a1", **kwargs: Any) -> SimulatedPrinter:
        kwargs.setdefault("cert_dir", sim_cert_dir)
        kwargs.setdefault("time_scale", SIM_TIME_SCALE)
        printer = SimulatedPrinter(model, **kwargs)
        await printer.start()
        started.append(printer)
        return printer

    yield make
    for printer in started:
        await printer.stop()


@pytest.fixture
def sim_thread(sim_cert_dir: Path) -> Iterator[SimThread[SimulatedPrinter]]:
    """A started simulated A1 on its own loop thread; use ``.target`` for the printer and
    ``.call(...)`` / ``.run(...)`` to act on it from blocking code."""
    printer = SimulatedPrinter("a1", cert_dir=sim_cert_dir, time_scale=SIM_TIME_SCALE, seed=1)
    with SimThread(printer) as running:
        yield running
