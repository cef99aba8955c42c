"""``bambu-lan discover`` (printers announcing themselves) and ``bambu-lan config add``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from bambu_lan.cli.options import echo_json, json_errors, json_option, run

if TYPE_CHECKING:
    from bambu_lan.discovery import Announcement, DiscoveryResult

_PORTS_HELP = "UDP port to listen on (repeat for several). [default: 2021 and 1990]"


def _discover_options(func: Any) -> Any:
    func = click.option(
        "--port",
        "ports",
        type=click.IntRange(1, 65535),
        multiple=True,
        metavar="PORT",
        help=_PORTS_HELP,
    )(func)
    func = click.option(
        "--bind",
        default="0.0.0.0",  # noqa: S104 - printers broadcast to every interface
        show_default=True,
        metavar="ADDRESS",
        help="The address to listen on (127.0.0.1 for a simulator on this machine only).",
    )(func)
    func = click.option(
        "--search",
        is_flag=True,
        help="Also ask the printers to answer at once (an M-SEARCH to the network's broadcast "
        "address and the SSDP group; some printers only answer this way).",
    )(func)
    return click.option(
        "--search-target",
        "search_targets",
        multiple=True,
        metavar="ADDR:PORT",
        help="Send --search's M-SEARCH here instead (repeat for several), e.g. one printer's "
        "address:1990.",
    )(func)


def _parse_targets(search_targets: tuple[str, ...]) -> list[tuple[str, int]]:
    """The --search-target values, checked before anything is listened to or printed."""
    from bambu_lan.discovery import parse_target

    return [parse_target(t) for t in search_targets]


def _run_discovery(
    *,
    timeout: float,
    ports: tuple[int, ...],
    bind: str,
    search: bool,
    search_targets: list[tuple[str, int]],
    serial: str | None = None,
    on_found: Any = None,
) -> DiscoveryResult:
    from bambu_lan.discovery import DEFAULT_SEARCH_TARGETS, DISCOVERY_PORTS, discover

    targets = search_targets or list(DEFAULT_SEARCH_TARGETS)
    wanted = serial.upper() if serial else None
    return run(
        discover(
            timeout,
            ports=ports or DISCOVERY_PORTS,
            bind=bind,
            search=search,
            search_targets=targets,
            until=(lambda r: wanted in r.printers) if wanted else None,
            on_found=on_found,
        )
    )


@click.command()
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=6.0,
    show_default=True,
    help="Seconds to listen (printers announce every 5-10 s).",
)
@_discover_options
@json_option
def discover(
    *,
    timeout: float,
    ports: tuple[int, ...],
    bind: str,
    search: bool,
    search_targets: tuple[str, ...],
    as_json: bool,
) -> None:
    """Find the printers on your network: they announce themselves every few seconds.

    Prints each printer's serial, model, name, address, firmware, LAN-only mode and whether
    it is bound to a cloud account. Nothing is sent unless --search is given.

    \b
    Examples:
      bambu-lan discover                    listen 6 s on UDP 2021 and 1990
      bambu-lan discover --search --json    ask too; JSON for scripts
      bambu-lan config add workshop --serial 03919A3B1200123   save one as a profile
    """
    from bambu_lan.discovery import shown

    with json_errors(as_json):
        targets = _parse_targets(search_targets)
        if not as_json:
            listened = ", ".join(str(p) for p in ports) if ports else "2021 and 1990"
            click.echo(f"listening {timeout:g} s for printers on UDP {listened}…", err=True)
        result = _run_discovery(
            timeout=timeout,
            ports=ports,
            bind=bind,
            search=search or bool(targets),
            search_targets=targets,
        )
    printers = sorted(result.printers.values(), key=lambda a: (a.host, a.serial))
    if as_json:
        echo_json(
            {
                "ok": True,
                "printers": [p.to_dict() for p in printers],
                "warnings": result.warnings,
            }
        )
        return
    for warning in result.warnings:
        click.echo(f"warning: {shown(warning, 200)}", err=True)
    if not printers:
        click.echo("no printer announced itself", err=True)
        click.echo(
            "hint: printers on another subnet (or behind a guest Wi-Fi) cannot be heard; try "
            "--search, or read the IP on the printer's screen",
            err=True,
        )
        return
    click.echo(_table(printers))


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def _table(printers: list[Announcement]) -> str:
    from bambu_lan.discovery import shown

    headers = ("SERIAL", "MODEL", "NAME", "ADDRESS", "FIRMWARE", "LAN-ONLY", "BIND")
    rows = [
        (
            p.serial,
            shown(p.model or p.model_code or "?", 20),
            shown(p.name or "", 32),
            p.host,
            shown(p.firmware or "?", 16),
            _yes_no(p.lan_only),
            shown(p.bind or "?", 12),
        )
        for p in printers
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


# --- config add -----------------------------------------------------------------------------


@click.command("add")
@click.argument("name")
@click.option("--serial", required=True, metavar="SERIAL", help="The printer's serial number.")
@click.option(
    "--host",
    metavar="IP",
    help="The printer's address; without it, bambu-lan listens for the printer's "
    "announcement (see `bambu-lan discover`).",
)
@click.option(
    "--access-code",
    envvar="BAMBU_ACCESS_CODE",
    metavar="CODE",
    help="The LAN access code; asked for (not shown as you type) when not given. "
    "Env: BAMBU_ACCESS_CODE.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=12.0,
    show_default=True,
    help="Seconds to listen for the printer's announcement.",
)
@click.option("--default", "make_default", is_flag=True, help="Make it the default printer.")
@_discover_options
@json_option
def config_add(
    *,
    name: str,
    serial: str,
    host: str | None,
    access_code: str | None,
    timeout: float,
    make_default: bool,
    ports: tuple[int, ...],
    bind: str,
    search: bool,
    search_targets: tuple[str, ...],
    as_json: bool,
) -> None:
    """Save a printer as profile NAME in the config file (file mode 0600: it holds the code).

    The address comes from the printer's own announcement unless --host is given; the
    access code is asked for without echo. Then `--printer NAME` works everywhere.
    """
    from bambu_lan.config import (
        access_code_problem,
        add_printer_profile,
        config_path,
    )
    from bambu_lan.errors import ConfigError
    from bambu_lan.protocol.topics import serial_problem

    with json_errors(as_json):
        serial = serial.strip().upper()
        problem = serial_problem(serial)
        if problem:
            raise ConfigError(
                f"serial number: {problem}",
                hint="the serial is on the printer's screen (Settings > Device) and its label",
            )
        targets = _parse_targets(search_targets)
        found: Announcement | None = None
        if not host:
            if not as_json:
                click.echo(
                    f"listening up to {timeout:g} s for {serial} to announce itself…", err=True
                )
            result = _run_discovery(
                timeout=timeout,
                ports=ports,
                bind=bind,
                search=search or bool(targets),
                search_targets=targets,
                serial=serial,
            )
            found = result.printers.get(serial)
            if found is None:
                seen = ", ".join(sorted(result.printers)) or "none"
                raise ConfigError(
                    f"{serial} did not announce itself within {timeout:g} s (heard: {seen})",
                    hint="pass --host IP (Settings > WLAN on the printer's screen), or try "
                    "--search or a longer --timeout",
                )
            host = found.host
        if access_code is None:
            if not sys.stdin.isatty():
                raise ConfigError(
                    "no access code given and no terminal to ask for it",
                    hint="pass --access-code or set BAMBU_ACCESS_CODE",
                )
            access_code = click.prompt("access code", hide_input=True)
        assert access_code is not None
        access_code = access_code.strip()
        code_problem = access_code_problem(access_code)
        if code_problem:
            raise ConfigError(
                code_problem, hint="the access code is on the printer's screen (Settings > WLAN)"
            )
        path = config_path()
        add_printer_profile(
            name, {"host": host, "serial": serial, "access_code": access_code}, path=path,
            make_default=make_default,
        )  # fmt: skip
    summary: dict[str, Any] = {"ok": True, "name": name, "host": host, "serial": serial}
    summary["path"] = str(path)
    if found is not None:
        summary["model"] = found.model
    if as_json:
        echo_json(summary)
    else:
        model = f" ({found.model})" if found is not None and found.model else ""
        click.echo(f"saved printer {name!r}: {serial}{model} at {host}, in {path}")
        click.echo(f"try: bambu-lan status --printer {name}")
