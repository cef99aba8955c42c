"""The ``bambu-lan`` command: a thin layer over the library.

Subcommands live in their own modules and are imported only when used, so that
``bambu-lan --help`` starts fast (budget: 200 ms).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from typing import Any

import click

# name -> "module:attribute" of a click command; imported on first use.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("bambu_lan.cli.demo_cmd:demo", "A simulated A1 and the live view connected to it."),
    "discover": ("bambu_lan.cli.discover_cmd:discover", "Find the printers on your network."),
    "camera": ("bambu_lan.cli.camera_cmd:camera", "A picture, an MJPEG stream, the RTSPS address."),
    "sim": ("bambu_lan.cli.sim_cmd:sim", "Run simulated printers on real TLS and MQTT."),
    "status": ("bambu_lan.cli.status_cmd:status", "Print one full state of a printer, then exit."),
    "watch": ("bambu_lan.cli.status_cmd:watch", "Live view of a printer (--json: JSON lines)."),
    "send": ("bambu_lan.cli.send_cmd:send", "Send a command; exit 0 only if the printer accepts."),
    "doctor": ("bambu_lan.cli.doctor_cmd:doctor", "Diagnose a printer connection: cause and fix."),
    "trust": ("bambu_lan.cli.trust_cmd:trust", "List or forget pinned printer certificates."),
    "config": ("bambu_lan.cli.config_cmd:config", "Where the config file is; its printers."),
    "history": ("bambu_lan.cli.history_cmd:history", "The print jobs `serve` recorded."),
    "files": ("bambu_lan.cli.files_cmd:files", "The printer's card over FTPS: ls, put, get, rm."),
    "print": ("bambu_lan.cli.print_cmd:print_", "Print a sliced .gcode.3mf: check, upload, start."),
    "serve": (
        "bambu_lan.cli.serve_cmd:serve",
        "Farm daemon: Home Assistant/MQTT, metrics, history.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target[0].partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help comes from the table, so listing commands imports none of them.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="bambu-lan")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Talk to Bambu Lab printers on your local network, no cloud.

    \b
    Start here:
      bambu-lan demo                       a simulated A1, live, in your terminal
      bambu-lan status --host IP --serial SERIAL --access-code CODE
      bambu-lan doctor --host IP ...       why a connection fails, and the fix

    Connection options can come from BAMBU_HOST, BAMBU_SERIAL and BAMBU_ACCESS_CODE, or from a
    named printer in the config file (--printer NAME).
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")


def main(argv: list[str] | None = None) -> Any:
    """Console entry point: every error is one line with a hint, unless --debug."""
    from bambu_lan.errors import BambuError

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        if debug:  # the full debug logging, set up by the group
            return cli.main(args=args, prog_name="bambu-lan", standalone_mode=False)
        from bambu_lan.cli.log_lines import warning_lines

        with warning_lines():
            return cli.main(args=args, prog_name="bambu-lan", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        from bambu_lan.cli.options import echo_error

        echo_error(exc.format_message(), _usage_hint(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`watch --json | head -1`): end quietly, as `yes | head` does.
        _silence_stdout()
        sys.exit(141)
    except BambuError as exc:
        if debug:
            raise
        from bambu_lan.cli.options import echo_error, hint_for

        echo_error(exc, hint_for(exc))
        sys.exit(2)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit cannot raise a
    second BrokenPipeError ("Exception ignored ...") on the closed pipe."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _usage_hint(exc: click.ClickException) -> str:
    """The hint under a usage error: its own, or where the options are explained."""
    own = getattr(exc, "hint", None)
    if isinstance(own, str) and own:
        return own
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "bambu-lan"
    return f"see `{path} --help`"
