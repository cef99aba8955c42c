"""``resolve_printer``: one printer's settings from CLI values, the environment and the
config file's profile, in that order of precedence."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bambu_lan.config.files import config_path, load_config_file
from bambu_lan.config.inputs import DEFAULT_FTPS_PORT, parse_port, read_access_code_file
from bambu_lan.config.printer import PrinterConfig
from bambu_lan.config.schema import check_config
from bambu_lan.config.secret import Secret
from bambu_lan.errors import ConfigError
from bambu_lan.protocol.topics import DEFAULT_PORT
from bambu_lan.trust import TrustConfig


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
    data: Mapping[str, Any] | None = None,
) -> PrinterConfig:
    """Settings from, in order of precedence: explicit values (CLI options), environment
    variables (BAMBU_HOST, BAMBU_SERIAL, BAMBU_ACCESS_CODE or BAMBU_ACCESS_CODE_FILE,
    BAMBU_PORT, BAMBU_FTPS_PORT, BAMBU_CA_FILE, BAMBU_CA_DIR), the named profile (or the
    file's ``default``).

    The config file is checked as a whole first. With ``validate`` (the default) the result
    is validated too: the doctor asks for the values as given, to report them step by step.
    ``data``: the file's content, already read with ``load_config_file`` (``serve`` resolves
    every profile of one read).
    """
    where = config_file or config_path()
    if data is None:
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
                "camera_port": camera_port is not None or bool(_env("BAMBU_CAMERA_PORT")),
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
    port_value = _port(port, "BAMBU_PORT", profile.get("port", DEFAULT_PORT))
    camera_port = _port(camera_port, "BAMBU_CAMERA_PORT", profile.get("camera_port"))
    ftps_value = _port(ftps_port, "BAMBU_FTPS_PORT", profile.get("ftps_port", DEFAULT_FTPS_PORT))
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


def _port(explicit: int | None, env_name: str, from_profile: Any) -> Any:
    """A port option as given (0 is refused by validate, not replaced by a default), else the
    environment variable (checked here, named in the error), else the profile's value."""
    if explicit is not None:
        return explicit
    if (env := _env(env_name)) is not None:
        return parse_port(env, source=env_name)
    return from_profile


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
