"""Fixtures shared by every test: simulated printers on loopback.

* the user's cache directory is replaced by a temporary one for the whole session;
* ``sim_cert_dir`` (session): one certificate directory for the whole run, so RSA keys are
  generated once, not per test.
* ``sim``: a started ``SimulatedPrinter`` (A1) on 127.0.0.1, a free port, time x20.
* ``sim_factory``: an async factory for other models or options; everything it made is
  stopped at teardown.
* ``sim_thread``: a started A1 on a background thread (``SimThread``), for blocking code.
* ``sim_profile``: the model those three simulate: ``"a1"``, or each of ``SIM_PROFILES`` in
  turn for a test marked ``@pytest.mark.every_profile`` (one run per simulator profile, id
  ``[a1]``, ``[x1c]`` …). Mark tests whose subject is the client, not a model quirk.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bambu_lan.sim import PROFILES, SimThread, SimulatedPrinter
from bambu_lan.sim.certs import CertAuthority

#: Simulated seconds per real second in tests: idle reports every 0.1 s instead of 2 s.
SIM_TIME_SCALE = 20.0

#: Every model the simulator serves; ``every_profile`` tests run once against each.
SIM_PROFILES = tuple(PROFILES)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "every_profile: run once per simulator profile (sim, sim_factory and sim_thread "
        "simulate that model)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sim_profile" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "every_profile"
    ):
        metafunc.parametrize("sim_profile", SIM_PROFILES, indirect=True)


@pytest.fixture
def sim_profile(request: pytest.FixtureRequest) -> str:
    """The model key the ``sim`` fixtures simulate: ``"a1"`` unless parametrized."""
    return str(getattr(request, "param", "a1"))


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
async def sim(sim_cert_dir: Path, sim_profile: str) -> AsyncIterator[SimulatedPrinter]:
    """A started simulated A1 (or ``sim_profile``) on 127.0.0.1, free port, time x20."""
    async with SimulatedPrinter(
        sim_profile, cert_dir=sim_cert_dir, time_scale=SIM_TIME_SCALE, seed=1
    ) as printer:
        yield printer


SimFactory = Callable[..., Awaitable[SimulatedPrinter]]


@pytest.fixture
async def sim_factory(sim_cert_dir: Path, sim_profile: str) -> AsyncIterator[SimFactory]:
    """``await sim_factory(model="p1s", max_sessions=2, ...)``: more simulated printers.

    Keyword arguments go to ``SimulatedPrinter``; defaults: ``sim_profile``'s model,
    127.0.0.1, a free port, the shared certificate directory, time x20. All are stopped at
    teardown.
    """
    started: list[SimulatedPrinter] = []

    async def make(model: str = sim_profile, **kwargs: Any) -> SimulatedPrinter:
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
def sim_thread(sim_cert_dir: Path, sim_profile: str) -> Iterator[SimThread[SimulatedPrinter]]:
    """A started simulated A1 (or ``sim_profile``) on its own loop thread; use ``.target`` for
    the printer and ``.call(...)`` / ``.run(...)`` to act on it from blocking code."""
    printer = SimulatedPrinter(
        sim_profile, cert_dir=sim_cert_dir, time_scale=SIM_TIME_SCALE, seed=1
    )
    with SimThread(printer) as running:
        yield running
