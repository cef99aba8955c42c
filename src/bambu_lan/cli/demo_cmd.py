"""``bambu-lan demo``: a simulated printer in this process, and the live view connected to it.

Nothing is faked between the two: the view talks to the simulator over real TLS 1.2 and MQTT on
127.0.0.1, trusting the simulator's own CA, exactly as it would talk to a printer.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import click

# Simulated seconds a job spends before its first layer (file preparation, preheating to the
# material's temperatures, nozzle wipe, homing, bed levelling, flow calibration). The demo
# gives the layers three times as long, so most of the show is printing.
PREPARE_SIM_SECONDS = 60.0
PRINT_SHARE = 3.0
MODELS = ("a1", "a1mini", "p1s", "x1c")


@click.command()
@click.option(
    "--duration",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="About how long the simulated print takes (the simulator's clock runs faster).",
)
@click.option(
    "--layers",
    type=click.IntRange(min=1, max=10_000),
    default=30,
    show_default=True,
    help="Layers of the simulated print.",
)
@click.option(
    "--model",
    type=click.Choice(MODELS, case_sensitive=False),
    default="a1",
    show_default=True,
    help="Which printer to simulate.",
)
@click.option("--plain", is_flag=True, help="Plain lines even on a terminal.")
def demo(duration: float, layers: int, model: str, plain: bool) -> None:
    """A simulated printer and the live view connected to it: no printer needed.

    \b
    It starts a simulated printer on 127.0.0.1 (real TLS 1.2 and MQTT, a CA made for the
    occasion in a temporary directory), connects the live view as it would to a real A1,
    starts a print, and ends by itself when the print finishes (or on Ctrl-C).

    \b
    To try the other commands against a simulator that keeps running, use `bambu-lan sim`.
    """
    from bambu_lan.cli.options import run

    with tempfile.TemporaryDirectory(prefix="bambu-lan-demo-") as cert_dir:
        run(_demo(Path(cert_dir), duration, layers, model, plain))


async def _demo(cert_dir: Path, duration: float, layers: int, model: str, plain: bool) -> None:
    from bambu_lan.cli.view import follow, make_display
    from bambu_lan.printer import Printer
    from bambu_lan.protocol.events import TERMINAL_KINDS
    from bambu_lan.sim import SimulatedPrinter

    print_seconds = PREPARE_SIM_SECONDS * PRINT_SHARE
    time_scale = (PREPARE_SIM_SECONDS + print_seconds) / duration
    sim = SimulatedPrinter(model, cert_dir=cert_dir, time_scale=time_scale, dev_mode=True)
    async with sim:
        printer = Printer(sim.host, sim.serial, sim.access_code, port=sim.port, ca_file=sim.ca_path)
        updates = printer.updates()  # the whole story, from the first connection on
        async with printer:
            display = make_display(plain=True if plain else None)
            loop = asyncio.get_running_loop()

            def start_print() -> None:
                sim.model.start_print(
                    layers=layers,
                    name="bambu-lan demo",
                    file="demo_benchy.gcode.3mf",
                    layer_seconds=print_seconds / layers,
                    tray=0,  # AMS 1 slot 1
                )

            result = await follow(
                printer,
                display,
                updates=updates,
                label=sim.serial,
                title=f"simulated {sim.profile.product_name} (demo)",
                footer="Ctrl-C to quit",
                until=lambda event: event.kind in TERMINAL_KINDS,
                # A moment of the idle printer first.
                on_start=lambda: loop.call_later(min(1.0, duration / 20), start_print),
                # A safety net only: the print ends well before this.
                duration=duration * 3 + 30,
            )
    if result.reason == "event" and result.last_event is not None:
        click.echo(f"demo over: {result.last_event.message}")
    else:
        click.echo(f"demo over ({result.reason})")
