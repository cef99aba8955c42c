"""``bambu-lan discover`` and ``bambu-lan config add`` in-process, loopback only."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.conftest import Cli

from bambu_lan.config import resolve_printer
from bambu_lan.sim import SimThread, SimulatedPrinter


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def announcing(sim_cert_dir: Path) -> Iterator[tuple[SimulatedPrinter, int]]:
    """A simulated A1 announcing itself every 0.2 s to 127.0.0.1:<free port>."""
    port = free_udp_port()
    sim = SimulatedPrinter(
        "a1", cert_dir=sim_cert_dir, announce_to=("127.0.0.1", port), announce_interval=0.2
    )
    with SimThread(sim) as running:
        yield running.target, port


def test_discover_table(cli: Cli, announcing: tuple[SimulatedPrinter, int]) -> None:
    sim, port = announcing
    result = cli("discover", "--bind", "127.0.0.1", "--port", str(port), "--timeout", "1")
    assert result.code == 0, result.err
    header, row = result.out.splitlines()[:2]
    assert header.split() == ["SERIAL", "MODEL", "NAME", "ADDRESS", "FIRMWARE", "LAN-ONLY", "BIND"]
    assert row.split() == [sim.serial, "A1", f"3DP-039-{sim.serial[-3:]}", "127.0.0.1",
                           sim.profile.firmware, "yes", "free"]  # fmt: skip


def test_discover_json(cli: Cli, announcing: tuple[SimulatedPrinter, int]) -> None:
    sim, port = announcing
    result = cli("discover", "--json", "--bind", "127.0.0.1", "--port", str(port), "--timeout", "1")
    data = json.loads(result.out)
    assert data["ok"] is True
    assert [p["serial"] for p in data["printers"]] == [sim.serial]
    assert data["printers"][0]["model_code"] == "N2S"


def test_discover_finds_nothing_with_a_hint(cli: Cli) -> None:
    result = cli(
        "discover", "--bind", "127.0.0.1", "--port", str(free_udp_port()), "--timeout", "0.2"
    )
    assert result.code == 0
    assert "no printer announced itself" in result.err and "hint:" in result.err


@pytest.mark.parametrize(
    "command", [["discover"], ["config", "add", "shop", "--serial", "03919A3B1200123"]]
)
def test_a_bad_search_target_is_refused_before_listening(cli: Cli, command: list[str]) -> None:
    result = cli(*command, "--bind", "127.0.0.1", "--search-target", "not-an-address")
    assert result.code == 2
    assert result.err.splitlines()[0].startswith("error: 'not-an-address' is not ADDR:PORT")
    assert "hint:" in result.err
    assert "listening" not in result.err


def test_config_add_fills_the_address_from_discovery(
    cli: Cli, announcing: tuple[SimulatedPrinter, int], isolated_env: Path
) -> None:
    sim, port = announcing
    config = isolated_env / "config.toml"
    config.write_text('# my printers\ndefault = "old"\n\n[printers.old]\nhost = "10.0.0.9"\n')
    result = cli(
        "config", "add", "shop", "--serial", sim.serial.lower(), "--access-code", sim.access_code,
        "--bind", "127.0.0.1", "--port", str(port), "--default",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "saved printer 'shop'" in result.out
    assert sim.access_code not in result.out + result.err
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    text = config.read_text()
    assert text.startswith("# my printers\n")  # what was there is kept
    cfg = resolve_printer()  # the new default
    assert (cfg.name, cfg.host, cfg.serial) == ("shop", "127.0.0.1", sim.serial)
    assert cfg.access_code.reveal() == sim.access_code
    again = cli("config", "add", "shop", "--serial", sim.serial, "--host", "10.0.0.1",
                "--access-code", sim.access_code)  # fmt: skip
    assert again.code == 2 and "already in" in again.err


def test_config_add_when_the_printer_is_not_heard(cli: Cli) -> None:
    result = cli(
        "config", "add", "shop", "--serial", "03919A3B1200123", "--access-code", "12345678",
        "--bind", "127.0.0.1", "--port", str(free_udp_port()), "--timeout", "0.3",
    )  # fmt: skip
    assert result.code == 2
    assert "did not announce itself" in result.err
    assert "hint: pass --host" in result.err


def test_config_add_with_a_host_needs_no_discovery(cli: Cli, isolated_env: Path) -> None:
    result = cli(
        "config", "add", "bench", "--serial", "03919A3B1200123", "--host", "10.0.0.5",
        "--access-code", "12345678", "--json",
    )  # fmt: skip
    assert json.loads(result.out)["host"] == "10.0.0.5"
    assert resolve_printer(printer="bench").host == "10.0.0.5"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--serial", "nope"], "serial number"),
        (["--serial", "03919A3B1200123", "--access-code", "short"], "8 characters"),
        (["--serial", "03919A3B1200123"], "no terminal to ask"),
    ],
)
def test_config_add_refuses_bad_input(cli: Cli, args: list[str], message: str) -> None:
    result = cli("config", "add", "x", "--host", "10.0.0.5", *args)
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err


def test_config_add_refuses_a_bad_name(cli: Cli) -> None:
    result = cli("config", "add", "bad name]", "--serial", "03919A3B1200123", "--host",
                 "10.0.0.5", "--access-code", "12345678")  # fmt: skip
    assert result.code == 2 and "invalid printer name" in result.err


def test_sim_refuses_to_announce_outside_loopback(cli: Cli) -> None:
    result = cli("sim", "--port", "0", "--announce-to", "192.0.2.10:2021")
    assert result.code == 2
    assert "loopback addresses only" in result.err and "hint:" in result.err


def test_two_printers_with_one_serial_are_warned_about_once(cli: Cli, sim_cert_dir: Path) -> None:
    port = free_udp_port()
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
    with SimThread(twins[0]), SimThread(twins[1]):
        result = cli("discover", "--bind", "127.0.0.1", "--port", str(port), "--timeout", "1.5")
    assert result.code == 0, result.err
    assert result.err.count("two printers announce serial 03919A3B1200123") == 1, result.err
    assert "warning: two printers announce serial 03919A3B1200123" in result.err
