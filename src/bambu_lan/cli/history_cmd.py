"""``bambu-lan history``: the jobs ``bambu-lan serve`` recorded."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bambu_lan.cli.options import echo_json, json_errors, json_option

if TYPE_CHECKING:
    from bambu_lan.serve.history_store import JobRecord

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str) -> float:
    """``7d``, ``12h``, ``30m`` (ago), or a date / time (``2026-11-01``, ``2026-11-01T08:00``)."""
    from bambu_lan.errors import ConfigError

    match = _RELATIVE.match(text)
    if match:
        return time.time() - float(match[1]) * _UNIT[match[2]]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ConfigError(
            f"--since {text!r} is neither a duration nor a date",
            hint="e.g. --since 7d, --since 12h or --since 2026-11-01",
        ) from None


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}" if minutes >= 60 else f"{minutes}m"


@click.command()
@click.option("--printer", "printers", multiple=True, metavar="NAME",
              help="Only this printer (its name in the config file, or its serial).")  # fmt: skip
@click.option("--since", metavar="WHEN", help="Jobs that ended since: 7d, 12h, 2026-11-01.")
@click.option("--limit", type=click.IntRange(1), help="At most this many jobs (newest first).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout (one row per job).")
@click.option("--db", metavar="URL", help="postgresql://... [default: [serve] db or SQLite].")
@click.option(
    "--config-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BAMBU_CONFIG",
    help="The config file [default: $BAMBU_CONFIG or ~/.config/bambu-lan/config.toml].",
)
@json_option
def history(
    *,
    printers: tuple[str, ...],
    since: str | None,
    limit: int | None,
    as_csv: bool,
    db: str | None,
    config_file: Path | None,
    as_json: bool,
) -> None:
    """The print jobs `bambu-lan serve` recorded, newest first.

    \b
      bambu-lan history                      every job (SQLite in ~/.local/share/bambu-lan)
      bambu-lan history --printer workshop --since 7d
      bambu-lan history --csv > jobs.csv     for a spreadsheet
      bambu-lan history --json | jq .        one JSON object per job
    """
    import asyncio

    from bambu_lan.config import load_config_file
    from bambu_lan.errors import ConfigError
    from bambu_lan.serve.settings import default_history_path, parse_serve_table

    if as_csv and as_json:
        raise ConfigError("--csv and --json exclude each other", hint="pick one")
    with json_errors(as_json):
        settings = parse_serve_table(load_config_file(config_file))
        url = db or settings.db
        if url is None and not default_history_path().exists():
            raise ConfigError(
                f"no history yet: {default_history_path()} does not exist",
                hint="`bambu-lan serve` records every job there (or pass --db URL)",
            )
        jobs = asyncio.run(
            _query(
                url or f"sqlite:///{default_history_path()}",
                printers,
                parse_since(since) if since else None,
                limit,
            )
        )
    if as_json:
        for job in jobs:
            echo_json(job.to_dict())
    elif as_csv:
        _write_csv(jobs)
    else:
        _write_table(jobs)


async def _query(
    url: str, printers: tuple[str, ...], since: float | None, limit: int | None
) -> list[JobRecord]:
    from bambu_lan.errors import ConfigError
    from bambu_lan.serve.history_store import open_store, redact_url

    store = open_store(url)
    try:
        return await store.query(printers, since, limit)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"cannot read the history in {redact_url(url)}: {redact_url(str(exc)).strip()}",
            hint="is the database running and the URL right? (--db, or [serve] db)",
        ) from None
    finally:
        await store.close()


def _write_csv(jobs: list[JobRecord]) -> None:
    import csv
    import sys

    from bambu_lan.serve.history_store import COLUMNS

    writer = csv.writer(sys.stdout)
    writer.writerow(COLUMNS)
    for job in jobs:
        row = job.to_dict()
        row["alerts"] = "; ".join(job.alerts)
        writer.writerow([_csv_cell(row[c]) for c in COLUMNS])


def _csv_cell(value: object) -> object:
    # A cell starting with = + - @ is a formula to a spreadsheet: job names are chosen by
    # whoever sends the print.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _write_table(jobs: list[JobRecord]) -> None:
    from bambu_lan.text import terminal_safe

    if not jobs:
        click.echo("no jobs recorded (for this selection)")
        return
    rows = [
        (
            _when(j.ended_at),
            terminal_safe(j.printer),
            j.outcome,
            _duration(j.duration_seconds) + ("" if j.seen_start else "+"),
            f"{j.layer_reached}/{j.layers}",
            terminal_safe(j.filament) or "-",
            terminal_safe(j.name or j.file)[:40],
            terminal_safe(", ".join(j.alerts))[:40],
        )
        for j in jobs
    ]
    header = ("ended", "printer", "outcome", "time", "layers", "filament", "job", "alerts")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
    if any(not j.seen_start for j in jobs):
        click.echo("+ the job was already running when serve started: at least this long")
