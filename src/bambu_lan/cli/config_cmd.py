"""``bambu-lan config``: where the config file is and what bambu-lan makes of it."""

from __future__ import annotations

from typing import Any

import click

from bambu_lan.cli.options import echo_json, json_errors, json_option

EXAMPLE = """\
default = "workshop"         # optional: used when --printer is not given (before any table)

[printers.workshop]
host = "192.168.1.50"
serial = "03919A3B1200123"
access_code = "12345678"
# ca_dir = "~/bambu_certs"   # optional; else the certificate is pinned on first use
"""

_SECRET_KEYS = frozenset({"access_code"})


def masked(profile: dict[str, Any]) -> dict[str, Any]:
    """A profile with the access code replaced by stars."""
    return {k: ("********" if k in _SECRET_KEYS and v else v) for k, v in profile.items()}


@click.group()
def config() -> None:
    """The config file: named printers for --printer NAME.

    \b
    Location: $BAMBU_CONFIG, else $XDG_CONFIG_HOME/bambu-lan/config.toml
    (~/.config/bambu-lan/config.toml). Format:

    \b
    default = "workshop"          # optional, before any [table]
    [printers.workshop]
    host = "192.168.1.50"
    serial = "03919A3B1200123"
    access_code = "12345678"
    ca_dir = "~/bambu_certs"     # optional

    Options on the command line win over BAMBU_* variables, which win over the file.
    """


@config.command("path")
def path() -> None:
    """Print where the config file is (or would be)."""
    from bambu_lan.config import config_path

    click.echo(str(config_path()))


@config.command("show")
@json_option
def show(as_json: bool) -> None:
    """Show the printers defined in the config file (access codes masked)."""
    from bambu_lan.config import config_path, load_config_file

    with json_errors(as_json):
        file = config_path()
        data = load_config_file(file)
    printers = data.get("printers") if isinstance(data.get("printers"), dict) else {}
    assert isinstance(printers, dict)
    shown = {
        name: masked(profile) for name, profile in printers.items() if isinstance(profile, dict)
    }
    default = data.get("default")
    if as_json:
        echo_json(
            {"path": str(file), "exists": file.exists(), "default": default, "printers": shown}
        )
        return
    if not file.exists():
        click.echo(f"no config file at {file}; an example:\n")
        click.echo(EXAMPLE)
        return
    click.echo(f"# {file}")
    if not shown:
        click.echo("no [printers.NAME] tables defined")
    for name, profile in shown.items():
        mark = "  (default)" if name == default else ""
        click.echo(f"[printers.{name}]{mark}")
        for key, value in profile.items():
            click.echo(f"  {key} = {value}")


def _add_command() -> None:
    # `config add` lives with discovery, which fills in the printer's address.
    from bambu_lan.cli.discover_cmd import config_add

    config.add_command(config_add, "add")


_add_command()
