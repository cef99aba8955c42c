"""``status --json`` and ``watch --plain`` for the newer printers (simulated H2D and P2S): the
typed keys (every nozzle, AMS units of every kind, external spools) beside ``raw``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.conftest import Cli
from tests.conftest import SIM_TIME_SCALE

from bambu_lan.sim import SimThread, SimulatedPrinter


@pytest.fixture(params=["h2d", "p2s"])
def newer_printer(
    request: pytest.FixtureRequest, sim_cert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SimulatedPrinter]:
    printer = SimulatedPrinter(
        request.param, cert_dir=sim_cert_dir, time_scale=SIM_TIME_SCALE, seed=1
    )
    with SimThread(printer) as running:
        sim = running.target
        monkeypatch.setenv("BAMBU_HOST", sim.host)
        monkeypatch.setenv("BAMBU_PORT", str(sim.port))
        monkeypatch.setenv("BAMBU_SERIAL", sim.serial)
        monkeypatch.setenv("BAMBU_ACCESS_CODE", sim.access_code)
        monkeypatch.setenv("BAMBU_CA_FILE", str(sim.ca_path))
        yield sim


def test_status_json_has_every_nozzle_ams_kind_and_external_spool(
    cli: Cli, newer_printer: SimulatedPrinter
) -> None:
    result = cli("status", "--json")
    assert result.code == 0, result.err
    data = result.json()
    profile = newer_printer.profile
    assert data["info"]["model"] == profile.product_name.removeprefix("Bambu Lab ")
    nozzles = data["nozzles"]
    assert [n["index"] for n in nozzles] == list(range(profile.extruders))
    assert [n["active"] for n in nozzles] == [True] + [False] * (profile.extruders - 1)
    assert all(n["diameter"] == 0.4 and n["type"] == "hardened_steel" for n in nozzles)
    assert data["temperatures"]["nozzle"] == nozzles[0]["temperature"]
    assert data["temperatures"]["chamber_sensor"] is True
    assert isinstance(data["temperatures"]["chamber"], float)
    kinds = [(unit["ams_id"], unit["kind"]) for unit in data["ams"]]
    assert kinds == [(0, "AMS 2 Pro")] + ([(128, "AMS HT")] if profile.ams_ht else [])
    assert [s["tray_id"] for s in data["external_spools"]] == list(profile.external_spool_ids)
    assert data["external_spool"] == data["external_spools"][0]
    assert "device" in data["raw"]
    assert "vir_slot" in data["raw"]


def test_watch_plain_names_both_nozzles_and_the_loaded_tray(
    cli: Cli, newer_printer: SimulatedPrinter
) -> None:
    result = cli("status", "--plain")
    assert result.code == 0, result.err
    line = result.out
    if newer_printer.profile.extruders == 2:
        assert "right nozzle" in line
        assert "(active)" in line
        assert "left nozzle" in line
    else:
        assert "| nozzle " in line
    assert "| chamber " in line
    assert "filament nothing loaded" in line
