"""The [serve] table, broker URLs, shards and quiet hours: parsing and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bambu_lan.config import resolve_printer
from bambu_lan.errors import ConfigError
from bambu_lan.serve.daemon import read_farm_config
from bambu_lan.serve.settings import BrokerURL, Shard, parse_quiet_hours, parse_serve_table


def test_full_serve_table() -> None:
    settings = parse_serve_table(
        {
            "serve": {
                "printers": ["a"],
                "mqtt": "mqtts://user:p%40ss@broker.lan",
                "metrics_port": 9851,
                "http_port": 0,
                "db": "postgresql://x@db/bambu",
                "shard": "2/3",
                "notify": [
                    {"urls": ["json://127.0.0.1:1/"], "quiet_hours": "22:00-07:30"},
                ],
            }
        }
    )
    assert settings.printers == ("a",)
    assert settings.mqtt is not None and settings.mqtt.tls and settings.mqtt.port == 8883
    assert settings.mqtt.password is not None and settings.mqtt.password.reveal() == "p@ss"
    assert settings.shard == Shard(2, 3)
    assert settings.notify[0].quiet_hours == (22 * 60, 7 * 60 + 30)
    assert settings.with_options(metrics_port=None, http_port=8080).http_port == 8080
    assert settings.with_options(metrics_port=None).metrics_port == 9851


def test_broker_password_never_prints() -> None:
    url = BrokerURL.parse("mqtt://bob:hunter22@127.0.0.1:1884")
    assert "hunter22" not in str(url) and "hunter22" not in repr(url)
    assert str(url) == "mqtt://bob:********@127.0.0.1:1884"
    assert BrokerURL.parse("mqtt://h").port == 1883


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"serve": {"mqtt": "http://x"}}, "mqtt://user:pass@host"),
        ({"serve": {"metrics_port": 70000}}, "port number"),
        ({"serve": {"metrics_port": "80"}}, "port number"),
        ({"serve": {"shard": "3/2"}}, "between 1 and N"),
        ({"serve": {"shard": "1"}}, "form I/N"),
        ({"serve": {"history": "yes"}}, "true or false"),
        ({"serve": {"nope": 1}}, "unknown key"),
        ({"serve": {"notify": [{"urls": []}]}}, "no urls"),
        ({"serve": {"notify": [{"urls": ["x://"], "events": ["boom"]}]}}, "unknown event"),
        ({"serve": {"notify": [{"urls": ["x://"], "quiet_hours": "22-7"}]}}, "HH:MM-HH:MM"),
        ({"serve": {"notify": [{"urls": ["x://"], "hms_severity": "loud"}]}}, "hms_severity"),
        ({"serve": 3}, "must be a table"),
    ],
)
def test_bad_settings_are_named(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_serve_table(table)


def test_shards_are_stable_disjoint_and_complete() -> None:
    serials = [f"01S00A{i:09d}" for i in range(500)]
    shards = [Shard(i, 3) for i in (1, 2, 3)]
    owners = [[s for s in serials if shard.owns(s)] for shard in shards]
    assert sorted(s for owned in owners for s in owned) == sorted(serials)  # complete and disjoint
    assert all(100 < len(o) < 240 for o in owners)  # roughly even
    # Stable: a fixed serial always lands in the same shard (sha256, not hash()).
    assert [shard.owns("01S00A000000000") for shard in shards].count(True) == 1
    assert Shard.parse(" 2 / 3 ") == Shard(2, 3)


def test_quiet_hours() -> None:
    assert parse_quiet_hours("00:00-23:59") == (0, 23 * 60 + 59)
    with pytest.raises(ConfigError):
        parse_quiet_hours("24:00-01:00")


def test_serve_reads_each_profile_as_the_other_commands_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One reading of a profile for every command: an access-code file, the FTPS and
    camera ports, the trust settings."""
    code = tmp_path / "code.txt"
    code.write_text("87654321\n")
    code.chmod(0o600)
    config = tmp_path / "c.toml"
    config.write_text(
        "[printers.left]\n"
        'host = "127.0.0.1"\nserial = "01S00A000000061"\n'
        f'access_code_file = "{code}"\nftps_port = 2990\ncamera_port = 6001\n'
        "[printers.right]\n"
        'host = "127.0.0.2"\nserial = "01S00A000000062"\naccess_code = "11112222"\n'
        f'port = 18883\nknown_printers = "{tmp_path / "known.toml"}"\n'
    )
    config.chmod(0o600)
    farm = read_farm_config(config)
    for name in ("left", "right"):
        assert farm.printers[name] == resolve_printer(printer=name, config_file=config)
    assert farm.printers["left"].access_code.reveal() == "87654321"
    assert farm.printers["left"].ftps_port == 2990 and farm.printers["left"].camera_port == 6001
    # A variable that sets one printer cannot apply to a farm: said, not applied to all.
    monkeypatch.setenv("BAMBU_ACCESS_CODE", "99998888")
    with pytest.raises(ConfigError, match="BAMBU_ACCESS_CODE is set") as err:
        read_farm_config(config)
    assert "99998888" not in str(err.value) and err.value.hint
    # With one printer in the file, serve agrees with `bambu-lan status` and uses it.
    config.write_text(config.read_text().split("[printers.right]")[0])
    farm = read_farm_config(config)
    assert farm.printers["left"] == resolve_printer(printer="left", config_file=config)
    assert farm.printers["left"].access_code.reveal() == "99998888"


def test_camera_interval_for_home_assistant() -> None:
    assert parse_serve_table({}).mqtt_camera_interval == 60.0
    assert parse_serve_table({"serve": {"mqtt_camera_interval": 0}}).mqtt_camera_interval == 0
    for bad in (2, -1, "60", True):
        with pytest.raises(ConfigError, match="mqtt_camera_interval"):
            parse_serve_table({"serve": {"mqtt_camera_interval": bad}})
