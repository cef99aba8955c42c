"""``bambu-lan sim``: run simulated printers on real TLS and MQTT until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import click

from bambu_lan.errors import ConfigError

_MODELS_HELP = "a1, a1mini, p1s, x1c, p2s or h2d"


@click.command(
    "sim",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--host",
    metavar="ADDRESS",
    help="Address to listen on. Default 127.0.0.1: only this machine can connect. Use 0.0.0.0 "
    "to let other devices on your network (a phone, Home Assistant) reach it. With --count in "
    "address mode: the first address [default: 127.0.1.1].",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8883,
    show_default=True,
    help="TCP port. 8883 is the printers' own port; 0 picks a free one (shown at start).",
)
@click.option(
    "--ftps-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="The storage service (implicit FTPS; 990 on a printer). 0 picks a free one (shown at "
    "start). With --count: only in port mode, each printer a free port.",
)
@click.option(
    "--card-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The simulated SD card's folder (kept). Default: a temporary folder, removed at exit.",
)
@click.option(
    "--card-size",
    type=click.IntRange(min=1),
    metavar="BYTES",
    help="The card's size limit: uploads past it get '552' (card full).",
)
@click.option(
    "--serial",
    help="Serial number: the certificate's CN and part of the topic names. "
    "Default: the model's prefix + SIM000000000, e.g. 039SIM000000000 for an A1.",
)
@click.option(
    "--access-code",
    metavar="CODE",
    help="The password clients must send (user 'bblp'), as shown on a real printer's screen. "
    "Default: 8 random digits, printed at start.",
)
@click.option(
    "--model",
    default="a1",
    show_default=True,
    help=f"Printer model to simulate: {_MODELS_HELP}. The A1 family is the strictest "
    "(drops wildcard subscriptions), the X1C the most permissive.",
)
@click.option(
    "--cert-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the simulator keeps its CA (ca.pem: what clients must trust) and keys; reused "
    "across runs so the printer keeps its identity. Default: your cache directory "
    "(~/.cache/bambu-lan/sim on Linux).",
)
@click.option(
    "--new-identity",
    is_flag=True,
    help="Make a new CA and keys, like a replaced printer: pinned fingerprints stop matching.",
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second: 10 runs prints ten times faster.",
)
@click.option(
    "--dev-mode/--no-dev-mode",
    default=True,
    show_default=True,
    help="Developer Mode. Off: control commands are refused with 'mqtt message verify "
    "failed', as on a printer with Authorization Control (firmware 01.05+ on an A1).",
)
@click.option(
    "--max-sessions",
    type=click.IntRange(min=0),
    help="How many MQTT sessions at once; one more is closed right after CONNECT. "
    "Default: the model's (4 on an A1).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run this many printers (a farm), each with its own serial and access code.",
)
@click.option(
    "--host-mode",
    type=click.Choice(["address", "port"]),
    default="address",
    show_default=True,
    help="With --count: 'address' gives each printer its own loopback address "
    "(127.0.1.1, 127.0.1.2, ...) on the same port, like a real farm (Linux); 'port' puts them "
    "all on one address with consecutive ports from --port (--port 0: free ports).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the connection details as one JSON list (one object per printer) on stdout.",
)
@click.option(
    "--camera-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve the camera on this port; 0 picks a free one. A1/P1: TLS with JPEG frames, "
    "default 6000 (the printers' port) when --port is 8883, else a free one. X1/P2S/H2: "
    "H.264 over RTSPS (a printer's port 322), only when this option is given; needs ffmpeg. "
    "Needs Pillow (pip install 'bambu-lan[sim]').",
)
@click.option(
    "--no-camera",
    is_flag=True,
    help="Serve no camera.",
)
@click.option(
    "--announce-to",
    default="127.0.0.1:2021",
    show_default=True,
    metavar="ADDR:PORT",
    help="Send SSDP NOTIFY announcements here every 5 s, for `bambu-lan discover`. Loopback "
    "addresses only: a simulator never broadcasts.",
)
@click.option("--no-announce", is_flag=True, help="Send no announcements.")
@click.option(
    "--ssdp-port",
    type=click.IntRange(0, 65535),
    help="Answer M-SEARCH on this UDP port of 127.0.0.1 (0: a free one). Default: 1990 (the "
    "printers' port) when --port is 8883, else a free one.",
)
@click.option(
    "--print",
    "print_layers",
    type=click.IntRange(min=1),
    metavar="LAYERS",
    help="Start a print job of LAYERS layers right away on every printer.",
)
def sim(
    *,
    host: str | None,
    port: int,
    ftps_port: int,
    card_dir: Path | None,
    card_size: int | None,
    serial: str | None,
    access_code: str | None,
    model: str,
    cert_dir: Path | None,
    new_identity: bool,
    speed: float,
    dev_mode: bool,
    max_sessions: int | None,
    count: int,
    host_mode: str,
    as_json: bool,
    camera_port: int | None,
    no_camera: bool,
    announce_to: str,
    no_announce: bool,
    ssdp_port: int | None,
    print_layers: int | None,
) -> None:
    """Run a simulated Bambu Lab printer on real TLS 1.2 and MQTT, until Ctrl-C.

    It behaves like the real one, quirks included: it drops clients that subscribe before
    CONNACK or to wildcards, allows few sessions, and sends partial ("delta") reports. Point
    any client at it — bambu-lan, mosquitto_sub, Home Assistant — after trusting its CA.

    \b
    Examples:
      bambu-lan sim                          an A1 on 127.0.0.1:8883
      bambu-lan sim --port 0 --speed 10      a free port, time ten times faster
      bambu-lan sim --model p1s --print 20   a P1S that starts a 20-layer print
      bambu-lan sim --count 50 --json        50 A1s on 127.0.1.1 ... 127.0.1.50
    """
    if count > 1 and serial is not None:
        raise ConfigError(
            "--serial names one printer; with --count each printer gets its own serial",
            hint="drop --serial (fleet serials are the model's prefix + SIM + a number)",
        )
    if not speed > 0:
        raise ConfigError("--speed must be greater than 0", hint="e.g. --speed 10")
    from bambu_lan.discovery import parse_target
    from bambu_lan.sim.ssdp import check_loopback

    target = None if no_announce else parse_target(announce_to)
    if target is not None:
        check_loopback(target[0])
    options: dict[str, Any] = {
        "camera_port": _camera_port(model, port, camera_port, no_camera),
        "announce_to": target,
        "ssdp_port": ssdp_port if ssdp_port is not None else (1990 if port == 8883 else 0),
        "ftps_port": ftps_port,
        "card_dir": card_dir,
        "card_size": card_size,
        "cert_dir": cert_dir,
        "dev_mode": dev_mode,
        "time_scale": speed,
        "max_sessions": max_sessions,
        "new_identity": new_identity,
    }
    # A second Ctrl-C while stopping (or a platform without signal handlers) lands here.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _serve(
                count=count,
                model=model,
                host=host,
                port=port,
                serial=serial,
                access_code=access_code,
                host_mode=host_mode,
                as_json=as_json,
                print_layers=print_layers,
                options=options,
            )
        )


def _camera_port(model: str, port: int, camera_port: int | None, no_camera: bool) -> int | None:
    """The camera port to use, or None: asked for off, a model without a JPEG camera, or no
    Pillow (then a note, unless the port was asked for: that is an error)."""
    from bambu_lan.sim.camera import JPEG_CAMERA_MODELS
    from bambu_lan.sim.camera_frames import PILLOW_HINT, pillow_available
    from bambu_lan.sim.device import resolve_profile

    if no_camera:
        return None
    if resolve_profile(model).model_code not in JPEG_CAMERA_MODELS and camera_port is None:
        return None  # X1-class cameras (RTSPS) encode with ffmpeg: only when asked for
    if not pillow_available():
        if camera_port is not None:
            raise ConfigError("the simulated camera needs Pillow", hint=PILLOW_HINT)
        click.echo(f"note: no simulated camera: {PILLOW_HINT}", err=True)
        return None
    if camera_port is not None:
        return camera_port
    return 6000 if port == 8883 else 0


async def _serve(
    *,
    count: int,
    model: str,
    host: str | None,
    port: int,
    serial: str | None,
    access_code: str | None,
    host_mode: str,
    as_json: bool,
    print_layers: int | None,
    options: dict[str, Any],
) -> None:
    from bambu_lan.sim import SimFleet, SimulatedPrinter

    target: SimulatedPrinter | SimFleet
    if count == 1:
        target = SimulatedPrinter(
            model, serial, access_code, host=host or "127.0.0.1", port=port, **options
        )
        printers = [target]
    else:
        target = SimFleet(
            count,
            model,
            host_mode="port" if host_mode == "port" else "address",
            base_host=host,
            port=port,
            access_code=access_code,
            **options,
        )
        printers = target.printers

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows: Ctrl-C only
            loop.add_signal_handler(signum, stop.set)

    await target.start()
    try:
        if print_layers is not None:
            for printer in printers:
                printer.model.start_print(layers=print_layers)
        listing = [p.connection_info() for p in printers]
        if as_json:
            click.echo(json.dumps(listing))
        else:
            click.echo(_describe(printers[0]) if count == 1 else _table(listing))
        sys.stdout.flush()  # whoever reads our stdout (a script, a test) needs it now
        await stop.wait()
    finally:
        await target.stop()
        click.echo("simulator stopped", err=True)


def _describe(printer: Any) -> str:
    info = printer.connection_info()
    rows = [
        ("model", f"{info['product_name']} ({info['model']})"),
        ("host", info["host"]),
        ("port", str(info["port"])),
        ("FTPS port", str(info.get("ftps_port") or "-")),
        ("serial", info["serial"]),
        ("access code", info["access_code"]),
        ("CA file", info["ca_path"]),
        ("fingerprint", info["fingerprint"]),
    ]
    if info.get("camera_port"):
        rows.append(("camera port", str(info["camera_port"])))
    if info.get("ssdp_port"):
        rows.append(("M-SEARCH port", f"UDP {info['ssdp_port']}"))
    width = max(len(name) for name, _ in rows)
    lines = [f"Simulated {info['product_name']} running. Ctrl-C to stop.", ""]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    bambu = shlex.join(
        [
            "bambu-lan",
            "status",
            "--host", info["host"],
            "--port", str(info["port"]),
            "--serial", info["serial"],
            "--access-code", info["access_code"],
            "--ca-file", info["ca_path"],
        ]
    )  # fmt: skip
    lines += [
        "",
        "Watch its reports with mosquitto (--insecure only skips the host-name check: like a",
        "real printer, the certificate names the serial, not an address; the chain is checked):",
        f"  {printer.mosquitto_sub_command()}",
        "",
        "Or with bambu-lan:",
        f"  {bambu}",
    ]
    return "\n".join(lines)


def _table(listing: list[dict[str, Any]]) -> str:
    columns = ("host", "port", "serial", "access_code")
    headers = {"host": "HOST", "port": "PORT", "serial": "SERIAL", "access_code": "ACCESS CODE"}
    widths = {c: max(len(headers[c]), *(len(str(row[c])) for row in listing)) for c in columns}
    lines = [
        f"{len(listing)} simulated {listing[0]['product_name']} printers running. Ctrl-C to stop.",
        f"CA file (trust it in every client): {listing[0]['ca_path']}",
        "",
        "  ".join(f"{headers[c]:<{widths[c]}}" for c in columns).rstrip(),
    ]
    lines += ["  ".join(f"{row[c]!s:<{widths[c]}}" for c in columns).rstrip() for row in listing]
    lines += ["", "--json prints the same as JSON."]
    return "\n".join(lines)
