"""``bambu-lan camera snapshot|serve|url``: the printer's camera."""

from __future__ import annotations

import asyncio
import ipaddress
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bambu_lan.cli.options import (
    ConnectionParams,
    connection_options,
    echo_json,
    json_errors,
    json_option,
    run,
)

if TYPE_CHECKING:
    from bambu_lan.camera import Camera
    from bambu_lan.config import PrinterConfig

STATE_TIMEOUT = 15.0  # seconds to wait for the printer's report (RTSPS models only)

_camera_port = click.option(
    "--camera-port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    envvar="BAMBU_CAMERA_PORT",
    help="The camera's port. [default: 6000 on A1/P1 (JPEG), 322 on X1/P2S/H2 (RTSPS); "
    "config: camera_port; env: BAMBU_CAMERA_PORT]",
)


@click.group()
@click.pass_context
def camera(ctx: click.Context) -> None:
    """The printer's camera: a picture, a live MJPEG stream, or the stream's address.

    A1, A1 mini, P1P and P1S send JPEG pictures on port 6000 (about one a second); bambu-lan
    reads them itself. X1, P2S and H2 printers stream H.264 video over RTSPS on port 322:
    bambu-lan reads that stream itself and has ffmpeg turn it into pictures for `snapshot`
    and `serve` (ffmpeg never sees the address or the access code); `url` prints the
    address for VLC, ffmpeg or go2rtc.

    \b
    Examples:
      bambu-lan camera snapshot now.jpg --printer workshop
      bambu-lan camera serve --printer workshop      then open http://127.0.0.1:8080/
      bambu-lan camera url --printer x1c             rtsps://bblp:********@...
    """
    from bambu_lan.cli.log_lines import told_by_command

    # The subcommands tell the camera's news themselves (`camera:` lines, one `error:`
    # line), so its log records are not repeated as `warning:` lines.
    ctx.with_resource(told_by_command("bambu_lan.camera"))


def _config(conn: ConnectionParams, camera_port: int | None) -> PrinterConfig:
    return conn.resolve(camera_port=camera_port)


def _camera(cfg: PrinterConfig, fps: float = 5.0, jpeg_quality: int = 5) -> Camera:
    from bambu_lan.camera import Camera, CameraOptions

    return Camera(cfg, options=CameraOptions(fps=fps, jpeg_quality=jpeg_quality))


async def _check_live_view(cfg: PrinterConfig) -> None:
    """For RTSPS printers: read one report and refuse early when the live view is off."""
    from bambu_lan.camera import CameraUnavailable
    from bambu_lan.camera_rtsp import LIVE_VIEW_HINT, live_view_problem
    from bambu_lan.printer import Printer

    async with Printer.from_config(cfg) as printer:
        state = await printer.wait_for_state(STATE_TIMEOUT)
    problem = live_view_problem(state.raw)
    if problem:
        raise CameraUnavailable(f"{cfg.label}: {problem}", hint=LIVE_VIEW_HINT)


# --- snapshot -------------------------------------------------------------------------------


@camera.command()
@click.argument("out", metavar="OUT.jpg", type=click.Path(dir_okay=False, path_type=Path))
@connection_options
@_camera_port
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=25.0,
    show_default=True,
    help="Seconds to wait for a picture.",
)
@json_option
def snapshot(
    out: Path, conn: ConnectionParams, camera_port: int | None, timeout: float, as_json: bool
) -> None:
    """Save one picture from the camera to OUT.jpg ('-': write it to stdout).

    The file is replaced only once a whole picture has arrived.
    """
    with json_errors(as_json):
        cfg = _config(conn, camera_port)
        frame_bytes, received_at = run(_snapshot(cfg, timeout))
        if str(out) == "-":
            sys.stdout.buffer.write(frame_bytes)
            sys.stdout.flush()
        else:
            _write_atomically(out, frame_bytes)
    if str(out) == "-":
        return
    if as_json:
        echo_json({"ok": True, "path": str(out), "bytes": len(frame_bytes), "at": received_at})
    else:
        click.echo(f"saved {out} ({len(frame_bytes) / 1024:.0f} KB)")


async def _snapshot(cfg: PrinterConfig, timeout: float) -> tuple[bytes, float]:
    cam = _camera(cfg)
    if cam.kind == "rtsps":
        await _check_live_view(cfg)
    frame = await cam.snapshot(timeout=timeout)
    return frame.jpeg, frame.received_at


def _write_atomically(path: Path, data: bytes) -> None:
    from bambu_lan.errors import ConfigError
    from bambu_lan.local_files import write_atomically

    try:
        write_atomically(path, data)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check that the folder exists and that you may write there",
        ) from None


# --- url ------------------------------------------------------------------------------------


@camera.command()
@connection_options
@_camera_port
@click.option(
    "--show-code",
    is_flag=True,
    help="Put the real access code in the address (it is masked as ******** otherwise).",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="Do not ask the printer whether its live view is on (no connection at all).",
)
@json_option
def url(
    *,
    conn: ConnectionParams,
    camera_port: int | None,
    show_code: bool,
    no_check: bool,
    as_json: bool,
) -> None:
    """Print the RTSPS address of an X1, P2S or H2 camera, for VLC, ffmpeg or go2rtc.

    The access code is masked unless --show-code is given. Before printing, bambu-lan reads
    the printer's report and says so when the LAN live view is switched off.
    """
    from bambu_lan.camera import CameraUnavailable

    with json_errors(as_json):
        cfg = _config(conn, camera_port)
        cam = _camera(cfg)
        if cam.kind == "jpeg":
            raise CameraUnavailable(
                f"{cfg.label} has no video stream: A1 and P1 printers send JPEG pictures on "
                f"port {cam.port}, which no video player opens directly",
                hint="`bambu-lan camera serve` turns them into an MJPEG stream that browsers, "
                "VLC, OBS and Home Assistant open",
            )
        if not no_check:
            run(_check_live_view(cfg))
        address = cam.rtsp_url(masked=not show_code)
    if as_json:
        echo_json({"ok": True, "url": address, "masked": not show_code})
    else:
        click.echo(address)


# --- serve ----------------------------------------------------------------------------------


@camera.command()
@connection_options
@_camera_port
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="The HTTP port to serve on (0: a free one, printed at start).",
)
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDRESS",
    help="The address to serve on. The default lets only this machine watch; 0.0.0.0 lets "
    "anyone on your network watch (there is no password).",
)
@click.option(
    "--max-viewers",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Refuse viewers beyond this many.",
)
@click.option(
    "--fps",
    type=click.FloatRange(0.1, 30),
    default=5.0,
    show_default=True,
    help="X1/P2S/H2: pictures per second made from the printer's video (more costs CPU).",
)
@click.option(
    "--jpeg-quality",
    type=click.IntRange(2, 31),
    default=5,
    show_default=True,
    metavar="Q",
    help="X1/P2S/H2: ffmpeg's JPEG quality, 2 (best, largest) to 31 (smallest).",
)
@json_option
def serve(
    *,
    conn: ConnectionParams,
    camera_port: int | None,
    http_port: int,
    bind: str,
    max_viewers: int,
    fps: float,
    jpeg_quality: int,
    as_json: bool,
) -> None:
    """Serve the printer's camera over HTTP until Ctrl-C: an MJPEG stream and a picture.

    \b
      /stream.mjpg    the live picture for a browser, VLC, OBS or Home Assistant
                      (its "MJPEG IP Camera" integration)
      /snapshot.jpg   the newest picture
      /               a page showing the stream

    Every viewer is fed from one connection to the printer (its camera takes few).

    A1/P1: the printer's own JPEGs (about one a second), the connection held open.
    X1/P2S/H2: one RTSPS session whose H.264 video one ffmpeg turns into --fps JPEGs a
    second (ffmpeg must be installed). It is checked at the start, then runs only while
    someone watches, and stops 10 s after the last viewer left.

    \b
    Examples:
      bambu-lan camera serve --printer workshop
      bambu-lan camera serve --printer x1c --fps 10 --http-port 8081
    """
    with json_errors(as_json):
        cfg = _config(conn, camera_port)
        if not _is_loopback(bind):
            click.secho(
                f"warning: serving on {bind}: anyone who can reach this machine can watch "
                "the camera (there is no password)",
                fg="yellow",
                err=True,
            )
        cam = _camera(cfg, fps, jpeg_quality)
        run(_serve(cam, bind, http_port, max_viewers, as_json))


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


async def _serve(cam: Camera, bind: str, http_port: int, max_viewers: int, as_json: bool) -> None:
    from bambu_lan.camera_http import MjpegServer
    from bambu_lan.errors import ConfigError

    cfg = cam.config
    if cam.kind == "rtsps":
        from bambu_lan.camera_rtsp_stream import require_ffmpeg

        require_ffmpeg()  # before asking the printer anything
        await _check_live_view(cfg)
    server = MjpegServer(cam, host=bind, port=http_port, max_viewers=max_viewers)
    try:
        await server.start()
    except OSError as exc:
        await server.close()
        raise ConfigError(
            f"cannot serve on {bind}:{http_port}: {exc.strerror or exc}",
            hint="pick another --http-port (0: a free one) or --bind address",
        ) from None
    try:
        info: dict[str, Any] = {
            "ok": True,
            "url": server.url,
            "stream": server.url + "/stream.mjpg",
            "snapshot": server.url + "/snapshot.jpg",
        }
        if as_json:
            echo_json(info)
        else:
            click.echo(f"serving the camera of {cfg.label}; Ctrl-C to stop")
            click.echo(f"  stream    {info['stream']}")
            click.echo(f"  snapshot  {info['snapshot']}")
            click.echo(f"  page      {server.url}/")
        sys.stdout.flush()
        reporter = asyncio.create_task(_report_events(cam, as_json))
        try:
            await server.serve_forever()
        finally:
            reporter.cancel()
    finally:
        await server.close()


async def _report_events(cam: Camera, as_json: bool) -> None:
    """Reconnects, silences and dropped frames, as they happen (JSON lines with --json).

    These lines are how the command tells them: the camera's own log records stay out of
    stderr (see ``camera``; ``--debug`` shows them). A failure for good is told once, as the
    command's ``error:`` line.
    """
    from bambu_lan.camera import CameraEventKind
    from bambu_lan.text import terminal_safe

    with cam.events() as events:
        async for event in events:
            if as_json:
                echo_json({"event": event.to_dict()})
            elif event.kind is not CameraEventKind.FAILED:
                click.echo(f"camera: {terminal_safe(event.message)}", err=True)
