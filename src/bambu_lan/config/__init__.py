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

The package has one module a job: ``secret`` (the access code), ``inputs`` (host, port and
code-file normalisation), ``printer`` (``PrinterConfig``), ``schema`` (the checks),
``files`` (reading the file), ``resolve`` (precedence) and ``writing`` (adding a profile).
"""

from __future__ import annotations

from bambu_lan.config.files import (
    config_path,
    file_problems,
    load_config_file,
    read_config_file,
)
from bambu_lan.config.inputs import (
    DEFAULT_FTPS_PORT,
    normalize_host,
    parse_port,
    read_access_code_file,
)
from bambu_lan.config.printer import PrinterConfig
from bambu_lan.config.resolve import resolve_printer
from bambu_lan.config.schema import SCHEMA, TOP_LEVEL_KEYS, Checker, ConfigProblem, check_config
from bambu_lan.config.secret import Secret, access_code_problem, redact
from bambu_lan.config.writing import add_printer_profile

__all__ = [
    "DEFAULT_FTPS_PORT",
    "SCHEMA",
    "TOP_LEVEL_KEYS",
    "Checker",
    "ConfigProblem",
    "PrinterConfig",
    "Secret",
    "access_code_problem",
    "add_printer_profile",
    "check_config",
    "config_path",
    "file_problems",
    "load_config_file",
    "normalize_host",
    "parse_port",
    "read_access_code_file",
    "read_config_file",
    "redact",
    "resolve_printer",
]
