"""Options shared by every command that talks to a printer, and the helpers that run them.

Importing this module costs only click: the library (paho, cryptography, orjson) is imported
inside the commands, so ``bambu-lan --help`` stays fast.

A command declares its connection options with one decorator and receives them as one
``ConnectionParams`` value::

    @click.command()
    @connection_options
    @json_option
    def status(conn: ConnectionParams, as_json: bool) -> None:
        cfg = conn.resolve()          # a validated PrinterConfig (ConfigError otherwise)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from bambu_lan.config import PrinterConfig
    from bambu_lan.errors import BambuError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

INSECURE_WARNING = (
    "WARNING: --insecure: the printer's identity is NOT checked. The access code goes to "
    "whoever answers at this address. Use --ca-file/--ca-dir, or drop --insecure to pin the "
    "certificate on first use."
)


class BadInput(click.BadParameter):
    """A bad argument with its own hint (shown instead of "see --help")."""

    def __init__(self, message: str, *, param_hint: str, hint: str) -> None:
        super().__init__(message, param_hint=param_hint)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class ConnectionParams:
    """The connection options as given on the command line (not yet merged with the
    environment and the config file: ``resolve()`` does that)."""

    host: str | None
    serial: str | None
    access_code: str | None
    port: int | None
    ca_file: Path | None
    ca_dir: Path | None
    insecure: bool
    printer: str | None
    known_printers: Path | None
    access_code_file: Path | None = None

    def __repr__(self) -> str:  # never show the access code
        return (
            f"ConnectionParams(host={self.host!r}, serial={self.serial!r}, port={self.port!r}, "
            f"printer={self.printer!r})"
        )

    def resolve(
        self,
        *,
        validate: bool = True,
        ftps_port: int | None = None,
        camera_port: int | None = None,
    ) -> PrinterConfig:
        """A validated ``PrinterConfig``: options, then BAMBU_* variables, then the profile
        (``validate=False``: the values as given, for the doctor to report step by step).

        ``ftps_port`` and ``camera_port`` are the options of the commands that have them
        (``--ftps-port``, ``--camera-port``); like the other options they win over the
        environment and the profile."""
        from bambu_lan.config import resolve_printer

        cfg = resolve_printer(
            ftps_port=ftps_port,
            camera_port=camera_port,
            printer=self.printer,
            host=self.host,
            serial=self.serial,
            access_code=self.access_code,
            access_code_file=self.access_code_file,
            port=self.port,
            ca_file=self.ca_file,
            ca_dir=self.ca_dir,
            insecure=self.insecure,
            known_printers=self.known_printers,
            validate=validate,
        )
        if cfg.trust.insecure and validate:
            from bambu_lan.trust import warn_insecure

            # The banner instead of the library's logged warning: said once, in red.
            warn_insecure(
                cfg.label,
                cfg.serial,
                cfg.host,
                show=lambda: click.secho(INSECURE_WARNING, fg="red", bold=True, err=True),
            )
        return cfg


_PATH = click.Path(path_type=Path, dir_okay=False)
_DIR = click.Path(path_type=Path, file_okay=False)

_CONNECTION_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--host",
        envvar="BAMBU_HOST",
        metavar="IP",
        help="The printer's IP address (A1: Settings > WLAN on its screen). Env: BAMBU_HOST.",
    ),
    click.option(
        "--serial",
        envvar="BAMBU_SERIAL",
        metavar="SERIAL",
        help="The printer's serial number, 15 characters, upper case (Settings > Device). "
        "Env: BAMBU_SERIAL.",
    ),
    click.option(
        "--access-code",
        envvar="BAMBU_ACCESS_CODE",
        metavar="CODE",
        show_default=False,
        help="The 8-character LAN access code (Settings > WLAN; it changes when LAN-only or "
        "Developer Mode is toggled). Env: BAMBU_ACCESS_CODE. Never printed. Other local users "
        "can see a command line (ps): prefer --access-code-file.",
    ),
    click.option(
        "--access-code-file",
        envvar="BAMBU_ACCESS_CODE_FILE",
        type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
        metavar="FILE",
        help="Read the access code from FILE's first line (- for standard input), out of "
        "sight of `ps` and shell history. Env: BAMBU_ACCESS_CODE_FILE.",
    ),
    click.option(
        "--port",
        type=click.IntRange(1, 65535),
        metavar="PORT",
        help="MQTT port.  [default: 8883; env: BAMBU_PORT]",
    ),
    click.option(
        "--ca-file",
        type=_PATH,
        metavar="FILE",
        help="Trust the printer through this CA bundle (e.g. bambu_certs/bambu.cert) and check "
        "that its certificate names the serial. Env: BAMBU_CA_FILE.",
    ),
    click.option(
        "--ca-dir",
        type=_DIR,
        metavar="DIR",
        help="A bambu_certs/ folder: trust every .cert/.pem/.crt in it. Env: BAMBU_CA_DIR.",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        help="Do not check the printer's identity at all (loud warning). Without a CA, the "
        "certificate is pinned on first use instead, like SSH.",
    ),
    click.option(
        "--printer",
        "printer_name",
        envvar="BAMBU_PRINTER",
        metavar="NAME",
        help="A printer profile from the config file (`bambu-lan config path`). "
        "Env: BAMBU_PRINTER.",
    ),
    click.option(
        "--known-printers",
        type=_PATH,
        metavar="FILE",
        hidden=True,
        help="The pin file (default: ~/.config/bambu-lan/known_printers or BAMBU_KNOWN_PRINTERS).",
    ),
]

_KEYS = (
    "host",
    "serial",
    "access_code",
    "access_code_file",
    "port",
    "ca_file",
    "ca_dir",
    "insecure",
    "printer_name",
    "known_printers",
)


def connection_options(func: F) -> F:
    """Add --host, --serial, --access-code, --access-code-file, --port, --ca-file, --ca-dir,
    --insecure and --printer; the command receives them as ``conn: ConnectionParams``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {key: kwargs.pop(key) for key in _KEYS}
        conn = ConnectionParams(
            host=values["host"],
            serial=values["serial"],
            access_code=values["access_code"],
            port=values["port"],
            ca_file=values["ca_file"],
            ca_dir=values["ca_dir"],
            insecure=bool(values["insecure"]),
            printer=values["printer_name"],
            known_printers=values["known_printers"],
            access_code_file=values["access_code_file"],
        )
        return func(*args, conn=conn, **kwargs)

    decorated: Any = wrapper
    for option in reversed(_CONNECTION_OPTIONS):
        decorated = option(decorated)
    result: F = decorated
    return result


def ftps_port_option(func: F) -> F:
    """Add --ftps-port (the printer's storage port); the command receives ``ftps_port`` and
    passes it to ``conn.resolve(ftps_port=...)``."""
    decorated: F = click.option(
        "--ftps-port",
        type=click.IntRange(1, 65535),
        metavar="PORT",
        help="The printer's FTPS (storage) port.  [default: 990; env: BAMBU_FTPS_PORT; "
        "config: ftps_port]",
    )(func)
    return decorated


def json_option(func: F) -> F:
    """Add --json; the command receives it as ``as_json``."""
    decorated: F = click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Machine-readable output: JSON on stdout (errors too, with exit code 2).",
    )(func)
    return decorated


# --- output ---------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if hasattr(value, "items"):
        return dict(value.items())
    return str(value)


def dumps(obj: Any) -> str:
    """One line of JSON (non-ASCII kept, unknown types as strings)."""
    return json.dumps(obj, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def echo_json(obj: Any) -> None:
    """Print one JSON object on one line and flush it (for pipes and `jq`)."""
    click.echo(dumps(obj))
    sys.stdout.flush()


def hint_for(exc: BambuError) -> str:
    """The error's own hint, or a next step for its kind: every error shows a hint."""
    from bambu_lan import errors

    if exc.hint:
        return exc.hint
    fallbacks: list[tuple[type[BambuError], str]] = [
        (errors.CommandTimeout, "the printer did not confirm in time: check its state with "
         "`bambu-lan status`, or pass a longer --timeout"),
        (errors.CommandRejected, "the printer's reason is above; check its state with "
         "`bambu-lan status` (pause and stop need a running print)"),
        (errors.ConnectError, "check that the printer is on and on the network; "
         "`bambu-lan doctor` finds the cause step by step"),
        (errors.NotConnected, "the connection dropped: try again, or run `bambu-lan doctor`"),
        (errors.ConfigError, "see `bambu-lan config check` and `bambu-lan --help`"),
    ]  # fmt: skip
    for kind, hint in fallbacks:
        if isinstance(exc, kind):
            return hint
    return "run again with --debug for details, or `bambu-lan doctor`"


def error_dict(exc: BambuError) -> dict[str, Any]:
    """A library error as JSON-ready data (the messages never contain the access code)."""
    return {"type": type(exc).__name__, "message": str(exc), "hint": hint_for(exc)}


def echo_error(message: object, hint: object | None) -> None:
    """The one ``error:`` line and ``hint:`` line on stderr; messages can quote a printer,
    so both are made terminal-safe."""
    from bambu_lan.text import terminal_safe

    click.echo(f"error: {terminal_safe(message)}", err=True)
    if hint:
        click.echo(f"hint: {terminal_safe(hint)}", err=True)


@contextlib.contextmanager
def json_errors(as_json: bool) -> Iterator[None]:
    """With --json: a library error becomes ``{"ok": false, "error": {...}}`` on stdout plus
    the usual ``error:``/``hint:`` lines on stderr, and exit code 2. Without: unchanged (the
    entry point prints the error and hint)."""
    from bambu_lan.errors import BambuError

    try:
        yield
    except BambuError as exc:
        if not as_json:
            raise
        echo_json({"ok": False, "error": error_dict(exc)})
        echo_error(exc, hint_for(exc))
        raise SystemExit(2) from None


# --- running --------------------------------------------------------------------------------


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine. SIGTERM cancels it like Ctrl-C does, so ``async with``
    blocks still end cleanly (MQTT DISCONNECT sent) when a service manager stops us; the
    process then exits with 143 (Ctrl-C: KeyboardInterrupt, handled by the caller)."""
    terminated = False

    async def main() -> T:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        installed = False

        def on_sigterm() -> None:
            nonlocal terminated
            terminated = True
            if task is not None:
                task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, on_sigterm)
            installed = True
        try:
            return await coro
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        if terminated:
            raise SystemExit(143) from None
        raise
