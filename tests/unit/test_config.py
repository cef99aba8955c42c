"""Printer settings: precedence, validation, secrets that never print (the config package)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from bambu_lan.config import (
    PrinterConfig,
    Secret,
    access_code_problem,
    config_path,
    load_config_file,
    redact,
    resolve_printer,
)
from bambu_lan.errors import ConfigError
from bambu_lan.protocol.topics import DEFAULT_PORT
from bambu_lan.trust import TrustConfig

CODE_A = "12345678"
CODE_B = "ab3DEf9Z"
CODE_ENV = "envC0DE1"
CODE_CLI = "cliC0DE2"

CONFIG = f"""
default = "workshop"

[printers.workshop]
host = "192.168.1.50"
serial = "03919A3B1200123"
access_code = "{CODE_A}"
ca_dir = "~/bambu_certs"

[printers.garage]
host = "192.168.1.60"
serial = "01P00A000000002"
access_code = "{CODE_B}"
port = 8884
insecure = true
"""

ENV_VARS = (
    "BAMBU_HOST",
    "BAMBU_SERIAL",
    "BAMBU_ACCESS_CODE",
    "BAMBU_PORT",
    "BAMBU_PRINTER",
    "BAMBU_CONFIG",
    "BAMBU_CA_FILE",
    "BAMBU_CA_DIR",
    "BAMBU_KNOWN_PRINTERS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No settings leak in from the machine running the tests."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def config_file(tmp_path: Path, sim_cert_dir: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    path.chmod(0o600)
    certs = tmp_path / "home" / "bambu_certs"  # the workshop's ca_dir must hold a CA
    certs.mkdir(parents=True)
    shutil.copy(sim_cert_dir / "ca.pem", certs / "bambu.cert")
    return path


def test_default_profile(config_file: Path, tmp_path: Path) -> None:
    cfg = resolve_printer(config_file=config_file)
    assert cfg.name == "workshop"
    assert cfg.label == "workshop"
    assert (cfg.host, cfg.serial, cfg.port) == ("192.168.1.50", "03919A3B1200123", DEFAULT_PORT)
    assert cfg.access_code.reveal() == CODE_A
    assert cfg.trust.ca_dir == tmp_path / "home" / "bambu_certs"  # "~" expanded
    assert cfg.trust.mode == "ca"


def test_named_profile_beats_the_default(config_file: Path) -> None:
    cfg = resolve_printer(printer="garage", config_file=config_file)
    assert cfg.name == "garage"
    assert (cfg.host, cfg.serial, cfg.port) == ("192.168.1.60", "01P00A000000002", 8884)
    assert cfg.access_code.reveal() == CODE_B
    assert cfg.trust.insecure
    assert cfg.trust.ca_dir is None


def test_env_printer_names_a_profile_and_the_option_beats_it(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAMBU_PRINTER", "garage")
    assert resolve_printer(config_file=config_file).name == "garage"
    assert resolve_printer(printer="workshop", config_file=config_file).name == "workshop"


def test_env_beats_the_profile(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAMBU_HOST", "10.0.0.9")
    monkeypatch.setenv("BAMBU_ACCESS_CODE", CODE_ENV)
    monkeypatch.setenv("BAMBU_PORT", "9883")
    cfg = resolve_printer(printer="garage", config_file=config_file)
    assert cfg.host == "10.0.0.9"
    assert cfg.access_code.reveal() == CODE_ENV
    assert cfg.port == 9883
    assert cfg.serial == "01P00A000000002"  # not in the environment: from the profile


def test_explicit_values_beat_env_and_profile(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shutil.copytree(tmp_path / "home" / "bambu_certs", tmp_path / "cli_certs")
    monkeypatch.setenv("BAMBU_HOST", "10.0.0.9")
    monkeypatch.setenv("BAMBU_SERIAL", "00M09A350100123")
    monkeypatch.setenv("BAMBU_ACCESS_CODE", CODE_ENV)
    monkeypatch.setenv("BAMBU_PORT", "9883")
    monkeypatch.setenv("BAMBU_CA_DIR", str(tmp_path / "env_certs"))
    cfg = resolve_printer(
        host="127.0.0.1",
        serial="03919A3B1200999",
        access_code=CODE_CLI,
        port=1883,
        ca_dir=tmp_path / "cli_certs",
        config_file=config_file,
    )
    assert (cfg.host, cfg.serial, cfg.port) == ("127.0.0.1", "03919A3B1200999", 1883)
    assert cfg.access_code.reveal() == CODE_CLI
    assert cfg.trust.ca_dir == tmp_path / "cli_certs"


def test_env_only_without_a_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BAMBU_HOST", "10.0.0.9")
    monkeypatch.setenv("BAMBU_SERIAL", "03919A3B1200123")
    monkeypatch.setenv("BAMBU_ACCESS_CODE", CODE_ENV)
    cfg = resolve_printer(config_file=tmp_path / "missing.toml")
    assert (cfg.host, cfg.name, cfg.port) == ("10.0.0.9", "", DEFAULT_PORT)
    assert cfg.label == "03919A3B1200123"
    assert cfg.trust.mode == "pin"


def test_config_path_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert config_path() == tmp_path / "xdg" / "bambu-lan" / "config.toml"
    monkeypatch.setenv("BAMBU_CONFIG", str(tmp_path / "elsewhere.toml"))
    assert config_path() == tmp_path / "elsewhere.toml"


def test_bambu_config_env_is_read(monkeypatch: pytest.MonkeyPatch, config_file: Path) -> None:
    monkeypatch.setenv("BAMBU_CONFIG", str(config_file))
    assert resolve_printer().name == "workshop"


def test_numeric_access_code_in_toml_is_refused_with_a_hint_to_quote_it(tmp_path: Path) -> None:
    # A number loses leading zeros and is not what the printer shows: the code is text.
    path = tmp_path / "c.toml"
    path.write_text(
        '[printers.p]\nhost = "h"\nserial = "03919A3B1200123"\naccess_code = 12345678\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="access_code: must be a string") as info:
        resolve_printer(printer="p", config_file=path)
    assert "in quotes" in info.value.hint


# --- refusals -------------------------------------------------------------------------------


def test_lower_case_serial_is_rejected_with_a_hint_about_case() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_printer(host="h", serial="03919a3b1200123", access_code=CODE_A)
    message = str(info.value)
    assert "upper case" in message
    assert "03919A3B1200123" in message
    assert "case-sensitive" in message
    assert info.value.hint


def test_seven_character_code_is_rejected_without_showing_it() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_printer(host="h", serial="03919A3B1200123", access_code="1234567")
    assert "8 characters" in str(info.value)
    assert "1234567" not in str(info.value)
    assert "1234567" not in info.value.hint
    assert "access code" in info.value.hint


@pytest.mark.parametrize(
    ("code", "words"),
    [("", "empty"), (" 1234567", "spaces"), ("123456789", "8 characters"), ("1234567\x00", "only")],
)
def test_access_code_problems(code: str, words: str) -> None:
    problem = access_code_problem(code)
    assert problem is not None
    assert words in problem


def test_missing_host_says_where_to_find_it() -> None:
    with pytest.raises(ConfigError, match="no printer address") as info:
        resolve_printer(serial="03919A3B1200123", access_code=CODE_A)
    assert "--host" in info.value.hint


@pytest.mark.parametrize("port", [0, 70000, -1])
def test_port_out_of_range(port: int) -> None:
    with pytest.raises(ConfigError, match="port"):
        resolve_printer(host="h", serial="03919A3B1200123", access_code=CODE_A, port=port)


def test_port_from_env_must_be_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAMBU_PORT", "eighty")
    with pytest.raises(ConfigError, match="BAMBU_PORT must be a port number"):
        resolve_printer(host="h", serial="03919A3B1200123", access_code=CODE_A)


def test_unknown_profile_names_the_known_ones(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="no printer named 'attic'") as info:
        resolve_printer(printer="attic", config_file=config_file)
    assert "garage" in info.value.hint
    assert "workshop" in info.value.hint


def test_unknown_profile_with_no_profiles_at_all(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_printer(printer="attic", config_file=tmp_path / "missing.toml")
    assert "none" in info.value.hint


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[printers.p\nhost = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve_printer(config_file=path)
    with pytest.raises(ConfigError, match=str(path.name)):
        load_config_file(path)


def test_unreadable_config_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config_file(tmp_path)  # a directory


@pytest.mark.parametrize(
    "text",
    [
        'printers = { p = "not a table" }',
        "default = 5\n[printers.p]\nhost = 'h'",
        "default = ['p']\n[printers.p]\nhost = 'h'",
        "default = { x = 1 }\n[printers.p]\nhost = 'h'",
        "[printers.p]\nhost = 'h'\nserial = '03919A3B1200123'\naccess_code = '12345678'\n"
        "port = [1]",
    ],
)
def test_oddly_shaped_config_files_are_config_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        resolve_printer(printer=None if "default" in text else "p", config_file=path)


# --- secrets never print --------------------------------------------------------------------


def test_secret_hides_in_repr_str_and_formatting() -> None:
    secret = Secret(CODE_A)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", format(secret, "")):
        assert CODE_A not in shown
        assert "*" in shown
    assert secret.reveal() == CODE_A
    assert secret == Secret(CODE_A)
    assert secret != Secret(CODE_B)
    assert secret != CODE_A
    assert bool(secret)
    assert not Secret("")
    assert len({Secret(CODE_A), Secret(CODE_A)}) == 1


def test_printer_config_never_shows_the_code(caplog: pytest.LogCaptureFixture) -> None:
    cfg = PrinterConfig(
        host="h", serial="03919A3B1200123", access_code=Secret(CODE_A), name="w"
    ).validate()
    for shown in (repr(cfg), str(cfg), f"{cfg}", repr([cfg]), repr({"cfg": cfg})):
        assert CODE_A not in shown
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("config %s %r", cfg, cfg)
    assert CODE_A not in caplog.text


def test_resolved_config_never_shows_the_code(config_file: Path) -> None:
    cfg = resolve_printer(config_file=config_file)
    assert CODE_A not in repr(cfg)
    assert CODE_A not in str(cfg)


def test_redact() -> None:
    text = f"connect bblp:{CODE_A}@h and again {CODE_A}; other {CODE_B}"
    assert redact(text, Secret(CODE_A)) == "connect bblp:********@h and again ********; other " + (
        CODE_B
    )
    both = redact(text, Secret(CODE_A), CODE_B, None, Secret(""), "")
    assert CODE_A not in both
    assert CODE_B not in both
    assert both.count("********") == 3
    assert redact("nothing here", Secret(CODE_A)) == "nothing here"


def test_trust_config_default_is_pinning() -> None:
    assert TrustConfig().mode == "pin"
    assert TrustConfig(insecure=True, ca_file=Path("x")).mode == "insecure"
