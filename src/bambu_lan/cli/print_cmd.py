"""``bambu-lan print FILE``: check a sliced file, upload it, start it, wait until it started."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bambu_lan.cli.files_cmd import progress_bar
from bambu_lan.cli.options import (
    ConnectionParams,
    connection_options,
    echo_json,
    ftps_port_option,
    json_errors,
    json_option,
    run,
)

if TYPE_CHECKING:
    from bambu_lan.config import PrinterConfig
    from bambu_lan.files import Progress
    from bambu_lan.print_job import PrintOptions, PrintStarted


def _tray_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        trays = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise click.BadParameter(
            "a comma-separated list of tray numbers, e.g. 0,2 (254: external spool)",
            param_hint="--ams-map",
        ) from None
    if not trays or any(t < -1 or t > 254 for t in trays):
        raise click.BadParameter(
            "tray numbers are ams*4+slot (0-15), 128+ for AMS HT, 254 for the external spool",
            param_hint="--ams-map",
        )
    return trays


@click.command("print")
@connection_options
@json_option
@ftps_port_option
@click.argument("file", metavar="FILE")
@click.option(
    "--plate", type=click.IntRange(min=1), default=1, show_default=True, help="Which sliced plate."
)
@click.option(
    "--ams-map",
    metavar="LIST",
    help="AMS tray for each filament, in the slicer's order: 0,2 = filament 1 from tray 0, "
    "filament 2 from tray 2 (trays are ams*4+slot; 254 external spool). Default: matched by "
    "type and colour.",
)
@click.option("--no-ams", is_flag=True, help="Print from the external spool, not the AMS.")
@click.option("--no-bed-leveling", is_flag=True, help="Skip the automatic bed levelling.")
@click.option("--no-flow-cali", is_flag=True, help="Skip the flow (extrusion) calibration.")
@click.option("--timelapse", is_flag=True, help="Record a timelapse video on the card.")
@click.option(
    "--no-upload",
    is_flag=True,
    help="The file is already on the card: FILE is its card path (e.g. /cache/x.gcode.3mf), "
    "or a local copy whose size must match the card's.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the printer to start the job.",
)
def print_(
    *,
    conn: ConnectionParams,
    as_json: bool,
    ftps_port: int | None,
    file: str,
    plate: int,
    ams_map: str | None,
    no_ams: bool,
    no_bed_leveling: bool,
    no_flow_cali: bool,
    timelapse: bool,
    no_upload: bool,
    timeout: float,
) -> None:
    """Print a sliced FILE (.gcode.3mf from Bambu Studio / OrcaSlicer, or a .gcode).

    Checks the file first (sliced for this printer's model, the plate exists, a name the
    printer accepts, filaments it can map to the AMS), uploads it to the card over FTPS,
    starts it with the printer's defaults (bed levelling and flow calibration on, timelapse
    off) and returns once the printer reports the job started. Needs Developer Mode on
    2025+ firmware.

    \b
    Examples:
      bambu-lan print cube.gcode.3mf
      bambu-lan print cube.gcode.3mf --plate 2 --ams-map 0,3 --timelapse
      bambu-lan print /cache/cube.gcode.3mf --no-upload
    """
    if ams_map is not None and no_ams:
        raise click.UsageError("use --ams-map or --no-ams, not both")
    from bambu_lan.print_job import PrintOptions

    options = PrintOptions(
        plate=plate,
        use_ams=False if no_ams else None,
        ams_mapping=_tray_list(ams_map),
        bed_leveling=not no_bed_leveling,
        flow_cali=not no_flow_cali,
        timelapse=timelapse,
    )
    with json_errors(as_json):
        cfg = conn.resolve(ftps_port=ftps_port)
        label = Path(file).name
        total = None if no_upload else _size(Path(file))
        with progress_bar(f"upload {label}", total, not as_json) as progress:
            started = run(_print(cfg, file, options, not no_upload, progress, timeout))
    if as_json:
        echo_json({"ok": True, **started.to_dict()})
        return
    from bambu_lan.text import terminal_safe

    t = started.timings
    click.echo(
        f"{cfg.label}: printing {terminal_safe(started.name)} (plate {started.plate}), "
        f"{started.state.job.state.value}; check {t.get('check', 0):.2f} s, upload "
        f"{t.get('upload', 0):.2f} s, start {t.get('command', 0):.2f} s"
    )


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


async def _print(  # noqa: PLR0917 (one call site, in order)
    cfg: PrinterConfig,
    file: str,
    options: PrintOptions,
    upload: bool,
    progress: Progress | None,
    timeout: float,
) -> PrintStarted:
    from bambu_lan.printer import Printer, PrinterOptions

    async with Printer.from_config(cfg, PrinterOptions()) as printer:
        return await printer.print_file(
            file, options=options, upload=upload, progress=progress, start_timeout=timeout
        )
