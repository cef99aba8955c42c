"""``SimulatedPrinter``, the facade: configuration, connection info, clean start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import socket
from pathlib import Path

import pytest
from tests.conftest import SimFactory
from tests.sim.conftest import ClientPool

from bambu_lan.errors import ConfigError
from bambu_lan.sim import PROFILES, SimulatedPrinter


async def test_connection_info_and_mosquitto_line(sim: SimulatedPrinter) -> None:
    info = sim.connection_info()
    assert info == {
        "model": "a1",
        "product_name": "Bambu Lab A1",
        "host": "127.0.0.1",
        "port": sim.port,
        "serial": "039SIM000000000",
        "access_code": sim.access_code,
        "ca_path": str(sim.ca_path),
        "fingerprint": sim.fingerprint,
        "ftps_port": sim.ftps.port if sim.ftps is not None else None,
    }
    assert info["ftps_port"]
    json.dumps(info)
    assert sim.port > 0
    assert len(sim.access_code) == 8
    assert sim.access_code.isdigit()
    assert sim.ca_path.name == "ca.pem"
    assert sim.ca_path.exists()
    assert len(sim.fingerprint) == 64
    args = shlex.split(sim.mosquitto_sub_command())
    assert args[0] == "mosquitto_sub"
    assert "--insecure" in args
    assert "-v" in args
    for flag, value in {
        "-h": sim.host, "-p": str(sim.port), "--cafile": str(sim.ca_path),
        "--tls-version": "tlsv1.2", "-u": "bblp", "-P": sim.access_code,
        "-t": f"device/{sim.serial}/report",
    }.items():  # fmt: skip
        assert args[args.index(flag) + 1] == value
    # A fresh client id each time: two copies of the line never kick each other off.
    again = shlex.split(sim.mosquitto_sub_command())
    assert again[again.index("-i") + 1] != args[args.index("-i") + 1]
    assert sim.access_code not in repr(sim)


@pytest.mark.parametrize("model", sorted(PROFILES))
async def test_every_model_serves_its_report(
    sim_factory: SimFactory, clients: ClientPool, model: str
) -> None:
    sim = await sim_factory(model)
    assert sim.serial.startswith(PROFILES[model].serial_prefix)
    assert sim.broker.rules.max_sessions == PROFILES[model].max_sessions
    client = await clients.session(sim)
    await client.publish(b'{"pushing":{"sequence_id":"1","command":"pushall"}}')
    while True:
        report = json.loads((await client.next_publish()).payload)["print"]
        if "gcode_state" in report:
            break
    # A1/P1: msg 0 marks the full report; the X1 always sends full reports, without msg.
    assert report.get("msg") == (0 if PROFILES[model].delta_reports else None)


async def test_stop_is_clean_and_idempotent(sim_factory: SimFactory, clients: ClientPool) -> None:
    sim = await sim_factory()
    client = await clients.session(sim)
    # A client stuck before its TLS handshake is also cut off.
    stuck_reader, stuck_writer = await asyncio.open_connection(sim.host, sim.port)
    await sim.broker.wait_for(lambda: sim.broker.connection_count == 2)
    port = sim.port
    await sim.stop()
    assert not sim.running
    await client.expect_closed()
    with contextlib.suppress(ConnectionError):
        assert await stuck_reader.read() == b""
    stuck_writer.close()
    assert sim.broker.closes["stopped"] == 2
    assert sim.broker.connection_count == 0
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current and not t.done()] == []
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    await sim.stop()  # again: nothing happens


async def test_restart_keeps_identity_and_new_identity_replaces_it(tmp_path: Path) -> None:
    async with SimulatedPrinter(cert_dir=tmp_path, access_code="12345678") as first:
        fingerprint = first.fingerprint
        ca = first.ca_path.read_bytes()
    async with SimulatedPrinter(cert_dir=tmp_path, access_code="12345678") as again:
        assert again.fingerprint == fingerprint
        assert again.ca_path.read_bytes() == ca
    async with SimulatedPrinter(cert_dir=tmp_path, new_identity=True) as replaced:
        assert replaced.fingerprint != fingerprint
        assert replaced.ca_path.read_bytes() != ca


async def test_port_in_use_is_a_config_error(sim: SimulatedPrinter, sim_cert_dir: Path) -> None:
    other = SimulatedPrinter(cert_dir=sim_cert_dir, port=sim.port)
    with pytest.raises(ConfigError, match="already in use") as caught:
        await other.start()
    assert "--port" in caught.value.hint
    assert not other.running


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "a2"}, "unknown printer model"),
        ({"serial": "bad/serial"}, "invalid serial"),
        ({"access_code": ""}, "invalid access code"),
        ({"access_code": "pässwort"}, "invalid access code"),
        ({"time_scale": 0}, "greater than 0"),
    ],
)
def test_bad_configuration_is_a_config_error(
    sim_cert_dir: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        SimulatedPrinter(cert_dir=sim_cert_dir, **kwargs)  # type: ignore[arg-type]


def test_options_reach_model_and_broker(sim_cert_dir: Path) -> None:
    sim = SimulatedPrinter(
        "p1s",
        serial="01P00A000000001",
        access_code="abcdefgh",
        cert_dir=sim_cert_dir,
        dev_mode=False,
        time_scale=5,
        max_sessions=2,
        auth_delay=0.0,
        seed=7,
    )
    assert sim.model.dev_mode is False
    assert sim.model.time_scale == 5
    assert sim.broker.rules.max_sessions == 2
    assert sim.broker.rules.auth_delay == 0.0
    assert sim.broker.rules.drop_on_request_subscribe
    assert not sim.broker.rules.drop_on_wildcard_subscribe
    assert sim.broker.report_topic == "device/01P00A000000001/report"
    seeded = [SimulatedPrinter(cert_dir=sim_cert_dir, seed=3).access_code for _ in range(2)]
    assert seeded[0] == seeded[1]
