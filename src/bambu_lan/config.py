"""Printer settings: named profiles in a TOML file, environment variables, and a secret type
that never prints.

The config file lives at ``$XDG_CONFIG_HOME/bambu-lan/config.toml`` (``~/.config/...``), or
wherever ``BAMBU_CONFIG`` points::

    default = "workshop"          # optional, and before any table: used without --printer

    [printers.workshop]
    host = "192.168.1.50"
    serial = "03919A3B1200123"
    access_code = "12345678"
    ca_dir = "~/bambu_certs"     # optional; else the certificate is pinned on first use

The file is checked as a whole before anything uses it (``SCHEMA``: unknown keys, value
types, values); each problem names the file, the profile and the key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bambu_lan.errors import ConfigError
from bambu_lan.protocol.topics import DEFAULT_PORT, serial_problem
from bambu_lan.trust import TrustConfig, warn_if_exposed

log = logging.getLogger("bambu_lan.config")

DEFAULT_FTPS_PORT = 990  # the printer's storage: implicit FTPS (protocol.md §8)


class Secret:
    """A string that never shows itself in reprs, logs or f-strings: use ``.reveal()``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def redact(text: str, *secrets: Secret | str | None) -> str:
    """``text`` with every secret value replaced by ``********``."""
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if value:
            text = text.replace(value, "********")
    return text


def access_code_problem(code: str) -> str | None:
    """Why ``code`` cannot be a LAN access code, or None when it looks right."""
    if not code:
        return "the access code is empty"
    if code != code.strip():
        return "the access code has spaces around it"
    if len(code) != 8:
        return f"a LAN access code has 8 characters, this one has {len(code)}"
    if not code.isascii() or not code.isprintable():
        return "a LAN access code has only letters and digits"
    return None


# --- one normalisation of connection input (every command and the library) -----------------

_WHERE_HOST = "the printer shows its IP address in Settings > WLAN (A1) or Network (P1/X1)"
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?")


def normalize_host(text: str, *, source: str = "--host") -> str:
    """The printer's address as a plain IP address or host name, or a ConfigError whose hint
    says how to write it. Spaces around it are trimmed, ``[::1]`` loses its brackets; a port
    (``host:8883``), a URL (``mqtts://host``) or an invalid name is refused."""
    host = text.strip()
    if not host:
        raise ConfigError(
            "no printer address given",
            hint="pass --host IP (shown on the printer: Settings > WLAN), set BAMBU_HOST, "
            "or name a printer from the config file with --printer",
        )
    shown = repr(text)
    if "://" in host:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(host)
            inner, port = parts.hostname or "", parts.port
        except ValueError:
            inner, port = "", None
        fix = f"--host {inner}" if inner else "--host 192.168.1.50"
        raise ConfigError(
            f"{source} {shown} is a URL, not an address",
            hint=f"give the address alone: {fix}" + (f" --port {port}" if port else ""),
        )
    if any(char.isspace() for char in host) or "/" in host or "@" in host:
        raise ConfigError(
            f"{source} {shown} is not an IP address or host name",
            hint=f"give the address alone, e.g. --host 192.168.1.50; {_WHERE_HOST}",
        )
    if host.startswith("["):
        match = re.fullmatch(r"\[([^\[\]]*)\](?::(.*))?", host)
        if match is None:
            raise ConfigError(
                f"{source} {shown} has unbalanced brackets",
                hint="write an IPv6 address without brackets: --host fe80::1",
            )
        inner, port_text = match.groups()
        if port_text is not None:
            raise ConfigError(
                f"{source} {shown} includes a port",
                hint=f"pass the port separately: --host {inner} --port {port_text}",
            )
        host = inner
        if ":" not in host:
            raise ConfigError(
                f"{source} {shown}: brackets are for IPv6 addresses only",
                hint=f"write --host {host}",
            )
    if host.count(":") == 1:
        name, port_text = host.split(":")
        raise ConfigError(
            f"{source} {shown} includes a port",
            hint=f"pass the port separately: --host {name} --port {port_text}"
            if name
            else "pass the address with --host and the port with --port",
        )
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if ":" in host:
        raise ConfigError(
            f"{source} {shown} is not a valid IPv6 address",
            hint=f"check the address: {_WHERE_HOST}",
        )
    if re.fullmatch(r"[0-9.]+", host):
        raise ConfigError(
            f"{source} {shown} is not a valid IPv4 address (four numbers 0-255)",
            hint=f"check the address: {_WHERE_HOST}",
        )
    problem = _host_name_problem(host)
    if problem:
        raise ConfigError(
            f"{source} {shown} is not a valid host name: {problem}",
            hint=f"use the printer's IP address; {_WHERE_HOST}",
        )
    return host


def _host_name_problem(host: str) -> str | None:
    name = host.removesuffix(".")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        reason = str(exc.reason if isinstance(exc, UnicodeEncodeError) else exc)
        if "empty or too long" in reason:
            return "a part between dots is empty or longer than 63 characters"
        return "it cannot be written as an internationalised name (IDNA)"
    if len(ascii_name) > 253:
        return "longer than 253 characters"
    for label in ascii_name.split("."):
        if not label or len(label) > 63:
            return "a part between dots is empty or longer than 63 characters"
        if not _HOST_LABEL.fullmatch(label):
            return f"{label!r} may hold only letters, digits and inner hyphens"
    return None


def parse_port(value: object, *, source: str = "--port") -> int:
    """A TCP port from an option, a variable or the config file, or a ConfigError."""
    if isinstance(value, bool):
        number: int | None = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        number = None
    if number is None:
        raise ConfigError(
            f"{source} must be a port number, not {_describe(value)}",
            hint="leave it out: printers listen on 8883 (MQTT)",
        )
    if not 0 < number < 65536:
        raise ConfigError(
            f"{source} {number} is out of range (1-65535)",
            hint="leave it out: printers listen on 8883 (MQTT)",
        )
    return number


def read_access_code_file(path: Path, *, source: str = "--access-code-file") -> str:
    """The access code from a file (its first line), or from standard input for ``-``.

    A file keeps the code out of ``ps`` and shell history, where ``--access-code`` is seen
    by every local user."""
    if str(path) == "-":
        line = sys.stdin.readline()
        if not line:
            raise ConfigError(
                f"{source} -: nothing on standard input",
                hint="pipe the access code in, e.g. `pass show printer | bambu-lan status ...`",
            )
        return line.rstrip("\r\n")
    try:
        data = path.expanduser().read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{source}: no such file {path}",
            hint="write the 8-character access code into it (chmod 600), or pass - to read "
            "standard input",
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"{source}: {path} is a folder", hint="name the file that holds the access code"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{source}: cannot read {path}: {exc.strerror or exc}",
            hint="check its permissions (it should be readable by you alone: chmod 600)",
        ) from None
    warn_if_exposed(path.expanduser(), "the access code file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{source}: {path} is not UTF-8 text",
            hint="write the access code as plain text, e.g. `printf %s CODE > FILE`",
        ) from None
    lines = text.splitlines()
    return lines[0].strip() if lines else ""


# --- the printer's settings -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrinterConfig:
    """Everything needed to reach one printer."""

    host: str
    serial: str
    access_code: Secret = field(repr=False)
    port: int = DEFAULT_PORT
    trust: TrustConfig = field(default_factory=TrustConfig)
    name: str = ""
    camera_port: int | None = None  # None: the model's own (6000 JPEG, 322 RTSPS)
    ftps_port: int = DEFAULT_FTPS_PORT

    def validate(self) -> PrinterConfig:
        """This config with the host normalised, or a ConfigError for the first problem
        (checked before any connection: host, serial, access code, port, trust files)."""
        host = normalize_host(self.host)
        problem = serial_problem(self.serial)
        if problem:
            raise ConfigError(
                f"serial number: {problem}",
                hint="the serial is on the printer's screen (Settings > Device) and its label",
            )
        code_problem = access_code_problem(self.access_code.reveal())
        if code_problem:
            raise ConfigError(
                code_problem,
                hint="the access code is on the printer's screen (Settings > WLAN on the A1, "
                "LAN-only mode); pass --access-code-file FILE, --access-code or set "
                "BAMBU_ACCESS_CODE",
            )
        parse_port(self.port)
        if self.camera_port is not None:
            parse_port(self.camera_port, source="--camera-port")
        parse_port(self.ftps_port, source="ftps_port")
        self.trust.check()
        return self if host == self.host else dataclasses.replace(self, host=host)

    @property
    def label(self) -> str:
        return self.name or self.serial


# --- the config file and its schema ---------------------------------------------------------


def config_path() -> Path:
    env = os.environ.get("BAMBU_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bambu-lan" / "config.toml"


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong in the config file, with where it is and how to fix it."""

    file: Path
    profile: str | None  # None: the top level
    key: str
    message: str
    hint: str

    def __str__(self) -> str:
        where = f"[printers.{self.profile}] " if self.profile is not None else ""
        return f"{self.file}: {where}{self.key}: {self.message}"

    def error(self, more: int = 0) -> ConfigError:
        hint = self.hint
        if more:
            hint += f"; {more} more problem{'s' if more > 1 else ''}: `bambu-lan config check`"
        return ConfigError(str(self), hint=hint)


def _describe(value: object) -> str:
    """A value as a person would name it: ``the string "false"``, ``a list``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {_short(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


# A checker returns None when the value is right, else (problem, hint).
Checker = Callable[[str, Any], "tuple[str, str] | None"]


def _text(what: str, value_problem: Callable[[str], str | None] | None = None) -> Checker:
    def check(key: str, value: Any) -> tuple[str, str] | None:
        if not isinstance(value, str):
            quoted = f'"{value}"' if isinstance(value, int | float) else '"..."'
            return (
                f"must be a string ({what}), not {_describe(value)}",
                f"write {key} = {quoted} (in quotes)",
            )
        problem = value_problem(value) if value_problem else None
        return (problem, f"fix {key}: {what}") if problem else None

    return check


def _path_value(key: str, value: Any) -> tuple[str, str] | None:
    if not isinstance(value, str) or not value.strip():
        return (
            f"must be a path in quotes, not {_describe(value)}",
            f'write {key} = "~/bambu_certs/bambu.cert" (a path in quotes)',
        )
    return None


def _boolean(key: str, value: Any) -> tuple[str, str] | None:
    if isinstance(value, bool):
        return None
    word = value.strip().lower() if isinstance(value, str) else ""
    example = "false" if word in ("false", "no", "off", "0") else "true"
    return (
        f"must be true or false, not {_describe(value)}",
        f'write {key} = {example} (no quotes: a quoted "false" is text, not false)',
    )


def _port_value(key: str, value: Any) -> tuple[str, str] | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return (f"must be a port number, not {_describe(value)}", f"write {key} = 8883 (no quotes)")
    if not 0 < value < 65536:
        return (f"{value} is out of range (1-65535)", f"leave {key} out for the default")
    return None


def _host_value(key: str, value: Any) -> tuple[str, str] | None:
    found = _text("an IP address or host name")(key, value)
    if found:
        return found
    try:
        normalize_host(value, source=key)
    except ConfigError as exc:
        return (
            str(exc).removeprefix(f"{key} "),
            f'write {key} = "192.168.1.50": the address alone (a port goes in port = 8883)',
        )
    return None


#: Every key a [printers.NAME] table may hold, and how its value is checked. Other parts of
#: bambu-lan add their keys here (e.g. ftps_port, camera_port).
SCHEMA: dict[str, Checker] = {
    "host": _host_value,
    "serial": _text("15 characters, upper case", serial_problem),
    "access_code": _text("the 8-character LAN access code", access_code_problem),
    "access_code_file": _path_value,
    "port": _port_value,
    "ca_file": _path_value,
    "ca_dir": _path_value,
    "insecure": _boolean,
    "known_printers": _path_value,
    "ftps_port": _port_value,
    "camera_port": _port_value,
}
# [serve] belongs to `bambu-lan serve`, which checks its keys when it reads them (and
# `bambu-lan config check` runs that check too).
TOP_LEVEL_KEYS = ("default", "printers", "serve")


def _type_only(checker: Checker, key: str, value: Any) -> tuple[str, str] | None:
    """The checker's verdict on the type of ``value`` only."""
    found = checker(key, value)
    if found is None or checker in (_path_value, _boolean):  # nothing but shape to check
        return found
    kind = _right_type(key)
    return (
        found if not isinstance(value, kind) or (kind is int and isinstance(value, bool)) else None
    )


def _right_type(key: str) -> type:
    if SCHEMA[key] is _boolean:
        return bool
    if SCHEMA[key] is _port_value:
        return int
    return str


def _did_you_mean(key: str, known: Any) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    listed = ", ".join(known)
    return f"did you mean {close[0]}? known keys: {listed}" if close else f"known keys: {listed}"


def check_config(
    data: Mapping[str, Any], file: Path, *, values: bool = True
) -> list[ConfigProblem]:
    """Every problem of a parsed config file (empty when it is right).

    Without ``values`` only the shape is checked (unknown keys, types, contradictions): what
    every command checks before it uses the file. A profile's values (a host with a port, a
    lower-case serial, a port out of range) are then checked when that profile is used, so
    that the doctor can diagnose them step by step; ``config check`` checks them all.
    """
    problems: list[ConfigProblem] = []

    def problem(profile: str | None, key: str, message: str, hint: str) -> None:
        problems.append(ConfigProblem(file, profile, key, message, hint))

    for key in data:
        if key in TOP_LEVEL_KEYS:
            continue
        if key in SCHEMA:
            problem(
                None, key, f"{key} belongs in a printer's table", "move it under [printers.NAME]"
            )
        else:
            problem(None, key, "unknown key", _did_you_mean(key, TOP_LEVEL_KEYS))
    printers = data.get("printers", {})
    if not isinstance(printers, dict):
        problem(
            None,
            "printers",
            f"must be tables, not {_describe(printers)}",
            'write [printers.NAME] with host = "...", serial = "...", access_code = "..."',
        )
        printers = {}
    for name, profile in printers.items():
        if not isinstance(profile, dict):
            problem(None, f"printers.{name}", f"must be a table, not {_describe(profile)}",
                    f'write it as [printers.{name}] with host = "...", serial = "..."')  # fmt: skip
            continue
        for key, value in profile.items():
            checker = SCHEMA.get(key)
            if checker is None:
                problem(name, key, "unknown key", _did_you_mean(key, SCHEMA))
                continue
            found = checker(key, value) if values else _type_only(checker, key, value)
            if found:
                problem(name, key, *found)
        if "access_code" in profile and "access_code_file" in profile:
            problem(name, "access_code_file", "access_code and access_code_file both given",
                    "keep one: access_code_file keeps the code out of this file")  # fmt: skip
        if profile.get("insecure") is True and ("ca_file" in profile or "ca_dir" in profile):
            problem(name, "insecure", "insecure = true would drop the CA of ca_file/ca_dir",
                    "remove insecure (the CA then checks the printer) or the CA key")  # fmt: skip
    default = data.get("default")
    if default is not None:
        if not isinstance(default, str):
            problem(
                None,
                "default",
                f"must be a printer's name in quotes, not {_describe(default)}",
                'write default = "NAME" before any [table]',
            )
        elif default not in printers:
            known = ", ".join(printers) or "none"
            problem(None, "default", f"names no printer: {default!r}",
                    f"printers defined: {known}")  # fmt: skip
    return problems


def read_config_file(
    path: Path | None = None, *, values: bool = False
) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """The parsed file and its schema problems (``values``: the values too, see
    ``check_config``); a file that cannot be read or parsed at all is a ConfigError. A
    missing file is an empty config."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, []
    except IsADirectoryError:
        raise ConfigError(
            f"cannot read the config file {path}: it is a folder",
            hint="point BAMBU_CONFIG at a file (config.toml), or remove the folder",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config file {path}: {exc.strerror or exc}",
            hint="check its permissions, or point BAMBU_CONFIG at another file",
        ) from None
    text = _decode_config(raw, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"the config file {path} is not valid TOML: {exc}",
            hint="fix the line it names (strings need quotes), or move the file away",
        ) from None
    except RecursionError:
        raise ConfigError(
            f"the config file {path} is nested too deeply",
            hint="a printer's table holds plain values: host, serial, access_code, ...",
        ) from None
    if _holds_secrets(data):
        warn_if_exposed(path, "the config file, which holds access codes,")
    return data, check_config(data, path, values=values)


def _decode_config(raw: bytes, path: Path) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw[:200]:
        raise ConfigError(
            f"the config file {path} is saved as UTF-16; TOML files are UTF-8",
            hint="save it again as UTF-8 (in Notepad: Save as > Encoding: UTF-8)",
        )
    try:
        return raw.decode("utf-8-sig")  # a UTF-8 BOM (Notepad) is harmless: dropped
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"the config file {path} is not UTF-8 (line {line}, byte 0x{raw[exc.start]:02x})",
            hint="save it again as UTF-8; TOML files are UTF-8",
        ) from None


def _holds_secrets(data: Mapping[str, Any]) -> bool:
    printers = data.get("printers")
    if not isinstance(printers, dict):
        return False
    return any(isinstance(p, dict) and p.get("access_code") for p in printers.values())


def load_config_file(path: Path | None = None) -> dict[str, Any]:
    """The config file, checked as a whole: its first problem is a ConfigError."""
    data, problems = read_config_file(path)
    if problems:
        raise problems[0].error(more=len(problems) - 1)
    return data


def file_problems(data: Mapping[str, Any], file: Path) -> list[ConfigProblem]:
    """Problems with the files a (schema-valid) config names: CA files and folders, access
    code files. ``bambu-lan config check`` looks at every printer; a command only at its own,
    when it uses it."""
    problems: list[ConfigProblem] = []
    printers = data.get("printers")
    for name, profile in (printers or {}).items() if isinstance(printers, dict) else ():
        if not isinstance(profile, dict):
            continue
        for key in ("ca_file", "ca_dir", "access_code_file"):
            value = profile.get(key)
            if not isinstance(value, str) or not value.strip():
                continue
            try:
                if key == "access_code_file":
                    read_access_code_file(Path(value), source=key)
                elif key == "ca_file":
                    TrustConfig(ca_file=Path(value).expanduser()).ca_files()
                else:
                    TrustConfig(ca_dir=Path(value).expanduser()).ca_files()
            except ConfigError as exc:
                problems.append(ConfigProblem(file, name, key, str(exc), exc.hint))
    return problems


def _path(value: Any) -> Path | None:
    return Path(str(value)).expanduser() if value else None


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def resolve_printer(
    *,
    printer: str | None = None,
    host: str | None = None,
    serial: str | None = None,
    access_code: str | None = None,
    access_code_file: Path | None = None,
    port: int | None = None,
    ftps_port: int | None = None,
    ca_file: Path | None = None,
    ca_dir: Path | None = None,
    insecure: bool = False,
    known_printers: Path | None = None,
    config_file: Path | None = None,
    validate: bool = True,
    camera_port: int | None = None,
) -> PrinterConfig:
    """Settings from, in order of precedence: explicit values (CLI options), environment
    variables (BAMBU_HOST, BAMBU_SERIAL, BAMBU_ACCESS_CODE or BAMBU_ACCESS_CODE_FILE,
    BAMBU_PORT, BAMBU_FTPS_PORT, BAMBU_CA_FILE, BAMBU_CA_DIR), the named profile (or the
    file's ``default``).

    The config file is checked as a whole first. With ``validate`` (the default) the result
    is validated too: the doctor asks for the values as given, to report them step by step.
    """
    where = config_file or config_path()
    data = load_config_file(where)
    printers = data.get("printers", {})
    profile: dict[str, Any] = {}
    name = printer or _env("BAMBU_PRINTER") or data.get("default")
    if name:
        if name not in printers:
            known = ", ".join(sorted(printers)) or "none"
            raise ConfigError(
                f"no printer named {name!r} in {where}",
                hint=f"printers defined there: {known}",
            )
        profile = printers[name]
        if validate:  # the values this profile gives (not overridden): named by file and key
            overridden = {
                "host": bool(host or _env("BAMBU_HOST")),
                "serial": bool(serial or _env("BAMBU_SERIAL")),
                "port": port is not None or bool(_env("BAMBU_PORT")),
                "ftps_port": ftps_port is not None or bool(_env("BAMBU_FTPS_PORT")),
                "access_code": bool(
                    access_code
                    or access_code_file
                    or _env("BAMBU_ACCESS_CODE")
                    or _env("BAMBU_ACCESS_CODE_FILE")
                ),
            }
            used = {k: v for k, v in profile.items() if not overridden.get(k, False)}
            problems = check_config({"printers": {name: used}}, where)
            if problems:
                raise problems[0].error(more=len(problems) - 1)
    if access_code and access_code_file:
        raise ConfigError(
            "both --access-code (or BAMBU_ACCESS_CODE) and --access-code-file (or "
            "BAMBU_ACCESS_CODE_FILE) given",
            hint="use one: --access-code-file keeps the code out of `ps` and shell history",
        )
    # An explicit port is used as given (0 is refused by validate, not replaced by the default).
    if port is not None:
        port_value = port
    elif (env_port := _env("BAMBU_PORT")) is not None:
        port_value = parse_port(env_port, source="BAMBU_PORT")
    else:
        port_value = profile.get("port", DEFAULT_PORT)
    if camera_port is None and (env_camera := _env("BAMBU_CAMERA_PORT")) is not None:
        camera_port = parse_port(env_camera, source="BAMBU_CAMERA_PORT")
    if camera_port is None:
        camera_port = profile.get("camera_port")
    if ftps_port is not None:
        ftps_value = ftps_port
    elif (env_ftps := _env("BAMBU_FTPS_PORT")) is not None:
        ftps_value = parse_port(env_ftps, source="BAMBU_FTPS_PORT")
    else:
        ftps_value = profile.get("ftps_port", DEFAULT_FTPS_PORT)
    explicit_ca = ca_file or ca_dir
    env_ca = _path(_env("BAMBU_CA_FILE")) or _path(_env("BAMBU_CA_DIR"))
    trust = TrustConfig(
        # The most specific source of trust wins as a whole: a --ca-dir is not mixed with
        # the profile's ca_file.
        ca_file=ca_file if explicit_ca else _path(_env("BAMBU_CA_FILE")) if env_ca
        else _path(profile.get("ca_file")),
        ca_dir=ca_dir if explicit_ca else _path(_env("BAMBU_CA_DIR")) if env_ca
        else _path(profile.get("ca_dir")),
        known_printers=known_printers or _path(profile.get("known_printers")),
        insecure=insecure or profile.get("insecure") is True,
    )  # fmt: skip
    config = PrinterConfig(
        host=host or _env("BAMBU_HOST") or profile.get("host", ""),
        serial=serial or _env("BAMBU_SERIAL") or profile.get("serial", ""),
        access_code=Secret(_access_code(access_code, access_code_file, profile)),
        port=port_value,
        trust=trust,
        name=str(name or ""),
        camera_port=camera_port,
        ftps_port=ftps_value,
    )
    return config.validate() if validate else config


def _access_code(
    explicit: str | None, explicit_file: Path | None, profile: Mapping[str, Any]
) -> str:
    if explicit:
        return explicit
    if explicit_file:
        return read_access_code_file(explicit_file)
    if env := _env("BAMBU_ACCESS_CODE"):
        return env
    if env_file := _env("BAMBU_ACCESS_CODE_FILE"):
        return read_access_code_file(Path(env_file), source="BAMBU_ACCESS_CODE_FILE")
    if file := profile.get("access_code_file"):
        return read_access_code_file(Path(file), source="access_code_file")
    code: str = profile.get("access_code", "")
    return code


_PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _toml_string(value: str) -> str:
    escaped = "".join(
        {"\\": "\\\\", '"': '\\"'}.get(c, c) if c.isprintable() else f"\\u{ord(c):04x}"
        for c in value
    )
    return f'"{escaped}"'


def add_printer_profile(
    name: str,
    values: dict[str, str | int],
    *,
    path: Path | None = None,
    make_default: bool = False,
) -> Path:
    """Append ``[printers.NAME]`` with ``values`` to the config file, keeping what is there
    (comments included). The file is written atomically and left readable by its owner only
    (mode 0600): it holds access codes. ConfigError if NAME exists or the file is not TOML."""
    path = path or config_path()
    if not _PROFILE_NAME.fullmatch(name):
        raise ConfigError(
            f"invalid printer name {name!r}",
            hint="use letters, digits, '-' and '_' (e.g. workshop-a1)",
        )
    data = load_config_file(path)
    printers = data.get("printers")
    if isinstance(printers, dict) and name in printers:
        raise ConfigError(
            f"a printer named {name!r} is already in {path}",
            hint="pick another name, or edit the file (`bambu-lan config path`)",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    if make_default:
        line = f"default = {_toml_string(name)}"
        text, count = re.subn(r"(?m)^default\s*=.*$", line, text, count=1)
        if not count:
            text = f"{line}\n\n{text}"
    block = [f"[printers.{name}]"]
    for key, value in values.items():
        block.append(f"{key} = {value if isinstance(value, int) else _toml_string(value)}")
    text = (text.rstrip() + "\n\n" if text.strip() else "") + "\n".join(block) + "\n"
    tomllib.loads(text)  # never write a file that does not read back
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config.", dir=path.parent)  # created 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise ConfigError(f"cannot write the config file {path}: {exc}") from None
    return path
