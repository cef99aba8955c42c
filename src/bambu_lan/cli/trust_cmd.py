"""``bambu-lan trust``: the known-printers pin file (trust on first use, like SSH's
``known_hosts``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bambu_lan.cli.options import echo_json, json_errors, json_option

if TYPE_CHECKING:
    from bambu_lan.trust import KnownPrinters

_FILE_OPTION = click.option(
    "--known-printers",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="BAMBU_KNOWN_PRINTERS",
    metavar="FILE",
    help="The pin file.  [default: ~/.config/bambu-lan/known_printers; env: BAMBU_KNOWN_PRINTERS]",
)


def _known(path: Path | None) -> KnownPrinters:
    from bambu_lan.trust import KnownPrinters, default_known_printers_path

    return KnownPrinters(path or default_known_printers_path())


@click.group()
def trust() -> None:
    """Printers whose certificate is pinned (trust on first use).

    \b
    Without --ca-file/--ca-dir, the first connection to a printer pins the SHA-256
    fingerprint of its certificate; later connections must present the same certificate,
    or bambu-lan refuses before sending the access code. After a printer was reset or
    replaced, forget the old pin:
      bambu-lan trust forget 03919A3B1200123
    """


@trust.command("list")
@_FILE_OPTION
@json_option
def list_(path: Path | None, as_json: bool) -> None:
    """Show the pinned printers: serial and certificate fingerprint."""
    with json_errors(as_json):
        known = _known(path)
        pins = known.all()
    if as_json:
        echo_json({"path": str(known.path), "printers": pins})
        return
    if not pins:
        click.echo(f"no pinned printers (in {known.path})")
        return
    click.echo(f"# {known.path}")
    for serial, fingerprint in sorted(pins.items()):
        click.echo(f"{serial}  SHA256 {fingerprint}")


@trust.command("forget")
@click.argument("serial")
@_FILE_OPTION
@json_option
def forget(serial: str, path: Path | None, as_json: bool) -> None:
    """Remove the pin of SERIAL: its next connection pins the certificate it presents then."""
    from bambu_lan.errors import ConfigError

    with json_errors(as_json):
        known = _known(path)
        if not known.forget(serial):
            pinned = ", ".join(sorted(known.all())) or "none"
            raise ConfigError(
                f"{serial} is not pinned in {known.path}",
                hint=f"pinned serials: {pinned} (serials are upper case)",
            )
    if as_json:
        echo_json({"ok": True, "forgotten": serial, "path": str(known.path)})
        return
    click.echo(f"forgot {serial}: its next connection pins the certificate it presents")
