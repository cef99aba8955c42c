"""Reading the config file: where it is, decoding and parsing it, and checking it (and the
files it names) as a whole before use."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bambu_lan.config.inputs import read_access_code_file
from bambu_lan.config.schema import ConfigProblem, check_config
from bambu_lan.errors import ConfigError
from bambu_lan.trust import TrustConfig, warn_if_exposed


def config_path() -> Path:
    env = os.environ.get("BAMBU_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bambu-lan" / "config.toml"


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
    import tomllib  # here, not at the top: connecting without a config file never needs it

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
