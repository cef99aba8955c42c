"""``bambu-lan doctor``: why a printer connection fails, and how to fix it.

The diagnosis itself is ``bambu_lan.doctor``; this module gathers the settings (even invalid
ones: a bad serial is the first thing to report, not a reason to stop), runs it, and shows a
table and a one-line verdict, or JSON for bug reports. Exit code 0 only when every required
step passes.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from bambu_lan.cli.options import ConnectionParams, connection_options, dumps, json_option, run

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.status import Status as RichStatus

    from bambu_lan.config import PrinterConfig
    from bambu_lan.doctor import Diagnosis, Step
    from bambu_lan.errors import ConfigError

EXIT_OK = 0
EXIT_FAILED = 1

_ICONS = {"pass": ("✔ pass", "green"), "fail": ("✘ FAIL", "bold red"),
          "warn": ("! warn", "yellow"), "skip": ("- skip", "dim")}  # fmt: skip


def _parse_ports(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    ports: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if not part.isdigit() or not 0 < int(part) < 65536:
            raise click.BadParameter(f"{part!r} is not a port number", param_hint="--ports")
        ports.append(int(part))
    return tuple(ports)


def _config(conn: ConnectionParams) -> tuple[PrinterConfig | None, ConfigError | None]:
    from bambu_lan.errors import ConfigError

    try:
        return conn.resolve(), None
    except ConfigError:
        pass  # the doctor reports invalid settings itself
    try:
        # As given, without validation: an invalid serial or access code must reach the
        # doctor's input step instead of stopping us.
        return conn.resolve(validate=False), None
    except ConfigError as exc:
        return None, exc


def _render(diagnosis: Diagnosis) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from bambu_lan.text import terminal_safe_copy

    # Evidence quotes the printer (certificate names, firmware, replies): terminal-safe, and
    # the console reads no markup.
    diagnosis = terminal_safe_copy(diagnosis)
    console = Console(highlight=False, markup=False)
    target = diagnosis.target
    # Text, not markup: a host or serial with brackets in it must print as typed.
    console.print(
        Text("bambu-lan doctor", style="bold")
        + Text(
            f": {target.get('serial') or '?'} at {target.get('host') or '?'}:"
            f"{target.get('port')} (trust: {target.get('trust')})"
        )
    )
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("Step", no_wrap=True)
    table.add_column("What was seen", overflow="fold")
    for step in diagnosis.steps:
        label, style = _ICONS[step.status.value]
        cell = Text(step.evidence)
        if step.fix and step.status.value in ("fail", "warn"):
            cell.append(f"\nfix: {step.fix}", style="italic")
        table.add_row(Text(label, style=style), step.title, cell)
    console.print(table)
    console.print()
    style = "bold green" if diagnosis.ok else "bold red"
    console.print(Text(diagnosis.verdict, style=style))
    if diagnosis.fix:
        console.print(Text("Fix: ", style="bold") + Text(diagnosis.fix))
    for note in diagnosis.notes:
        console.print(Text("Note: ", style="dim") + Text(note, style="dim"))
    console.print(
        Text("The same subscription with mosquitto (put in your access code):", style="dim")
    )
    console.print(Text("  " + diagnosis.mosquitto_sub), soft_wrap=True)


def _progress_reporter() -> tuple[RichStatus | None, Callable[[Step], None] | None]:
    """A spinner on stderr naming the last finished step (only on a terminal)."""
    if not sys.stderr.isatty():
        return None, None
    from rich.console import Console

    status = Console(stderr=True).status("diagnosing…")

    def on_step(step: Step) -> None:
        status.update(f"diagnosing… {step.title}: {step.status.value}")

    return status, on_step


@click.command(
    "doctor", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@connection_options
@json_option
@click.option(
    "--check-control",
    is_flag=True,
    help="Also send one harmless control command (print_speed with the current level) to learn "
    "whether Developer Mode is on.",
)
@click.option(
    "--probe-quirks",
    is_flag=True,
    help="Also try deliberately wrong clients (subscribe before CONNACK, wildcard, TLS 1.3, "
    "default TLS, a reused client id) and report what this printer tolerates. Spends sessions: "
    "run it with no other client connected.",
)
@click.option(
    "--ports",
    "ports_text",
    is_flag=False,
    flag_value="990,6000",
    default=None,
    metavar="[LIST]",
    help="Also check other TCP ports; alone: 990 (FTPS) and 6000 (camera), or a list like "
    "990,6000,322.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="The longest any one step waits for an answer.  [default: 3-10 s per step]",
)
def doctor(
    *,
    conn: ConnectionParams,
    as_json: bool,
    check_control: bool,
    probe_quirks: bool,
    ports_text: str | None,
    timeout: float | None,
) -> None:
    """Diagnose a printer connection step by step; name the cause and the fix.

    \b
    Checks, in order, stopping at the first failure:
      input     address, serial (15 characters, upper case), access code, CA file
      network   TCP to 8883 (refused / no answer / unreachable)
      TLS       TLS 1.2 handshake, TLS 1.3 refused or unanswered, certificate, CN = serial,
                chain (with --ca-file/--ca-dir), pinned fingerprint (nothing is pinned)
      MQTT      CONNACK, subscribe, first report, full report (pushall), model and firmware
      control   Developer Mode (with --check-control)

    Exit code: 0 when every required step passes, 1 when one fails (the verdict names the
    cause), 2 for a usage error. --json output is safe to paste into a bug report: the access
    code is never shown.
    """
    from bambu_lan.doctor import DoctorTimeouts, config_failure, diagnose

    ports = _parse_ports(ports_text)
    timeouts = DoctorTimeouts.uniform(timeout) if timeout else DoctorTimeouts()
    cfg, error = _config(conn)
    if cfg is None:
        assert error is not None
        diagnosis = config_failure(error)
    else:
        status, on_step = (None, None) if as_json else _progress_reporter()
        if status is not None:
            status.start()
        try:
            diagnosis = run(
                diagnose(
                    cfg,
                    check_control=check_control,
                    probe_quirks=probe_quirks,
                    ports=ports,
                    timeouts=timeouts,
                    on_step=on_step,
                )
            )
        finally:
            if status is not None:
                status.stop()
    if as_json:
        from bambu_lan.config import redact

        text = dumps(diagnosis.to_dict())
        code = cfg.access_code.reveal() if cfg is not None else ""
        # The diagnosis never holds the code; this is the second lock on the door. Codes too
        # short to be secret would only mangle the text (the Input step reports them).
        click.echo(redact(text, code) if len(code) >= 4 else text)
    else:
        _render(diagnosis)
    if not diagnosis.ok:
        raise SystemExit(EXIT_FAILED)
