"""``bambu-lan send``: one command to a printer; exit code 0 only when the printer accepted it."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import click

from bambu_lan.cli.options import (
    BadInput,
    ConnectionParams,
    connection_options,
    echo_json,
    json_errors,
    json_option,
    run,
)

if TYPE_CHECKING:
    from bambu_lan.config import PrinterConfig
    from bambu_lan.printer import CommandResult, Printer

Action = Callable[["Printer"], Awaitable["CommandResult"]]

SPEED_NAMES = {"silent": 1, "standard": 2, "sport": 3, "ludicrous": 4}
DEV_MODE_WORDS = "the printer accepts control commands from other software only in Developer Mode"


def _timeout_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=10.0,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for the printer's answer.",
    )(func)


def _command(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """A ``send`` subcommand with the connection options, --json and --timeout."""

    def decorate(func: Callable[..., Any]) -> click.Command:
        return send.command(name, **kwargs)(connection_options(json_option(_timeout_option(func))))

    return decorate


@click.group()
def send() -> None:
    """Send one command to a printer; exit code 0 only when the printer accepted it.

    \b
    Control commands (pause, resume, stop, speed, gcode) need Developer Mode on current
    firmware (LAN-only mode first, then Developer Mode, on the printer's screen); the light
    works without it. Each subcommand takes the connection options (--host, --serial,
    --access-code or BAMBU_* variables, or --printer NAME) and --json.

    \b
    Examples:
      bambu-lan send pause --printer workshop
      bambu-lan send speed sport
      bambu-lan send light off --json
      bambu-lan send gcode "G28" "M400"
    """


def execute(conn: ConnectionParams, as_json: bool, timeout: float, action: Action) -> None:
    """Connect, wait for the state, run ``action`` and report the outcome."""
    with json_errors(as_json):
        cfg = conn.resolve()
        result = run(_send(cfg, timeout, action))
    if as_json:
        echo_json({"ok": True, **result.to_dict()})
        return
    confirmed = ", confirmed by the printer's state" if result.confirmed else ""
    click.echo(f"{cfg.label}: {result.command} accepted{confirmed}")


async def _send(cfg: PrinterConfig, timeout: float, action: Action) -> CommandResult:
    import dataclasses

    from bambu_lan.errors import DeveloperModeRequired
    from bambu_lan.printer import Printer, PrinterOptions

    options = dataclasses.replace(PrinterOptions(), command_timeout=timeout)
    async with Printer.from_config(cfg, options) as printer:
        # The full state first: it lets the printer's state confirm the command, and tells a
        # Developer Mode alert raised by this command from one already there.
        await printer.wait_for_state()
        try:
            return await action(printer)
        except DeveloperModeRequired as exc:
            code = f", err_code {exc.err_code}" if exc.err_code else ""
            reason = exc.reason or "mqtt message verify failed"
            what = exc.command or "the command"
            exc.args = (f"{what} refused: {DEV_MODE_WORDS} (printer said: {reason}{code})",)
            raise


@_command("pause")
def pause(conn: ConnectionParams, as_json: bool, timeout: float) -> None:
    """Pause the running print (confirmed when the printer reports PAUSE)."""
    execute(conn, as_json, timeout, lambda p: p.pause())


@_command("resume")
def resume(conn: ConnectionParams, as_json: bool, timeout: float) -> None:
    """Resume a paused print (confirmed when the printer reports RUNNING)."""
    execute(conn, as_json, timeout, lambda p: p.resume())


@_command("stop")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation on a terminal.")
def stop(conn: ConnectionParams, as_json: bool, timeout: float, yes: bool) -> None:
    """Stop (cancel) the print. It cannot be resumed afterwards."""
    if not yes and not as_json and sys.stdin.isatty():
        click.confirm("Stop the print? It cannot be resumed.", abort=True)
    execute(conn, as_json, timeout, lambda p: p.stop())


@_command("speed")
@click.argument("level", metavar="LEVEL")
def speed(conn: ConnectionParams, as_json: bool, timeout: float, level: str) -> None:
    """Set the print speed: 1 silent, 2 standard, 3 sport, 4 ludicrous (number or name)."""
    value = SPEED_NAMES.get(level.lower()) or (int(level) if level.isdigit() else 0)
    if value not in (1, 2, 3, 4):
        raise click.BadParameter(
            "use 1-4 or silent, standard, sport, ludicrous", param_hint="LEVEL"
        )
    execute(conn, as_json, timeout, lambda p: p.set_speed(value))


@_command("light")
@click.argument("mode", type=click.Choice(["on", "off"], case_sensitive=False))
@click.option(
    "--node",
    default="chamber_light",
    show_default=True,
    help="Which light (chamber_light; work_light on some models).",
)
def light(conn: ConnectionParams, as_json: bool, timeout: float, mode: str, node: str) -> None:
    """Turn the light on or off (works without Developer Mode)."""
    on = mode.lower() == "on"
    execute(conn, as_json, timeout, lambda p: p.set_light(on, node))


@_command("gcode")
@click.argument("lines", nargs=-1, required=True)
def gcode(conn: ConnectionParams, as_json: bool, timeout: float, lines: tuple[str, ...]) -> None:
    """Send G-code: each argument is a line ("G28" "M400"); ';' starts a comment.

    Needs Developer Mode on 2025+ firmware. The printer acknowledges receipt, not the
    effect: check the state (`bambu-lan status`) when it matters.
    """
    from bambu_lan.protocol import commands

    try:
        command = commands.gcode(lines)
    except ValueError as exc:  # checked before connecting: non-ASCII, control characters
        raise BadInput(
            str(exc),
            param_hint="LINES",
            hint='G-code is plain ASCII, one command per argument: "G28" "M400"',
        ) from None
    execute(conn, as_json, timeout, lambda p: p.send(command))


@_command("raw")
@click.argument("cls", metavar="CLASS")
@click.argument("name", metavar="COMMAND")
@click.argument("params", metavar="[JSON]", required=False)
def raw(
    *,
    conn: ConnectionParams,
    as_json: bool,
    timeout: float,
    cls: str,
    name: str,
    params: str | None,
) -> None:
    """Any command: CLASS (print, system, info, ...), COMMAND and a JSON object of parameters.

    \b
    Example:
      bambu-lan send raw system ledctrl '{"led_node": "chamber_light", "led_mode": "on"}'
    The sequence_id is added for you (the JSON cannot set it, nor the command). Exit 0
    when the printer answers without an error.
    """
    from bambu_lan.protocol import commands

    body: dict[str, Any] = {}
    if params:
        try:
            loaded = json.loads(params)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint="JSON") from None
        except RecursionError:
            raise BadInput(
                "the JSON is nested too deeply",
                param_hint="JSON",
                hint='printer commands take a flat object: {"led_mode": "on", ...}',
            ) from None
        if not isinstance(loaded, dict):
            raise click.BadParameter("must be a JSON object: {...}", param_hint="JSON")
        body = loaded
    try:  # checked before connecting: reserved keys, JSON that cannot be sent
        command = commands.raw(cls, name, body)
    except ValueError as exc:
        raise BadInput(
            str(exc),
            param_hint="CLASS COMMAND [JSON]",
            hint="the sequence_id is added for you and COMMAND names the command; e.g. "
            'bambu-lan send raw system ledctrl \'{"led_node": "chamber_light", '
            '"led_mode": "on"}\'',
        ) from None
    execute(conn, as_json, timeout, lambda p: p.send(command))
