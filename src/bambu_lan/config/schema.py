"""The config file's schema: every key a profile may hold, how its value is checked, and
``check_config``, which lists every problem of a parsed file with where it is."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bambu_lan.config.inputs import describe_value, normalize_host
from bambu_lan.config.secret import access_code_problem
from bambu_lan.errors import ConfigError
from bambu_lan.protocol.records import Record, record
from bambu_lan.protocol.topics import serial_problem


@record(slots=True)  # a frozen dataclass, cheaper to import (records.py)
class ConfigProblem(Record):
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


# A checker returns None when the value is right, else (problem, hint).
Checker = Callable[[str, Any], "tuple[str, str] | None"]


def _text(what: str, value_problem: Callable[[str], str | None] | None = None) -> Checker:
    def check(key: str, value: Any) -> tuple[str, str] | None:
        if not isinstance(value, str):
            quoted = f'"{value}"' if isinstance(value, int | float) else '"..."'
            return (
                f"must be a string ({what}), not {describe_value(value)}",
                f"write {key} = {quoted} (in quotes)",
            )
        problem = value_problem(value) if value_problem else None
        return (problem, f"fix {key}: {what}") if problem else None

    return check


def _path_value(key: str, value: Any) -> tuple[str, str] | None:
    if not isinstance(value, str) or not value.strip():
        return (
            f"must be a path in quotes, not {describe_value(value)}",
            f'write {key} = "~/bambu_certs/bambu.cert" (a path in quotes)',
        )
    return None


def _boolean(key: str, value: Any) -> tuple[str, str] | None:
    if isinstance(value, bool):
        return None
    word = value.strip().lower() if isinstance(value, str) else ""
    example = "false" if word in ("false", "no", "off", "0") else "true"
    return (
        f"must be true or false, not {describe_value(value)}",
        f'write {key} = {example} (no quotes: a quoted "false" is text, not false)',
    )


def _port_value(key: str, value: Any) -> tuple[str, str] | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return (
            f"must be a port number, not {describe_value(value)}",
            f"write {key} = 8883 (no quotes)",
        )
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
            f"must be tables, not {describe_value(printers)}",
            'write [printers.NAME] with host = "...", serial = "...", access_code = "..."',
        )
        printers = {}
    for name, profile in printers.items():
        if not isinstance(profile, dict):
            problem(None, f"printers.{name}", f"must be a table, not {describe_value(profile)}",
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
                f"must be a printer's name in quotes, not {describe_value(default)}",
                'write default = "NAME" before any [table]',
            )
        elif default not in printers:
            known = ", ".join(printers) or "none"
            problem(None, "default", f"names no printer: {default!r}",
                    f"printers defined: {known}")  # fmt: skip
    return problems
