"""One normalisation of connection input, shared by every command and the library: the
host, a port, and an access code read from a file."""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path

from bambu_lan.errors import ConfigError
from bambu_lan.trust import warn_if_exposed

DEFAULT_FTPS_PORT = 990  # the printer's storage: implicit FTPS (protocol.md §8)

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
            f"{source} must be a port number, not {describe_value(value)}",
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


def describe_value(value: object) -> str:
    """A value as a person would name it: ``the string "false"``, ``a list``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {_quoted_short(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _quoted_short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")
