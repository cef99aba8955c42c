"""``SimFleet``: many printers in one process, each reachable with its own serial."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.sim.support import RawClient

from bambu_lan.errors import ConfigError
from bambu_lan.sim import SimFleet, SimulatedPrinter
from bambu_lan.sim.fleet import fleet_addresses


async def reach(printer: SimulatedPrinter) -> str:
    """Connect as a client of that one printer; returns the serial its report names."""
    client = await RawClient.session(printer)
    try:
        report = await client.full_report()
        assert report["print"]["msg"] == 0
        return printer.serial
    finally:
        await client.disconnect()


async def test_twenty_printers_on_their_own_loopback_addresses(sim_cert_dir: Path) -> None:
    async with SimFleet(20, "a1", port=0, cert_dir=sim_cert_dir, time_scale=20, seed=5) as fleet:
        hosts = [p.host for p in fleet.printers]
        assert hosts == [f"127.0.1.{i}" for i in range(1, 21)]
        assert len({p.port for p in fleet.printers}) == 1  # one port, like a real farm
        serials = [p.serial for p in fleet.printers]
        assert len(set(serials)) == 20
        assert serials[0] == "039SIM000000001"
        assert len({p.access_code for p in fleet.printers}) > 1
        # RawClient checks the certificate names the serial (server_hostname=serial), and
        # each printer's access code only works there.
        assert await asyncio.gather(*(reach(p) for p in fleet.printers)) == serials
        listing = fleet.listing()
        assert [row["serial"] for row in listing] == serials
        assert {row["ca_path"] for row in listing} == {str(sim_cert_dir / "ca.pem")}
        assert fleet.by_serial(serials[3]) is fleet.printers[3]
    assert not fleet.running


async def test_port_mode_and_a_shared_access_code(sim_cert_dir: Path) -> None:
    fleet = SimFleet(
        3, "p1s", host_mode="port", access_code="87654321", cert_dir=sim_cert_dir, time_scale=20
    )
    async with fleet:
        assert {p.host for p in fleet.printers} == {"127.0.0.1"}
        assert len({p.port for p in fleet.printers}) == 3
        assert {p.access_code for p in fleet.printers} == {"87654321"}
        assert await reach(fleet.printers[2]) == fleet.printers[2].serial


async def test_a_failed_start_stops_what_was_started(sim_cert_dir: Path) -> None:
    async with SimulatedPrinter(cert_dir=sim_cert_dir, host="127.0.1.2") as squatter:
        fleet = SimFleet(3, port=squatter.port, cert_dir=sim_cert_dir)
        with pytest.raises(ConfigError, match="already in use"):
            await fleet.start()
        assert not fleet.running


def test_fleet_addresses_roll_over_and_stay_in_loopback() -> None:
    assert fleet_addresses("127.0.1.253", 4) == [
        "127.0.1.253", "127.0.1.254", "127.0.2.1", "127.0.2.2",
    ]  # fmt: skip
    assert fleet_addresses("127.0.255.254", 2) == ["127.0.255.254", "127.1.0.1"]
    assert len(fleet_addresses("127.0.1.1", 1000)) == 1000
    with pytest.raises(ConfigError, match="do not fit"):
        fleet_addresses("127.255.255.250", 10)
    with pytest.raises(ConfigError, match="not a loopback"):
        fleet_addresses("10.0.0.1", 2)
    with pytest.raises(ConfigError, match="invalid"):
        fleet_addresses("localhost", 2)


def test_fleet_arguments_are_checked() -> None:
    with pytest.raises(ConfigError):
        SimFleet(0)
    with pytest.raises(ConfigError):
        SimFleet(2, host_mode="ipv6")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="65535"):
        SimFleet(10, host_mode="port", port=65530)
