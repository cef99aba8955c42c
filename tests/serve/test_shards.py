"""Two shards over 200 simulated printers: every printer watched by exactly one instance, both
publishing into one broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from bambu_lan.serve.daemon import Daemon, read_farm_config, select_printers
from bambu_lan.serve.mqtt_bridge import MqttBridge
from bambu_lan.serve.settings import BrokerURL, Shard
from bambu_lan.sim import SimFleet

from .broker import Mosquitto, Recorder
from .support import RecordingSink, write_config


async def test_two_shards_over_200_printers_are_disjoint_and_complete(
    sim_cert_dir: Path, tmp_path: Path, serve_logs: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    recorder = Recorder(broker.port)
    daemons: list[Daemon] = []
    try:
        async with SimFleet(
            200, "a1", host_mode="port", port=0, cert_dir=sim_cert_dir, time_scale=5, seed=5
        ) as fleet:
            config = write_config(
                tmp_path / "c.toml", [(f"p{i:03d}", p) for i, p in enumerate(fleet.printers)]
            )
            farm = read_farm_config(config)
            recs = []
            for index in (1, 2):
                settings = farm.settings.with_options(shard=Shard(index, 2))
                rec = RecordingSink()
                bridge = MqttBridge(BrokerURL.parse(broker.url), instance_group=f"{index}/2")
                daemon = Daemon(settings, select_printers(farm, settings), sinks=[bridge, rec])
                await daemon.start()
                daemons.append(daemon)
                recs.append(rec)
            first, second = (set(d.hub.printers) for d in daemons)
            everyone = {p.serial for p in fleet.printers}
            assert not first & second  # disjoint
            assert first | second == everyone  # complete
            assert 60 < len(first) < 140  # roughly even
            for rec, daemon in zip(recs, daemons, strict=True):
                await rec.wait_for(lambda r=rec, d=daemon: set(r.states) == set(d.hub.printers),
                                   timeout=60)  # fmt: skip
            # One session per printer: no printer is watched twice.
            assert all(p.broker.session_count == 1 for p in fleet.printers)
            # Both publish into one broker: every printer's state is there.
            await recorder.wait(
                lambda r: all(f"bambu-lan/{s}/state" in r.last for s in everyone), timeout=60
            )
            for daemon in daemons:
                await daemon.stop()
            daemons.clear()
    finally:
        for daemon in daemons:
            await daemon.stop()
        recorder.close()
        broker.stop()
    # Different shards in one broker are no duplicate.
    assert not any("another bambu-lan serve" in r.getMessage() for r in serve_logs.records)


def test_shard_option_on_the_command_line_and_in_the_file(
    tmp_path: Path, sim_cert_dir: Path
) -> None:
    class Fake:
        host, port, ca_path, access_code = "127.0.0.1", 8883, sim_cert_dir / "ca.pem", "12345678"

        def __init__(self, serial: str) -> None:
            self.serial = serial

    fakes = [(f"p{i}", Fake(f"01S00A{i:09d}")) for i in range(50)]
    config = write_config(tmp_path / "c.toml", fakes, serve='shard = "2/3"')
    farm = read_farm_config(config)
    assert farm.settings.shard == Shard(2, 3)
    from_file = {c.serial for c in select_printers(farm, farm.settings)}
    assert from_file == {s.serial for _, s in fakes if Shard(2, 3).owns(s.serial)}
    option = farm.settings.with_options(shard=Shard(1, 3))
    assert {c.serial for c in select_printers(farm, option)}.isdisjoint(from_file)
