"""``probe_quirks``: what a printer tolerates, probed with deliberately wrong clients."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.doctor.support import FAST, Tls13BlackHole, config_for

from bambu_lan.doctor import Diagnosis, Status, diagnose
from bambu_lan.sim import SimulatedPrinter

SimFactory = Callable[..., Awaitable[SimulatedPrinter]]


def _behaviours(diagnosis: Diagnosis) -> dict[str, str]:
    return {
        s.id.removeprefix("quirk."): s.data["behaviour"]
        for s in diagnosis.steps
        if s.id.startswith("quirk.")
    }


async def test_the_strict_a1_drops_early_and_wildcard_subscriptions(
    sim: SimulatedPrinter, known_printers: Path
) -> None:
    diagnosis = await diagnose(config_for(sim, known_printers), timeouts=FAST, probe_quirks=True)

    assert diagnosis.ok, diagnosis.verdict
    assert _behaviours(diagnosis) == {
        "early_subscribe": "dropped",
        "wildcard_subscribe": "dropped",
        "tls13": "dropped",
        "default_tls": "tolerated",
        "reused_client_id": "dropped",
    }
    quirks = [s for s in diagnosis.steps if s.id.startswith("quirk.")]
    assert all(s.status is Status.PASS and not s.required for s in quirks)
    assert "after CONNACK" in diagnosis.step("quirk.early_subscribe").evidence
    closes = sim.broker.closes
    assert closes["early_packet"] == 1
    assert closes["wildcard_subscribe"] == 1
    assert closes["kicked"] == 1
    # Every probe session was closed: the printer's few session slots are free again.
    await sim.broker.wait_for_sessions(0)


async def test_the_permissive_x1c_tolerates_a_wildcard(
    sim_factory: SimFactory, known_printers: Path
) -> None:
    sim = await sim_factory("x1c")

    diagnosis = await diagnose(config_for(sim, known_printers), timeouts=FAST, probe_quirks=True)

    assert diagnosis.ok, diagnosis.verdict
    assert _behaviours(diagnosis)["wildcard_subscribe"] == "tolerated"
    assert diagnosis.step("mqtt.full_report").evidence.startswith("full push (no msg")


async def test_a_printer_that_hangs_on_tls13_drops_default_tls_clients(
    sim: SimulatedPrinter, known_printers: Path
) -> None:
    async with Tls13BlackHole(sim.host, sim.port) as proxy:
        diagnosis = await diagnose(
            config_for(sim, known_printers, port=proxy.port),
            timeouts=dataclasses.replace(FAST, quirk=1.0),
            probe_quirks=True,
        )

    behaviours = _behaviours(diagnosis)
    assert behaviours["tls13"] == "dropped"
    assert behaviours["default_tls"] == "dropped"
    assert "hangs" in diagnosis.step("quirk.default_tls").evidence
    assert diagnosis.ok
