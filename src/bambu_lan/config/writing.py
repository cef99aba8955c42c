"""Adding a printer profile to the config file, keeping what is there."""

from __future__ import annotations

import re
from pathlib import Path

from bambu_lan.config.files import config_path, load_config_file
from bambu_lan.errors import ConfigError
from bambu_lan.local_files import write_atomically

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
    import tomllib  # here: only `config add` writes (a lean import path for the rest)

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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)  # created 0600: it holds access codes
    except OSError as exc:
        raise ConfigError(f"cannot write the config file {path}: {exc}") from None
    return path
