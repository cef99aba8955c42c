"""Discovery on real UDP sockets, loopback only: the simulator's NOTIFY and M-SEARCH answers.

Every datagram here goes to a 127.0.0.0/8 address, on free ports.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from bambu_lan.discovery import SEARCH_TARGET, DiscoveryResult, discover
from bambu_lan.errors import ConfigError
from bambu_lan.sim import SimFleet, SimulatedPrinter


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def listen(port: int, **kwargs: object) -> asyncio.Task[DiscoveryResult]:
    """Start listening on 127.0.0.1:port; returns once the socket is bound."""
    kwargs.setdefault("timeout", 10.0)
    task = asyncio.create_task(discover(ports=[port], bind="127.0.0.1", **kwargs))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # let it bind (binding happens before its first await)
    return task


async def test_the_simulator_announces_itself(sim_cert_dir: Path) -> None:
    port = free_udp_port()
    found = await listen(port, until=lambda r: bool(r.printers))
    async with SimulatedPrinter(
        "a1", cert_dir=sim_cert_dir, announce_to=("127.0.0.1", port), announce_interval=0.2
    ) as sim:
        result = await found
    printer = result.printers[sim.serial]
    assert printer.host == "127.0.0.1"
    assert printer.model == "A1" and printer.model_code == "N2S"
    assert printer.name == f"3DP-039-{sim.serial[-3:]}"
    assert printer.firmware == sim.profile.firmware
    assert printer.lan_only is True and printer.bind == "free"
    assert not printer.reply
    assert result.warnings == []


async def test_m_search_is_answered(sim_cert_dir: Path) -> None:
    async with SimulatedPrinter("p1s", cert_dir=sim_cert_dir, ssdp_port=0) as sim:
        assert sim.announcer is not None and sim.announcer.search_port
        result = await discover(
            timeout=5,
            ports=[],
            bind="127.0.0.1",
            search=True,
            search_targets=[("127.0.0.1", sim.announcer.search_port)],
            until=lambda r: bool(r.printers),
        )
        assert sim.announcer.stats.searches_answered == 1
    printer = result.printers[sim.serial]
    assert printer.reply and printer.model == "P1S"


async def test_a_fleet_announces_one_address_per_printer(sim_cert_dir: Path) -> None:
    port = free_udp_port()
    found = await listen(port, until=lambda r: len(r.printers) == 3)
    async with SimFleet(
        3, cert_dir=sim_cert_dir, base_host="127.0.3.1", port=0,
        announce_to=("127.0.0.1", port),
    ) as fleet:  # fmt: skip
        result = await found
    assert {p.host for p in result.printers.values()} == {"127.0.3.1", "127.0.3.2", "127.0.3.3"}
    assert set(result.printers) == {p.serial for p in fleet.printers}


async def test_two_printers_with_one_serial_are_warned_about(sim_cert_dir: Path) -> None:
    port = free_udp_port()
    found = await listen(port, timeout=8.0, until=lambda r: bool(r.warnings))
    twins = [
        SimulatedPrinter(
            "a1",
            "03919A3B1200123",
            cert_dir=sim_cert_dir,
            host=host,
            announce_to=("127.0.0.1", port),
            announce_interval=0.2,
        )
        for host in ("127.0.4.1", "127.0.4.2")
    ]
    for twin in twins:
        await twin.start()
    try:
        result = await found
    finally:
        for twin in twins:
            await twin.stop()
    assert len(result.printers) == 1
    assert "two printers announce serial 03919A3B1200123" in result.warnings[0]


async def test_hostile_and_foreign_datagrams_never_stop_the_listener() -> None:
    port = free_udp_port()
    found = await listen(port, timeout=3.0, until=lambda r: bool(r.printers))
    junk = [
        b"\x00" * 100,
        b"NOTIFY * HTTP/1.1\r\nNT: " + SEARCH_TARGET.encode() + b"\r\n\r\n",  # no USN
        b"NOTIFY * HTTP/1.1\r\nNT: " + SEARCH_TARGET.encode() + b"\r\nUSN: \x1b[2J\r\n\r\n",
        b"NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\n\r\n",
        b"x" * 9000,
        b"NOTIFY * HTTP/1.1\r\nNT: " + SEARCH_TARGET.encode()
        + b"\r\nUSN: 03919A3B1200999\r\nDevName.bambu.com: \x1b]0;owned\x07\r\n\r\n",
    ]  # fmt: skip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for datagram in junk:
            sender.sendto(datagram, ("127.0.0.1", port))
    result = await found
    assert list(result.printers) == ["03919A3B1200999"]
    assert result.printers["03919A3B1200999"].name == "\x1b]0;owned\x07"  # kept as sent...
    assert any("without a serial" in w for w in result.warnings)
    assert all("\x1b" not in w for w in result.warnings)  # ...but warnings are safe
    assert result.ignored >= 2


async def test_nothing_heard_ends_at_the_timeout() -> None:
    result = await discover(timeout=0.2, ports=[free_udp_port()], bind="127.0.0.1")
    assert result.printers == {} and result.warnings == []


def test_the_simulator_never_announces_outside_loopback(sim_cert_dir: Path) -> None:
    with pytest.raises(ConfigError, match="loopback addresses only"):
        SimulatedPrinter("a1", cert_dir=sim_cert_dir, announce_to=("192.0.2.10", 2021))


@pytest.mark.parametrize("st_line", [f"st:{SEARCH_TARGET}", f"St:   {SEARCH_TARGET.upper()}"])
async def test_m_search_header_spelling_does_not_matter(st_line: str) -> None:
    from bambu_lan.sim.ssdp import Announcer

    announcer = Announcer(
        serial="01P00A4C2009981", model_code="C12", name="p", firmware="01.00.00.00",
        location="127.0.0.1", announce_to=None, search_port=0,
    )  # fmt: skip
    await announcer.start()
    loop = asyncio.get_running_loop()
    try:
        assert announcer.search_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.bind(("127.0.0.1", 0))
            client.setblocking(False)
            request = f'M-SEARCH * HTTP/1.1\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n{st_line}\r\n\r\n'
            await loop.sock_sendto(client, request.encode(), ("127.0.0.1", announcer.search_port))
            async with asyncio.timeout(5):
                answer = await loop.sock_recv(client, 4096)
    finally:
        await announcer.stop()
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"USN: 01P00A4C2009981" in answer
