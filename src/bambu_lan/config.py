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
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bambu_lan.errors import ConfigError
from bambu_lan.protocol.topics import DEFAULT_PORT, serial_problem
from bambu_lan.trust import TrustConfig


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

    def validate(self) -> PrinterConfig:
        if not self.host:
            raise ConfigError(
                "no printer address given",
                hint="pass --host IP (shown on the printer: Settings > WLAN), set BAMBU_HOST, "
                "or name a printer from the config file with --printer",
            )
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
                "LAN-only mode); pass --access-code or set BAMBU_ACCESS_CODE",
            )
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is out of range")
        if self.camera_port is not None and not 0 < self.camera_port < 65536:
            raise ConfigError(f"camera port {self.camera_port} is out of range")
        return self

    @property
    def label(self) -> str:
        return self.name or self.serial


def config_path() -> Path:
    env = os.environ.get("BAMBU_CONFIG")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bambu-lan" / "config.toml"


def load_config_file(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"the config file {path} is not valid TOML: {exc}",
            hint="fix the line it names (strings need quotes), or move the file away",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None


def _path(value: Any) -> Path | None:
    return Path(str(value)).expanduser() if value else None


def resolve_printer(
    *,
    printer: str | None = None,
    host: str | None = None,
    serial: str | None = None,
    access_code: str | None = None,
    port: int | None = None,
    ca_file: Path | None = None,
    ca_dir: Path | None = None,
    insecure: bool = False,
    known_printers: Path | None = None,
    config_file: Path | None = None,
    validate: bool = True,
    camera_port: int | None = None,
) -> PrinterConfig:
    """Settings from, in order of precedence: explicit values (CLI options), environment
    variables (BAMBU_HOST, BAMBU_SERIAL, BAMBU_ACCESS_CODE, BAMBU_PORT), the named profile
    (or the file's ``default``)."""
    data = load_config_file(config_file)
    printers = data.get("printers", {}) if isinstance(data.get("printers"), dict) else {}
    profile: dict[str, Any] = {}
    name = printer or os.environ.get("BAMBU_PRINTER") or data.get("default")
    if name:
        where = config_file or config_path()
        # A `default` of the wrong type (a list, a table) is a name that is not there.
        if not isinstance(name, str) or name not in printers:
            known = ", ".join(sorted(printers)) or "none"
            raise ConfigError(
                f"no printer named {name!r} in {where}",
                hint=f"printers defined there: {known}",
            )
        profile = printers[name]
        if not isinstance(profile, dict):
            raise ConfigError(
                f"printer {name!r} in {where} is not a table",
                hint=f'write it as [printers.{name}] with host = "...", serial = "...", '
                'access_code = "..."',
            )
    env = os.environ
    # An explicit port is used as given (0 is refused by validate, not replaced by the default).
    port_text: Any = port if port is not None else env.get("BAMBU_PORT") or profile.get("port")
    try:
        port_value = int(port_text) if port_text is not None and port_text != "" else DEFAULT_PORT
    except (TypeError, ValueError):
        raise ConfigError(f"port must be a number, not {port_text!r}") from None
    camera_text: Any = (
        camera_port if camera_port is not None else env.get("BAMBU_CAMERA_PORT")
    ) or profile.get("camera_port")
    try:
        camera_value = int(camera_text) if camera_text not in (None, "") else None
    except (TypeError, ValueError):
        raise ConfigError(f"camera_port must be a number, not {camera_text!r}") from None
    trust = TrustConfig(
        ca_file=ca_file or _path(env.get("BAMBU_CA_FILE")) or _path(profile.get("ca_file")),
        ca_dir=ca_dir or _path(env.get("BAMBU_CA_DIR")) or _path(profile.get("ca_dir")),
        known_printers=known_printers or _path(profile.get("known_printers")),
        insecure=insecure or bool(profile.get("insecure", False)),
    )
    config = PrinterConfig(
        host=host or env.get("BAMBU_HOST") or str(profile.get("host", "")),
        serial=serial or env.get("BAMBU_SERIAL") or str(profile.get("serial", "")),
        access_code=Secret(
            access_code or env.get("BAMBU_ACCESS_CODE") or str(profile.get("access_code", ""))
        ),
        port=port_value,
        trust=trust,
        name=str(name or ""),
        camera_port=camera_value,
    )
    # The doctor wants bad input as it was typed, to report it step by step.
    return config.validate() if validate else config


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
