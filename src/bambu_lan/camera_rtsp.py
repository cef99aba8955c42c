"""X1, P2S and H2 cameras: H.264 over RTSPS on port 322 (protocol.md §7.2).

``camera url`` prints the stream's address (the access code masked unless asked). A
snapshot is taken without ever handing the access code to another program: bambu-lan
opens the TLS connection itself, checks the printer's identity with the same trust as MQTT
before anything is sent, speaks RTSP on it (the code goes only into the ``Authorization``
header, Digest or Basic as the printer asks), takes the video's RTP packets over that same
connection, and pipes the bare H.264 stream into ffmpeg's stdin. ffmpeg only decodes one
picture to JPEG: its command line names no address and no code (``ps`` shows them to
every user of the machine, and ffmpeg 5.1 cannot read an address from a file), and its
environment is passed on without any variable that holds the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import time
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bambu_lan.camera_rtsp_wire import (
    ACCESS_UNIT_DELIMITER,
    MAX_HEAD,
    NAL_IDR,
    NAL_SPS,
    Credentials,
    H264Depacketizer,
    Response,
    RtspProtocolError,
    annex_b,
    nal_type,
    parse_challenges,
    parse_response_head,
    request,
    track_uri,
    video_track,
)
from bambu_lan.config import PrinterConfig, Secret, redact
from bambu_lan.protocol.camera_wire import is_whole_jpeg
from bambu_lan.text import terminal_safe
from bambu_lan.trust import HandshakeCheck, tls12_context

if TYPE_CHECKING:
    from bambu_lan.camera import CameraFrame

RTSP_PATH = "/streaming/live/1"
RTSP_USER = "bblp"
MASK = "********"
#: Environment variables never passed on to ffmpeg (they may hold the access code).
SECRET_VARIABLES = frozenset({"BAMBU_ACCESS_CODE"})


def rtsp_url(cfg: PrinterConfig, port: int = 322, masked: bool = True) -> str:
    """``rtsps://bblp:CODE@HOST:PORT/streaming/live/1``; CODE is ``********`` when masked."""
    code = MASK if masked else quote(cfg.access_code.reveal(), safe="")
    return f"rtsps://{RTSP_USER}:{code}@{_hostport(cfg.host, port)}{RTSP_PATH}"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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
FFMPEG_HINT = (
    "install ffmpeg (apt install ffmpeg / brew install ffmpeg / winget install ffmpeg), or "
    "open `bambu-lan camera url` in VLC"
)


def ffmpeg_environment(code: str) -> dict[str, str]:
    """This process's environment without anything that holds the access code."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in SECRET_VARIABLES and not (code and code in value)
    }


async def end_ffmpeg(
    proc: asyncio.subprocess.Process, *reads: Awaitable[object], drain_stdout: bool = False
) -> None:
    """Close ffmpeg's input, kill it if it still runs, and read its pipes to their end (the
    ``reads`` already under way, and stdout too with ``drain_stdout``): the process's
    transport closes only then."""
    if proc.stdin is not None:
        proc.stdin.close()
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    if drain_stdout and proc.stdout is not None:
        reads = (*reads, proc.stdout.read())
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await asyncio.gather(*reads, return_exceptions=True)


def ffmpeg_reason(stderr: asyncio.Future[bytes], code: Secret) -> str:
    """ffmpeg's last line on stderr, the access code redacted, terminal-safe and short;
    "" when it said nothing (or its stderr could not be read)."""
    read = stderr.done() and not stderr.cancelled() and stderr.exception() is None
    lines = (stderr.result() if read else b"").decode("utf-8", "replace").strip().splitlines()
    return terminal_safe(redact(lines[-1], code))[:300] if lines else ""


def decoder_args(ffmpeg: str) -> list[str]:
    """ffmpeg reading H.264 (Annex B) on stdin and writing one JPEG to stdout.

    One decoding thread, no reordering delay and no probing beyond the first packet (an
    ``analyzeduration`` of 0 would mean ffmpeg's default of 5 s): with the access unit
    delimiter written after each picture, the first whole picture comes out at once.
    (``-fflags nobuffer`` would hold it back until about a dozen more had arrived.)
    """
    return [
        ffmpeg, "-nostats", "-hide_banner", "-loglevel", "error",
        "-threads", "1", "-flags", "low_delay", "-probesize", "32", "-analyzeduration", "1",
        "-f", "h264", "-i", "pipe:0",
        "-frames:v", "1", "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "3", "pipe:1",
    ]  # fmt: skip


# --- the RTSP session ---------------------------------------------------------------------------


class RtspSession:
    """One RTSP session over TLS with a printer: DESCRIBE, SETUP (RTP over this connection),
    PLAY, then the video's RTP packets with ``packets()``."""

    def __init__(self, cfg: PrinterConfig, port: int) -> None:
        self.cfg = cfg
        self.port = port
        self.base = f"rtsps://{_hostport(cfg.host, port)}{RTSP_PATH}"  # no credentials in it
        self.where = f"the live view of {cfg.label} ({cfg.host}:{port})"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._cseq = 0
        self._session: str | None = None
        self._credentials = Credentials(RTSP_USER, cfg.access_code.reveal())
        self.channel = 0  # the interleaved channel of the video's RTP
        self.parameter_sets: list[bytes] = []  # SPS/PPS from the SDP, if it has them

    async def open(self, timeout: float) -> None:
        """TCP, TLS and the identity check; nothing is sent before the check passed."""
        from bambu_lan.camera import CameraError, CameraUnavailable

        cfg = self.cfg
        check = HandshakeCheck(cfg.serial, cfg.trust, cfg.host)
        ctx = tls12_context(cfg.trust.ca_files() if cfg.trust.mode == "ca" else ())
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    cfg.host, self.port, ssl=ctx, server_hostname=cfg.serial, limit=MAX_HEAD
                )
        except ssl.SSLCertVerificationError as exc:
            raise check.verification_failed(exc) from None
        except ConnectionRefusedError:
            raise CameraUnavailable(
                f"{self.where} refused the connection",
                hint=LIVE_VIEW_HINT + "; A1 and P1 printers have no RTSPS camera (port 6000 "
                "instead)",
            ) from None
        except TimeoutError:
            raise CameraUnavailable(f"{self.where} did not answer within {timeout:g} s") from None
        except (ConnectionResetError, asyncio.IncompleteReadError, ssl.SSLEOFError):
            raise self._closed_at_once() from None
        except (ssl.SSLError, OSError) as exc:
            raise CameraError(f"cannot open {self.where}: {exc}") from None
        try:
            check.verify(writer.get_extra_info("ssl_object"))  # before any credential leaves
        except BaseException:
            writer.transport.abort()
            raise
        self._reader, self._writer = reader, writer

    def _closed_at_once(self) -> Exception:
        from bambu_lan.camera import CameraUnavailable

        return CameraUnavailable(
            f"{self.where} closed the connection at once: its LAN live view is probably "
            "switched off",
            hint=LIVE_VIEW_HINT,
        )

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            if self._session is not None:
                with contextlib.suppress(Exception):  # polite, never waited for
                    writer.write(self._request_bytes("TEARDOWN", self.base))
            writer.transport.abort()

    def _request_bytes(
        self, method: str, uri: str, extra: Mapping[str, str] | None = None
    ) -> bytes:
        self._cseq += 1
        headers = dict(extra or {})
        if self._session is not None:
            headers["Session"] = self._session
        authorization = self._credentials.authorization(method, uri)
        if authorization is not None:
            headers["Authorization"] = authorization
        return request(method, uri, self._cseq, headers)

    async def call(self, method: str, uri: str, extra: Mapping[str, str] | None = None) -> Response:
        """Send a request and read its response; answers one 401 with the credentials."""
        from bambu_lan.camera import CameraAuthError, CameraError, CameraUnavailable

        response = await self._exchange(method, uri, extra)
        if response.status == 401:
            answered = self._credentials.challenge is not None
            challenges = parse_challenges(response.headers.get("www-authenticate", []))
            if not answered and self._credentials.choose(challenges):
                response = await self._exchange(method, uri, extra)
            elif not answered:
                raise CameraError(
                    f"{self.where} asks for a kind of login bambu-lan does not speak "
                    f"({terminal_safe(', '.join(c.scheme for c in challenges))[:80] or 'none'})"
                )
        if response.status == 401:
            raise CameraAuthError(
                f"{self.where} refused the access code (RTSP 401)",
                hint="check the access code on the printer's screen (Settings > WLAN / LAN "
                "Only Mode); it changes when LAN mode is switched off and on",
            )
        if response.status == 404:
            raise CameraUnavailable(
                f"{self.where} has no stream at {RTSP_PATH} (RTSP 404)", hint=LIVE_VIEW_HINT
            )
        if response.status != 200:
            reason = terminal_safe(response.reason)[:80]
            raise CameraError(f"{self.where} answered {method} with {response.status} {reason}")
        return response

    async def _exchange(self, method: str, uri: str, extra: Mapping[str, str] | None) -> Response:
        from bambu_lan.camera import CameraError

        assert self._reader is not None
        assert self._writer is not None
        cseq_sent = self._cseq + 1
        self._writer.write(self._request_bytes(method, uri, extra))
        while True:
            response = await self._read_response()
            cseq = response.header("cseq")
            if cseq is None or cseq.strip() == str(cseq_sent):
                return response
            if not cseq.strip().isdigit():
                raise CameraError(f"{self.where} sent a response with a bad CSeq")

    async def _read_response(self) -> Response:
        from bambu_lan.camera import CameraError

        assert self._reader is not None
        reader = self._reader
        try:
            while True:
                first = await reader.readexactly(1)
                if first == b"$":  # an RTP/RTCP packet before the response: skipped
                    head = await reader.readexactly(3)
                    await reader.readexactly(int.from_bytes(head[1:3], "big"))
                    continue
                head_bytes = first + await reader.readuntil(b"\r\n\r\n")
                break
        except asyncio.IncompleteReadError as exc:
            if not exc.partial and self._cseq == 1:
                raise self._closed_at_once() from None
            raise CameraError(f"{self.where} closed the connection") from None
        except asyncio.LimitOverrunError:
            raise CameraError(f"{self.where} sent a response head over {MAX_HEAD} bytes") from None
        except (ConnectionError, ssl.SSLError) as exc:
            if self._cseq == 1:
                raise self._closed_at_once() from None
            raise CameraError(f"{self.where}: the connection broke ({exc})") from None
        try:
            response = parse_response_head(head_bytes)
            length = response.content_length
        except RtspProtocolError as exc:
            raise CameraError(f"{self.where}: {exc}") from None
        if length:
            try:
                body = await reader.readexactly(length)
            except asyncio.IncompleteReadError:
                raise CameraError(f"{self.where} closed the connection mid-response") from None
            response = Response(response.status, response.reason, response.headers, body)
        return response

    async def start_video(self) -> H264Depacketizer:
        """DESCRIBE, SETUP and PLAY; returns the depacketizer of the video track."""
        from bambu_lan.camera import CameraError

        await self.call("OPTIONS", self.base)
        described = await self.call("DESCRIBE", self.base, {"Accept": "application/sdp"})
        try:
            track = video_track(described.body.decode("utf-8", "replace"))
        except RtspProtocolError as exc:
            raise CameraError(f"{self.where}: {exc}") from None
        if track.codec != "H264":
            raise CameraError(
                f"{self.where} streams {terminal_safe(track.codec)[:20] or 'an unnamed codec'}"
                ", not H.264"
            )
        base = described.header("content-base") or self.base
        setup = await self.call(
            "SETUP",
            track_uri(base, track.control),
            {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"},
        )
        session = setup.header("session")
        if not session:
            raise CameraError(f"{self.where} answered SETUP without a session")
        self._session = session.split(";", 1)[0].strip()
        transport = setup.header("transport") or ""
        for part in transport.split(";"):
            if part.strip().startswith("interleaved="):
                channel = part.strip()[len("interleaved=") :].split("-", 1)[0]
                if channel.isdecimal():
                    self.channel = int(channel)
        await self.call("PLAY", base, {"Range": "npt=0.000-"})
        self.parameter_sets = track.parameter_sets()
        return H264Depacketizer(track.payload_type)

    async def next_packet(self) -> bytes:
        """The next RTP packet of the video channel (others are skipped)."""
        from bambu_lan.camera import CameraError

        assert self._reader is not None
        reader = self._reader
        try:
            while True:
                first = await reader.readexactly(1)
                if first == b"$":
                    head = await reader.readexactly(3)
                    data = await reader.readexactly(int.from_bytes(head[1:3], "big"))
                    if head[0] == self.channel:
                        return data
                else:  # a response the server sent on its own: skipped
                    await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            raise CameraError(f"{self.where} closed the video stream") from None
        except asyncio.LimitOverrunError:
            raise CameraError(f"{self.where} sent a message head over {MAX_HEAD} bytes") from None
        except (ConnectionError, ssl.SSLError) as exc:
            raise CameraError(f"{self.where}: the video stream broke ({exc})") from None


# --- one picture through ffmpeg -----------------------------------------------------------------


async def rtsps_snapshot(cfg: PrinterConfig, port: int, *, timeout: float = 20.0) -> CameraFrame:
    """One JPEG from the RTSPS stream: the session is ours, ffmpeg only decodes."""
    from bambu_lan.camera import CameraFrame, CameraTimeout, CameraUnavailable

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise CameraUnavailable(
            "taking a picture from an X1, P2S or H2 camera needs ffmpeg, which is not installed",
            hint=FFMPEG_HINT,
        )
    session = RtspSession(cfg, port)
    deadline = time.monotonic() + timeout
    try:
        try:
            async with asyncio.timeout(timeout):
                await session.open(min(timeout, 10.0))
                depacketizer = await session.start_video()
        except TimeoutError:
            raise CameraTimeout(
                f"{session.where} did not start the video within {timeout:g} s",
                hint=LIVE_VIEW_HINT,
            ) from None
        jpeg = await _decode_one(ffmpeg, cfg, session, depacketizer, deadline - time.monotonic())
    finally:
        session.close()
    return CameraFrame(jpeg, time.time(), time.monotonic(), 1)


async def _decode_one(
    ffmpeg: str,
    cfg: PrinterConfig,
    session: RtspSession,
    depacketizer: H264Depacketizer,
    timeout: float,
) -> bytes:
    from bambu_lan.camera import CameraError, CameraTimeout

    code = cfg.access_code.reveal()
    proc = await asyncio.create_subprocess_exec(
        *decoder_args(ffmpeg),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ffmpeg_environment(code),
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    output = asyncio.ensure_future(proc.stdout.read())
    errors = asyncio.ensure_future(proc.stderr.read())
    feeder = asyncio.ensure_future(_feed(session, depacketizer, proc.stdin))
    try:
        done, _ = await asyncio.wait(
            {output, feeder}, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            raise CameraTimeout(
                f"no picture from {session.where} within the time allowed "
                f"({depacketizer.stats.nal_units} video units received)",
                hint=LIVE_VIEW_HINT,
            )
        if output not in done:
            feeder.result()  # the stream broke before a picture: its error
        jpeg = await output
        with contextlib.suppress(TimeoutError):  # a whole picture needs no clean exit
            async with asyncio.timeout(5):
                await proc.wait()
    finally:
        feeder.cancel()
        await end_ffmpeg(proc, output, errors)
    if not is_whole_jpeg(jpeg):
        reason = ffmpeg_reason(errors, cfg.access_code) or f"exit code {proc.returncode}"
        raise CameraError(
            f"ffmpeg could not decode the live view of {cfg.label}: {reason}",
            hint="the printer's video may be damaged; try again, or open `bambu-lan camera "
            "url` in VLC",
        )
    return jpeg


def from_key_picture(nals: list[bytes], parameter_sets: list[bytes]) -> list[bytes] | None:
    """``nals`` from the first point a decoder can start at (a sequence parameter set, or a
    key picture when the SDP gave the parameter sets, which are put before it); None when
    there is none in them."""
    for i, nal in enumerate(nals):
        kind = nal_type(nal)
        if kind == NAL_SPS:
            return nals[i:]
        if kind == NAL_IDR and parameter_sets:
            return [*parameter_sets, *nals[i:]]
    return None


async def _feed(
    session: RtspSession, depacketizer: H264Depacketizer, stdin: asyncio.StreamWriter
) -> None:
    """Write the video as Annex B into ffmpeg, from the first key picture on, until ffmpeg
    has had enough (it closes its stdin when it exits)."""
    from bambu_lan.camera import CameraError

    parameter_sets = list(session.parameter_sets)
    started = False
    while True:
        try:
            nals = depacketizer.feed(await session.next_packet())
        except RtspProtocolError as exc:
            raise CameraError(f"{session.where}: {exc}") from None
        if not started:
            keyed = from_key_picture(nals, parameter_sets)
            if keyed is None:
                continue
            nals, started = keyed, True
        try:
            stdin.write(annex_b(nals))
            if depacketizer.marker:  # the picture is whole: say so at once
                stdin.write(ACCESS_UNIT_DELIMITER)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return  # ffmpeg has its picture (or failed: its exit code tells)


__all__ = [
    "FFMPEG_HINT",
    "LIVE_VIEW_HINT",
    "RtspSession",
    "decoder_args",
    "ffmpeg_environment",
    "from_key_picture",
    "live_view_problem",
    "rtsp_url",
    "rtsps_snapshot",
]
