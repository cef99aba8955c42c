"""X1, P2S and H2 cameras: H.264 over RTSPS on port 322 (protocol.md §7.2).

bambu-lan does not decode video: it prints the stream's address (the access code masked
unless asked) and takes single pictures through ffmpeg when it is installed. Before ffmpeg
gets the address (which carries the access code), the printer's identity is checked with
the same trust as MQTT, in a TLS handshake of our own that sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bambu_lan.config import PrinterConfig, redact
from bambu_lan.protocol.camera_wire import is_whole_jpeg
from bambu_lan.text import terminal_safe
from bambu_lan.trust import HandshakeCheck, tls12_context

if TYPE_CHECKING:
    from bambu_lan.camera import CameraFrame

RTSP_PATH = "/streaming/live/1"
MASK = "********"


def rtsp_url(cfg: PrinterConfig, port: int = 322, masked: bool = True) -> str:
    """``rtsps://bblp:CODE@HOST:PORT/streaming/live/1``; CODE is ``********`` when masked."""
    code = MASK if masked else quote(cfg.access_code.reveal(), safe="")
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    return f"rtsps://bblp:{code}@{host}:{port}{RTSP_PATH}"


def live_view_problem(raw: Mapping[str, Any]) -> str | None:
    """Why the printer's report says there is no LAN live view, or None.

    ``raw`` is the merged ``print`` object (``PrinterState.raw``).
    """
    ipcam = raw.get("ipcam")
    if not isinstance(ipcam, Mapping):
        return None
    if str(ipcam.get("ipcam_dev", "1")) == "0":
        return "the printer reports no camera (ipcam.ipcam_dev is 0)"
    if ipcam.get("rtsp_url") == "disable":
        return 'the printer\'s LAN live view is switched off (ipcam.rtsp_url is "disable")'
    return None


LIVE_VIEW_HINT = (
    "turn on the live view on the printer's screen: X1: Settings > Network > "
    "'LAN Mode Liveview'; H2/P2S: 'LAN Only Liveview'"
)


async def check_identity(cfg: PrinterConfig, port: int, timeout: float = 10.0) -> None:
    """A TLS handshake with ``port`` that checks the printer's identity and sends nothing.

    Raises ``TrustError`` for the wrong printer and ``CameraUnavailable``/``CameraError`` when
    the port cannot be reached.
    """
    from bambu_lan.camera import CameraError, CameraUnavailable

    check = HandshakeCheck(cfg.serial, cfg.trust, cfg.host)
    ctx = tls12_context(cfg.trust.ca_files() if cfg.trust.mode == "ca" else ())
    where = f"the live view of {cfg.label} ({cfg.host}:{port})"
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(
                cfg.host, port, ssl=ctx, server_hostname=cfg.serial
            )
    except ssl.SSLCertVerificationError as exc:
        raise check.verification_failed(exc) from None
    except ConnectionRefusedError:
        raise CameraUnavailable(
            f"{where} refused the connection",
            hint=LIVE_VIEW_HINT + "; A1 and P1 printers have no RTSPS camera (port 6000 instead)",
        ) from None
    except TimeoutError:
        raise CameraUnavailable(f"{where} did not answer within {timeout:g} s") from None
    except (ssl.SSLError, OSError) as exc:
        raise CameraError(f"cannot open {where}: {exc}") from None
    try:
        check.verify(writer.get_extra_info("ssl_object"))
    finally:
        writer.transport.abort()


async def rtsps_snapshot(cfg: PrinterConfig, port: int, *, timeout: float = 20.0) -> CameraFrame:
    """One JPEG from the RTSPS stream, through ffmpeg."""
    from bambu_lan.camera import CameraError, CameraFrame, CameraTimeout, CameraUnavailable

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise CameraUnavailable(
            "taking a picture from an X1, P2S or H2 camera needs ffmpeg, which is not installed",
            hint="install ffmpeg (apt install ffmpeg / brew install ffmpeg / winget install "
            "ffmpeg), or open `bambu-lan camera url` in VLC",
        )
    await check_identity(cfg, port, min(timeout, 10.0))
    # The address carries the access code: it goes to ffmpeg only, never into a message.
    args = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
        "-rtsp_transport", "tcp", "-i", rtsp_url(cfg, port, masked=False),
        "-frames:v", "1", "-f", "image2pipe", "-vcodec", "mjpeg", "-",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        raise CameraTimeout(
            f"ffmpeg got no picture from {cfg.label} within {timeout:g} s",
            hint=LIVE_VIEW_HINT,
        ) from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.returncode != 0 or not is_whole_jpeg(out):
        lines = err.decode("utf-8", "replace").strip().splitlines()
        reason = redact(lines[-1], cfg.access_code) if lines else f"exit code {proc.returncode}"
        reason = terminal_safe(reason)  # ffmpeg may quote what the server sent
        raise CameraError(
            f"ffmpeg could not read the live view of {cfg.label}: {reason[:300]}",
            hint=LIVE_VIEW_HINT,
        )
    now = time.monotonic()
    return CameraFrame(out, time.time(), now, 1)


__all__ = ["check_identity", "live_view_problem", "rtsp_url", "rtsps_snapshot"]
