"""``bambu-lan config``: where the config file is and what bambu-lan makes of it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bambu_lan.cli.options import echo_json, json_errors, json_option

if TYPE_CHECKING:
    from bambu_lan.config import ConfigProblem

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


@config.command("check")
@json_option
def check(as_json: bool) -> None:
    """Check the config file as a whole: unknown keys, value types, values, CA files.

    Every problem is listed with the file, the printer and the key; the exit code is 0 when
    there are none, 2 otherwise. Other commands run the same check before using the file.
    """
    from bambu_lan.config import config_path, file_problems, read_config_file

    with json_errors(as_json):
        file = config_path()
        data, problems = read_config_file(file, values=True)
        problems += file_problems(data, file) + _serve_problems(data, file)
    printers = data.get("printers") if isinstance(data.get("printers"), dict) else {}
    assert isinstance(printers, dict)
    from bambu_lan.cli.options import echo_error

    count = len(problems)
    summary = f"{count} problem{'s' if count > 1 else ''} in {file}"
    fix = "fix the keys listed; each problem names the printer and the key"
    if as_json:
        echo_json(
            {
                "path": str(file),
                "exists": file.exists(),
                "ok": not problems,
                "printers": sorted(printers),
                "problems": [
                    {
                        "printer": p.profile,
                        "key": p.key,
                        "message": p.message,
                        "hint": p.hint,
                    }
                    for p in problems
                ],
            }
        )
        if problems:
            echo_error(summary, fix)
            raise SystemExit(2)
        return
    if not file.exists():
        click.echo(f"no config file at {file}: nothing to check")
        return
    for problem in problems:
        click.echo(f"{problem}\n  hint: {problem.hint}")
    if problems:
        echo_error(summary, fix)
        raise SystemExit(2)
    names = ", ".join(sorted(printers)) or "none"
    click.echo(f"ok: {file}: printers {names}")


def _serve_problems(data: dict[str, Any], file: Path) -> list[ConfigProblem]:
    """The [serve] table, checked by `bambu-lan serve`'s own reader."""
    from bambu_lan.config import ConfigProblem
    from bambu_lan.errors import ConfigError

    if "serve" not in data:
        return []
    try:
        from bambu_lan.serve.settings import parse_serve_table

        parse_serve_table(data)
    except ConfigError as exc:
        return [ConfigProblem(file, None, "serve", str(exc), exc.hint or "see the README")]
    return []


def _add_command() -> None:
    # `config add` lives with discovery, which fills in the printer's address.
    from bambu_lan.cli.discover_cmd import config_add

    config.add_command(config_add, "add")


_add_command()
