"""Bad input gives one ``error:`` line and one ``hint:`` line, exit code 2, no traceback; every
command's ``--help`` works; the config command never shows an access code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.cli.conftest import Cli, Result

from bambu_lan.cli.main import COMMANDS
from bambu_lan.sim import SimulatedPrinter

GOOD_SERIAL = "03919A3B1200123"


def assert_one_error(result: Result, *words: str) -> None:
    assert result.code == 2, (result.out, result.err)
    lines = result.err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("error: ")
    assert lines[1].startswith("hint: ")
    for word in words:
        assert word in result.err
    assert "Traceback" not in result.err


def test_no_host(cli: Cli) -> None:
    result = cli("status", "--serial", GOOD_SERIAL, "--access-code", "12345678")

    assert_one_error(result, "no printer address", "--host")


def test_lower_case_serial(cli: Cli) -> None:
    result = cli(
        "status", "--host", "127.0.0.1", "--serial", GOOD_SERIAL.lower(), "--access-code", "x" * 8
    )

    assert_one_error(result, "upper case", GOOD_SERIAL)


def test_short_access_code_is_not_echoed(cli: Cli) -> None:
    result = cli("status", "--host", "127.0.0.1", "--serial", GOOD_SERIAL, "--access-code", "s3cr")

    assert_one_error(result, "8 characters")
    assert "s3cr" not in result.out + result.err


def test_unknown_profile(cli: Cli) -> None:
    assert_one_error(cli("status", "--printer", "nowhere"), "no printer named 'nowhere'")


def test_wrong_access_code(cli: Cli, printer_env: SimulatedPrinter) -> None:
    result = cli("status", "--access-code", "87654321")

    assert_one_error(result, "refused the access code", "re-read the access code")
    assert printer_env.access_code not in result.out + result.err
    assert "87654321" not in result.out + result.err


def test_wrong_access_code_as_json(cli: Cli, printer_env: SimulatedPrinter) -> None:
    result = cli("send", "light", "on", "--access-code", "87654321", "--json")

    assert result.code == 2
    error = result.json()["error"]
    assert error["type"] == "AuthError"
    assert error["hint"]
    assert "87654321" not in result.out + result.err


def test_nothing_listening(cli: Cli, printer_env: SimulatedPrinter) -> None:
    with socket_without_listener() as port:
        result = cli("status", "--port", str(port))

    assert_one_error(result, "refused the connection")


def test_wrong_serial_is_refused_before_credentials(
    cli: Cli, printer_env: SimulatedPrinter
) -> None:
    result = cli("status", "--serial", GOOD_SERIAL)

    assert_one_error(result, "no credentials were sent")


def test_insecure_warns_loudly(
    cli: Cli, printer_env: SimulatedPrinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BAMBU_CA_FILE")  # --insecure with a CA is refused (test_bad_inputs)
    result = cli("status", "--plain", "--insecure")

    assert result.code == 0, result.err
    assert "WARNING: --insecure" in result.err
    assert "NOT checked" in result.err


def test_debug_shows_the_traceback(cli: Cli) -> None:
    from bambu_lan.errors import ConfigError

    with pytest.raises(ConfigError):
        cli("--debug", "status", "--serial", GOOD_SERIAL, "--access-code", "12345678")


# --- help -----------------------------------------------------------------------------------

SUBCOMMANDS = [
    ("send", "pause"),
    ("send", "resume"),
    ("send", "stop"),
    ("send", "speed"),
    ("send", "light"),
    ("send", "gcode"),
    ("send", "raw"),
    ("trust", "list"),
    ("trust", "forget"),
    ("config", "path"),
    ("config", "show"),
    ("config", "check"),
]


def test_top_level_help_lists_every_command(cli: Cli) -> None:
    result = cli("--help")

    assert result.code == 0
    for name in COMMANDS:
        assert name in result.out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help(cli: Cli, name: str) -> None:
    if name == "doctor":
        pytest.importorskip("bambu_lan.cli.doctor_cmd")  # written by another helper
    result = cli(name, "--help")

    assert result.code == 0, result.err
    assert result.out.startswith("Usage: bambu-lan " + name)


@pytest.mark.parametrize(("group", "name"), SUBCOMMANDS)
def test_subcommand_help(cli: Cli, group: str, name: str) -> None:
    result = cli(group, name, "--help")

    assert result.code == 0, result.err
    assert result.out.startswith(f"Usage: bambu-lan {group} {name}")


@pytest.mark.parametrize("name", ["status", "watch", "send"])
def test_connection_options_are_documented(cli: Cli, name: str) -> None:
    args = (name, "pause", "--help") if name == "send" else (name, "--help")
    text = cli(*args).out

    for option in ("--host", "--serial", "--access-code", "--port", "--ca-file", "--ca-dir"):
        assert option in text
    for option in ("--insecure", "--printer", "--json", "BAMBU_ACCESS_CODE"):
        assert option in text


def test_help_does_not_import_rich_or_the_commands() -> None:
    code = (
        "import sys\n"
        "from bambu_lan.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('rich', 'bambu_lan.cli.status_cmd', 'bambu_lan.sim') "
        "if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout

    assert out.strip().splitlines()[-1] == "[]"


# --- config ---------------------------------------------------------------------------------


def test_config_path_and_show_mask_the_access_code(cli: Cli, isolated_env: Path) -> None:
    config = isolated_env / "config.toml"
    config.write_text(
        'default = "shop"\n[printers.shop]\nhost = "192.168.1.50"\n'
        f'serial = "{GOOD_SERIAL}"\naccess_code = "24681357"\n',
        encoding="utf-8",
    )

    path = cli("config", "path")
    shown = cli("config", "show")
    as_json = cli("config", "show", "--json")

    assert path.out.strip() == str(config)
    assert "[printers.shop]  (default)" in shown.out
    assert "access_code = ********" in shown.out
    assert as_json.json()["printers"]["shop"]["access_code"] == "********"
    assert as_json.json()["default"] == "shop"
    for result in (shown, as_json):
        assert "24681357" not in result.out + result.err


def test_config_show_without_a_file_prints_an_example(cli: Cli) -> None:
    result = cli("config", "show")

    assert result.code == 0
    assert "no config file at" in result.out
    assert "[printers.workshop]" in result.out


def test_broken_config_file(cli: Cli, isolated_env: Path) -> None:
    (isolated_env / "config.toml").write_text("[printers.shop\n", encoding="utf-8")

    result = cli("status")

    assert result.code == 2
    assert result.err.startswith("error: the config file")
    assert "Traceback" not in result.err


class socket_without_listener:
    """A loopback port that is bound but not listening: connecting to it is refused."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port: int = self.sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_config_check_of_a_good_file(cli: Cli, isolated_env: Path) -> None:
    config = isolated_env / "config.toml"
    config.write_text(
        f'default = "shop"\n[printers.shop]\nhost = "192.168.1.50"\nserial = "{GOOD_SERIAL}"\n'
        'access_code = "24681357"\ninsecure = false\n',
        encoding="utf-8",
    )
    config.chmod(0o600)

    result = cli("config", "check")
    as_json = cli("config", "check", "--json")

    assert result.code == 0, result.err
    assert result.out.strip() == f"ok: {config}: printers shop"
    assert result.err == ""
    assert as_json.json()["ok"] is True
    assert as_json.json()["problems"] == []
    assert "24681357" not in result.out + as_json.out


def test_config_check_lists_every_problem_with_printer_and_key(
    cli: Cli, isolated_env: Path
) -> None:
    config = isolated_env / "config.toml"
    config.write_text(
        '[printers.a]\nhost = "10.0.0.5:8883"\n[printers.b]\ninsecure = "false"\nca_flie = "x"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)

    result = cli("config", "check")

    assert result.code == 2
    assert f"{config}: [printers.a] host: '10.0.0.5:8883' includes a port" in result.out
    assert f"{config}: [printers.b] insecure: must be true or false" in result.out
    assert "did you mean ca_file?" in result.out
    assert result.err.splitlines() == [
        f"error: 3 problems in {config}",
        "hint: fix the keys listed; each problem names the printer and the key",
    ]


def test_a_config_file_others_can_read_warns_once(cli: Cli, isolated_env: Path) -> None:
    config = isolated_env / "config.toml"
    config.write_text('[printers.x]\naccess_code = "13572468"\n', encoding="utf-8")
    config.chmod(0o644)

    result = subprocess.run(
        [sys.executable, "-c", "from bambu_lan.cli.main import main; main()", "config", "check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    # The library's warning, shown by the CLI as its own one line (not by Python's
    # last-resort handler, which a library user without logging set up never sees).
    assert result.stderr.splitlines() == [
        f"warning: the config file, which holds access codes, {config} can be read by other "
        f"users (mode 644); run: chmod 600 {config}"
    ]
    assert "13572468" not in result.stdout + result.stderr
