"""The config schema: every key with a right value, and with each wrong type; unknown keys
with "did you mean"; errors naming the file, the profile and the key (the config package)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from bambu_lan.config import (
    SCHEMA,
    check_config,
    file_problems,
    load_config_file,
    normalize_host,
    parse_port,
    read_access_code_file,
    read_config_file,
    resolve_printer,
)
from bambu_lan.errors import ConfigError

SERIAL = "03919A3B1200123"
CODE = "Zq7Kx9Wm"
FILE = Path("/cfg/config.toml")

# One right value per key; each key is also given every wrong type in WRONG.
GOOD: dict[str, Any] = {
    "host": "192.168.1.50",
    "serial": SERIAL,
    "access_code": CODE,
    "access_code_file": "~/.bambu_code",
    "port": 8883,
    "ca_file": "~/bambu_certs/bambu.cert",
    "ca_dir": "~/bambu_certs",
    "insecure": False,
    "known_printers": "~/pins",
    "ftps_port": 990,
    "camera_port": 6000,
}
TEXT_KEYS = {"host", "serial", "access_code"}
PATH_KEYS = {"access_code_file", "ca_file", "ca_dir", "known_printers"}
PORT_KEYS = {"port", "ftps_port", "camera_port"}
BOOL_KEYS = {"insecure"}
WRONG: dict[str, Any] = {
    "string": "false",
    "integer": 5,
    "float": 1.5,
    "boolean": True,
    "list": ["a"],
    "table": {"x": 1},
}
SAID = {
    "string": "the string 'false'",
    "integer": "the number 5",
    "float": "the number 1.5",
    "boolean": "true",
    "list": "a list",
    "table": "a table",
}


def _type_ok(key: str, kind: str) -> bool:
    if key in TEXT_KEYS | PATH_KEYS:
        return kind == "string"
    if key in PORT_KEYS:
        return kind == "integer"
    return kind == "boolean"


# The string "false" as a value of the right type: fine for a host or a path, a value problem
# for a serial (15 characters) or an access code (8); 5 is out of no port's range.
VALUE_OK = {"host", *PATH_KEYS, *PORT_KEYS, *BOOL_KEYS}


def test_schema_covers_exactly_the_tested_keys() -> None:
    assert set(SCHEMA) == set(GOOD) == TEXT_KEYS | PATH_KEYS | PORT_KEYS | BOOL_KEYS


def test_a_profile_with_every_key_right_passes() -> None:
    profile = {k: v for k, v in GOOD.items() if k not in ("access_code_file", "ca_file")}
    assert check_config({"default": "p", "printers": {"p": profile}}, FILE) == []


@pytest.mark.parametrize("key", sorted(GOOD))
def test_each_key_alone_with_its_right_value(key: str) -> None:
    assert check_config({"printers": {"p": {key: GOOD[key]}}}, FILE) == []


@pytest.mark.parametrize("kind", sorted(WRONG))
@pytest.mark.parametrize("key", sorted(GOOD))
def test_each_key_with_each_type(key: str, kind: str) -> None:
    problems = check_config({"printers": {"shop": {key: WRONG[kind]}}}, FILE)
    if _type_ok(key, kind) and key in VALUE_OK:
        assert problems == []
        return
    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.file, problem.profile, problem.key) == (FILE, "shop", key)
    assert str(problem).startswith(f"{FILE}: [printers.shop] {key}: ")
    assert problem.hint
    # A wrong type is named as such, never misreported as a wrong value.
    assert problem.message.endswith(f", not {SAID[kind]}") is not _type_ok(key, kind)


def test_a_quoted_false_is_not_false() -> None:
    # bool("false") is True: the slip that used to turn identity checking off.
    (problem,) = check_config({"printers": {"p": {"insecure": "false"}}}, FILE)
    assert "must be true or false, not the string 'false'" in problem.message
    assert "insecure = false" in problem.hint


def test_serial_of_the_wrong_type_is_not_called_lower_case() -> None:
    (problem,) = check_config({"printers": {"p": {"serial": ["a"]}}}, FILE)
    assert problem.message.startswith("must be a string")
    assert problem.message.endswith(", not a list")
    assert "must be upper case" not in problem.message


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("host", "192.168.1.50:8883", "includes a port"),
        ("host", "http://192.168.1.50", "is a URL"),
        ("host", "a..b", "not a valid host name"),
        ("serial", SERIAL.lower(), "upper case"),
        ("access_code", "1234", "8 characters"),
        ("port", 0, "out of range"),
        ("port", 99999, "out of range"),
        ("camera_port", 70000, "out of range"),
        ("ca_dir", "", "must be a path"),
    ],
)
def test_values_are_checked_not_only_types(key: str, value: Any, words: str) -> None:
    (problem,) = check_config({"printers": {"p": {key: value}}}, FILE)
    assert words in problem.message
    assert CODE not in str(problem)


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("ca_flie", "ca_file"), ("acces_code", "access_code"), ("insecur", "insecure"),
     ("hostname", "host"), ("serial_number", "serial")],
)  # fmt: skip
def test_unknown_keys_suggest_the_closest(key: str, suggestion: str) -> None:
    (problem,) = check_config({"printers": {"p": {key: "x"}}}, FILE)
    assert problem.message == "unknown key"
    assert f"did you mean {suggestion}?" in problem.hint


def test_unknown_top_level_keys() -> None:
    problems = check_config({"printer": {"p": {}}, "host": "h"}, FILE)
    assert [(p.profile, p.key) for p in problems] == [(None, "printer"), (None, "host")]
    assert "did you mean printers?" in problems[0].hint
    assert "[printers.NAME]" in problems[1].hint


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"default": 5, "printers": {}}, "must be a printer's name"),
        ({"default": "nope", "printers": {"p": {}}}, "names no printer"),
        ({"printers": "x"}, "must be tables"),
        ({"printers": {"p": "x"}}, "must be a table"),
        ({"printers": {"p": {"access_code": CODE, "access_code_file": "f"}}}, "both given"),
        ({"printers": {"p": {"insecure": True, "ca_dir": "d"}}}, "would drop the CA"),
    ],
)
def test_shape_and_conflicts(data: dict[str, Any], words: str) -> None:
    problems = check_config(data, FILE)
    assert any(words in p.message for p in problems), problems


def test_the_whole_file_is_checked_before_any_use(tmp_path: Path) -> None:
    # A problem in a profile that is not used still stops the command: the file is wrong.
    path = tmp_path / "config.toml"
    path.write_text(
        f'[printers.a]\nhost = "h"\nserial = "{SERIAL}"\naccess_code = "{CODE}"\n'
        '[printers.b]\nhost = "h"\nca_flie = "x"\ninsecure = "no"\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        resolve_printer(printer="a", config_file=path)
    assert str(info.value).startswith(f"{path}: [printers.b] ca_flie: unknown key")
    assert "1 more problem" in info.value.hint
    assert "config check" in info.value.hint
    data, problems = read_config_file(path)
    assert [p.key for p in problems] == ["ca_flie", "insecure"]
    assert data["printers"]["a"]["host"] == "h"


def test_file_problems_name_junk_ca_and_missing_code_file(tmp_path: Path) -> None:
    junk = tmp_path / "bambu.cert"
    junk.write_text("<html>not a certificate</html>", encoding="utf-8")
    data = {
        "printers": {
            "p": {"ca_file": str(junk), "access_code_file": str(tmp_path / "none")},
            "q": {"ca_dir": str(tmp_path / "missing")},
        }
    }
    problems = file_problems(data, FILE)
    assert [(p.profile, p.key) for p in problems] == [
        ("p", "ca_file"),
        ("p", "access_code_file"),
        ("q", "ca_dir"),
    ]
    assert all(p.hint for p in problems)


# --- file encodings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('[printers.p]\nhost = "h"\n'.encode("utf-16"), "UTF-16"),
        ('[printers.p]\nhost = "h"\n'.encode("utf-16-le"), "UTF-16"),
        (b'[printers.p]\nhost = "caf\xe9"\n', "not UTF-8 (line 2, byte 0xe9)"),
        (b"[printers.p\n", "not valid TOML"),
        (b"x = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ],
)
def test_undecodable_files(tmp_path: Path, raw: bytes, words: str) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert words in str(info.value)
    assert str(path) in str(info.value)
    assert info.value.hint


def test_a_utf8_bom_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'\xef\xbb\xbf[printers.p]\nhost = "h"\n')
    assert load_config_file(path) == {"printers": {"p": {"host": "h"}}}


def test_a_folder_as_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="it is a folder") as info:
        load_config_file(tmp_path)
    assert "BAMBU_CONFIG" in info.value.hint


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_readable_config_with_codes_warns_like_ssh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[printers.p]\naccess_code = "{CODE}"\n', encoding="utf-8")
    path.chmod(0o644)
    load_config_file(path)
    assert "can be read by other users (mode 644)" in caplog.text
    assert f"chmod 600 {path}" in caplog.text
    assert CODE not in caplog.text
    caplog.clear()
    path.chmod(0o600)
    other = tmp_path / "other.toml"
    shutil.copy(path, other)
    other.chmod(0o600)
    load_config_file(other)
    assert "other users" not in caplog.text


# --- normalisation of connection input ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("192.168.1.50", "192.168.1.50"),
        ("  192.168.1.50\t", "192.168.1.50"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("printer.local", "printer.local"),
        ("printer.local.", "printer.local."),
        ("drücker.lan", "drücker.lan"),
        ("bambu_a1", "bambu_a1"),
    ],
)
def test_hosts_that_are_accepted(text: str, host: str) -> None:
    assert normalize_host(text) == host


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("", "no printer address", "--host"),
        ("   ", "no printer address", "--host"),
        ("127.0.0.1:8883", "includes a port", "--host 127.0.0.1 --port 8883"),
        ("[::1]:8883", "includes a port", "--host ::1 --port 8883"),
        ("[::1", "unbalanced brackets", "without brackets"),
        ("[127.0.0.1]", "IPv6 addresses only", "--host 127.0.0.1"),
        ("http://192.168.1.5:8883/", "is a URL", "--host 192.168.1.5 --port 8883"),
        ("mqtts://[::1]", "is a URL", "--host ::1"),
        ("192.168.1 .5", "not an IP address or host name", "192.168.1.50"),
        ("a/b", "not an IP address or host name", "192.168.1.50"),
        ("192.168.1.300", "not a valid IPv4", "Settings > WLAN"),
        ("1::2::3", "not a valid IPv6", "Settings > WLAN"),
        ("a..b", "empty or longer than 63", "IP address"),
        ("x" * 64 + ".lan", "empty or longer than 63", "IP address"),
        (("a" * 60 + ".") * 5, "longer than 253", "IP address"),
        ("bad!name", "letters, digits", "IP address"),
        ("-lead", "letters, digits", "IP address"),
    ],
)
def test_hosts_that_are_refused(text: str, message: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        normalize_host(text)
    assert message in str(info.value)
    assert hint in info.value.hint


@pytest.mark.parametrize(
    ("value", "port"), [(8883, 8883), ("8883", 8883), (" 1 ", 1), (65535, 65535)]
)
def test_ports_that_are_accepted(value: object, port: int) -> None:
    assert parse_port(value) == port


@pytest.mark.parametrize("value", [0, 65536, 99999, -1, "x", "", "88 83", True, 8.5, None])
def test_ports_that_are_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="--port") as info:
        parse_port(value)
    assert "8883" in info.value.hint


def test_access_code_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "code"
    path.write_text(CODE + "\n", encoding="utf-8")
    path.chmod(0o600)
    assert read_access_code_file(path) == CODE
    monkeypatch.setattr("sys.stdin", _Lines(CODE + "\n"))
    assert read_access_code_file(Path("-")) == CODE


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "no such file"), (b"\xff\xfe\x00", "not UTF-8"), ("folder", "is a folder")],
)
def test_access_code_file_problems(tmp_path: Path, content: bytes | str | None, words: str) -> None:
    path = tmp_path / "code"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=words) as info:
        read_access_code_file(path)
    assert info.value.hint


def test_access_code_from_env_file_and_profile_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("BAMBU_ACCESS_CODE", "BAMBU_HOST", "BAMBU_SERIAL", "BAMBU_PORT"):
        monkeypatch.delenv(name, raising=False)
    code_file = tmp_path / "code"
    code_file.write_text("fileC0DE\n", encoding="utf-8")
    code_file.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[printers.p]\nhost = "h"\nserial = "{SERIAL}"\naccess_code_file = "{code_file}"\n',
        encoding="utf-8",
    )
    cfg = resolve_printer(printer="p", config_file=config)
    assert cfg.access_code.reveal() == "fileC0DE"
    other = tmp_path / "other"
    other.write_text("envF1LE0", encoding="utf-8")
    other.chmod(0o600)
    monkeypatch.setenv("BAMBU_ACCESS_CODE_FILE", str(other))
    assert resolve_printer(printer="p", config_file=config).access_code.reveal() == "envF1LE0"
    with pytest.raises(ConfigError, match="both --access-code"):
        resolve_printer(
            printer="p", config_file=config, access_code=CODE, access_code_file=code_file
        )


def test_insecure_with_a_ca_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--insecure and --ca-file contradict") as info:
        resolve_printer(
            host="h", serial=SERIAL, access_code=CODE, insecure=True, ca_file=tmp_path / "ca"
        )
    assert "drop --insecure" in info.value.hint


class _Lines:
    def __init__(self, text: str) -> None:
        self.text = text

    def readline(self) -> str:
        line, self.text = self.text, ""
        return line


def test_profile_values_are_checked_on_use_and_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[printers.a]\nhost = "10.0.0.5:8883"\nserial = "{SERIAL}"\naccess_code = "{CODE}"\n'
        f'[printers.b]\nhost = "10.0.0.6"\nserial = "{SERIAL}"\naccess_code = "{CODE}"\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    # The shape is right, so profile b works; a's bad value is named when a is used ...
    assert resolve_printer(printer="b", config_file=path).host == "10.0.0.6"
    with pytest.raises(ConfigError) as info:
        resolve_printer(printer="a", config_file=path)
    assert str(info.value).startswith(f"{path}: [printers.a] host: ")
    assert "includes a port" in str(info.value)
    # ... not when an option overrides it, and the doctor gets it as written.
    assert resolve_printer(printer="a", host="10.0.0.7", config_file=path).host == "10.0.0.7"
    assert resolve_printer(printer="a", config_file=path, validate=False).host == "10.0.0.5:8883"
    # `config check` (values=True) sees it without anything using the profile.
    _data, problems = read_config_file(path, values=True)
    assert [(p.profile, p.key) for p in problems] == [("a", "host")]
    assert read_config_file(path)[1] == []
