"""The simulated X1/P2S/H2 camera: H.264 over RTSPS (protocol.md §7.2).

TLS with the printer's certificate; RTSP 1.0 at ``/streaming/live/1``; the login is user
``bblp`` with the access code (protocol.md §7.2), asked for with an MD5 Digest challenge
after an unauthenticated OPTIONS, as live555-based servers do (which scheme a printer uses
is not documented; the client answers Basic too); a wrong code gets 401 again. The video
goes as RTP over the RTSP connection (``RTP/AVP/TCP;interleaved``, what ffmpeg, VLC, go2rtc
and Home Assistant use with ``rtsp_transport tcp``); a UDP SETUP gets 461.

The pictures are the A1 camera's drawn frames (model, serial, job, progress, time), encoded
by a real H.264 encoder: ffmpeg with libx264, whose own RTP packetizer (RFC 6184: single
NAL units, STAP-A, FU-A) writes the packets to a local datagram socket (AF_UNIX: reliable
and packet by packet, nothing on any network). Every viewer is sent the same packets,
starting at the last key picture (a GOP cache, as camera servers do), so a new viewer sees
a picture at once. Nothing is drawn or encoded while nobody watches.

With the live view switched off (``live_view = False``, the H2's default), the port closes
every connection at once, as a printer's does. This module parses RTSP on its own: the fake
printer shares no code with the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import socket
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from bambu_lan.errors import ConfigError

__all__ = ["FFMPEG_HINT", "RTSP_PATH", "RtspCameraServer", "RtspServerStats"]

log = logging.getLogger(__name__)

RTSP_PATH = "/streaming/live/1"
REALM = "LIVE555 Streaming Media"
FFMPEG_HINT = (
    "the simulated X1/P2S/H2 camera encodes H.264 with ffmpeg (libx264): apt install ffmpeg"
)
_PAYLOAD_TYPE = 96
_HEAD_LIMIT = 8192
_MAX_BUFFERED = 4 * 1024 * 1024  # a viewer this far behind waits for the next key picture
_METHODS = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"


@dataclass(slots=True)
class RtspServerStats:
    connections: int = 0
    refused_live_view_off: int = 0  # connections closed at once (live view switched off)
    challenges: int = 0  # 401s sent to requests without credentials
    auth_failures: int = 0  # 401s sent to wrong credentials
    plays: int = 0  # sessions that started playing
    packets_sent: int = 0
    encoder_starts: int = 0
    requests: int = 0


class _Viewer:
    __slots__ = ("waiting_for_key", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.waiting_for_key = True


def require_ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise ConfigError(
            "the simulated X1/P2S/H2 camera needs ffmpeg, which is not installed",
            hint=FFMPEG_HINT,
        )
    return path


class RtspCameraServer:
    """The RTSPS port of one simulated printer.

    ``frame_source()`` returns the next picture as raw RGB, ``size`` pixels (called once per
    ``interval`` seconds while someone watches).
    """

    def __init__(
        self,
        serial: str,
        access_code: str,
        frame_source: Callable[[], bytes],
        *,
        size: tuple[int, int] = (1280, 720),
        interval: float = 1.0,
        live_view: bool = True,
        login_timeout: float = 5.0,
    ) -> None:
        self.serial = serial
        self.access_code = access_code
        self.frame_source = frame_source
        self.size = size
        self.interval = interval
        self.live_view = live_view
        self.login_timeout = login_timeout
        self.ffmpeg = require_ffmpeg()
        self.stats = RtspServerStats()
        self.host = ""
        self.port = 0
        self._ssl: ssl.SSLContext | None = None
        self._server: asyncio.Server | None = None
        self._viewers: set[_Viewer] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._gop: list[bytes] = []  # the packets since the last key picture
        self._encoder: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<RtspCameraServer {self.serial} {self.host}:{self.port} viewers={self.viewers}>"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def viewers(self) -> int:
        """Sessions that are playing."""
        return len(self._viewers)

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext) -> None:
        # The handshake is done in the handler (after the live-view check), not by asyncio.
        self._ssl = ssl_context
        self._server = await asyncio.start_server(self._handle, host, port, limit=_HEAD_LIMIT)
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._viewers.clear()
        await self._stop_encoder()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    def set_live_view(self, on: bool) -> None:
        """Switch the LAN live view on or off (off: every session ends, new ones are closed
        at once). The printer's report is the caller's to change."""
        self.live_view = on
        if not on:
            self.drop_viewers()

    def drop_viewers(self) -> int:
        """Close every connection at once. Returns how many viewers were playing."""
        count = len(self._viewers)
        for writer in list(self._writers):
            writer.transport.abort()
        self._viewers.clear()
        return count

    # -- connections -------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        self.stats.connections += 1
        try:
            if not self.live_view:
                self.stats.refused_live_view_off += 1
                writer.transport.abort()
                return
            assert self._ssl is not None
            try:
                async with asyncio.timeout(self.login_timeout):
                    await writer.start_tls(self._ssl)
            except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
                return
            await _Session(self, reader, writer).run()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._viewers = {v for v in self._viewers if v.writer is not writer}
            self._writers.discard(writer)
            writer.transport.abort()
            try:
                if not self._viewers:
                    await self._stop_encoder()  # before leaving _handlers: stop() waits for it
            finally:
                if task is not None:
                    self._handlers.discard(task)

    def check_authorization(self, method: str, value: str | None, nonce: str) -> bool:
        """An ``Authorization: Digest`` answering our challenge with bblp and the code."""
        if value is None or not value.lower().startswith("digest "):
            return False
        params: dict[str, str] = {}
        for item in _split_params(value[7:]):
            name, _, raw = item.partition("=")
            params[name.strip().lower()] = raw.strip().strip('"')
        if params.get("username") != "bblp" or params.get("nonce") != nonce:
            return False
        if params.get("realm") != REALM:
            return False
        uri = params.get("uri", "")
        ha1 = _md5(f"bblp:{REALM}:{self.access_code}")
        ha2 = _md5(f"{method}:{uri}")
        if params.get("qop") == "auth":
            expected = _md5(
                f"{ha1}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}:auth:{ha2}"
            )
        else:
            expected = _md5(f"{ha1}:{nonce}:{ha2}")
        return secrets.compare_digest(expected, params.get("response", ""))

    def play(self, writer: asyncio.StreamWriter) -> None:
        viewer = _Viewer(writer)
        self._viewers.add(viewer)
        self.stats.plays += 1
        if self._gop:  # a picture at once: the packets since the last key picture
            viewer.waiting_for_key = False
            for packet in self._gop:
                self._send(viewer, packet)
        if self._encoder is None:
            self._encoder = asyncio.create_task(
                self._encode(), name=f"bambu-lan-sim-rtsp-{self.serial}"
            )

    # -- the encoder -------------------------------------------------------------------------

    async def _stop_encoder(self) -> None:
        encoder, self._encoder = self._encoder, None
        self._gop = []
        if encoder is not None:
            encoder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await encoder

    async def _encode(self) -> None:
        """Draw, encode and packetize while anyone watches."""
        loop = asyncio.get_running_loop()
        folder = tempfile.mkdtemp(prefix="bambu-lan-sim-rtsp-")
        path = os.path.join(folder, "rtp")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(path)
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), self._receive, sock)
            await self._run_encoder(path)
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(sock.fileno())
            sock.close()
            shutil.rmtree(folder, ignore_errors=True)

    def _receive(self, sock: socket.socket) -> None:
        while True:
            try:
                packet = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            self._on_packet(packet)

    async def _run_encoder(self, path: str) -> None:
        loop = asyncio.get_running_loop()
        width, height = self.size
        rate = max(1, round(1 / self.interval))
        args = [
            self.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostats",
            "-probesize", "32", "-analyzeduration", "0", "-fflags", "nobuffer",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
            "-framerate", str(rate), "-i", "pipe:0",
            "-an", "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast",
            "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-g", str(rate), "-bf", "0",
            "-flush_packets", "1", "-f", "rtp", "-payload_type", str(_PAYLOAD_TYPE),
            "-packetsize", "1400", "-type", "datagram", f"unix:{path}",
        ]  # fmt: skip
        self.stats.encoder_starts += 1
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,  # it prints the SDP there
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None
        assert proc.stderr is not None
        errors = asyncio.ensure_future(proc.stderr.read())
        try:
            while True:
                started = loop.time()
                try:
                    frame = self.frame_source()
                except Exception:
                    log.exception("the simulated camera of %s could not draw a frame", self.serial)
                else:
                    proc.stdin.write(frame)
                    await proc.stdin.drain()
                await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))
        except (BrokenPipeError, ConnectionResetError):
            message = (await errors).decode("utf-8", "replace").strip()
            log.error("the simulated camera's encoder stopped: %s", message[-500:])
        finally:
            proc.stdin.close()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            # Read stderr to its end: the process's transport closes only then.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await errors

    def _on_packet(self, packet: bytes) -> None:
        if len(packet) < 13 or packet[1] & 0x7F != _PAYLOAD_TYPE:
            return  # the encoder's RTCP sender reports (payload types 200-204)
        key = _starts_key_picture(packet)
        if key:
            self._gop = []
        self._gop.append(packet)
        for viewer in list(self._viewers):
            if viewer.waiting_for_key and not key:
                continue
            viewer.waiting_for_key = False
            self._send(viewer, packet)

    def _send(self, viewer: _Viewer, packet: bytes) -> None:
        transport = viewer.writer.transport
        if transport.is_closing():
            self._viewers.discard(viewer)
            return
        if transport.get_write_buffer_size() > _MAX_BUFFERED:
            viewer.waiting_for_key = True  # too slow: skip to the next key picture
            return
        viewer.writer.write(b"$\x00" + len(packet).to_bytes(2, "big") + packet)
        self.stats.packets_sent += 1


def _starts_key_picture(packet: bytes) -> bool:
    """The packet begins an access unit with a sequence parameter set (x264 repeats SPS/PPS
    before every key picture): a single SPS NAL, or a STAP-A whose first NAL is one."""
    start = 12 + 4 * (packet[0] & 0x0F)
    if len(packet) <= start:
        return False
    kind = packet[start] & 0x1F
    if kind == 7:
        return True
    return kind == 24 and len(packet) > start + 3 and packet[start + 3] & 0x1F == 7


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _split_params(text: str) -> list[str]:
    """``a="x, y", b=z`` split at the commas outside quotes."""
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if "".join(current).strip():
        out.append("".join(current).strip())
    return out


class _Session:
    """One RTSP connection: requests in, responses out, then RTP once playing."""

    def __init__(
        self, server: RtspCameraServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.nonce = secrets.token_hex(16)
        self.session = secrets.token_hex(8).upper()
        self.set_up = False
        self.playing = False

    async def run(self) -> None:
        reader = self.reader
        while True:
            first = await reader.readexactly(1)
            if first == b"$":  # the client's RTCP receiver reports: read and dropped
                head = await reader.readexactly(3)
                await reader.readexactly(int.from_bytes(head[1:3], "big"))
                continue
            try:
                head = first + await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                self._reply(400, "Bad Request", "0")
                return
            if not await self._request(head):
                return

    async def _request(self, head: bytes) -> bool:
        """Answer one request; False: close the connection."""
        server = self.server
        server.stats.requests += 1
        lines = head.decode("utf-8", "replace").split("\r\n")
        parts = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        cseq = headers.get("cseq", "")
        if len(parts) != 3 or not parts[2].startswith("RTSP/1.") or not cseq.isdigit():
            self._reply(400, "Bad Request", cseq or "0")
            return False
        length = headers.get("content-length", "0")
        if length.isdigit() and 0 < int(length) <= 65536:
            await self.reader.readexactly(int(length))
        method, uri = parts[0], parts[1]
        path = uri.split("://", 1)[-1].partition("/")[2]
        if not ("/" + path).startswith(RTSP_PATH):
            self._reply(404, "Stream Not Found", cseq)
            return True
        if method == "OPTIONS":
            self._reply(200, "OK", cseq, {"Public": _METHODS})
            return True
        if method not in _METHODS.split(", "):
            self._reply(405, "Method Not Allowed", cseq, {"Allow": _METHODS})
            return True
        authorization = headers.get("authorization")
        if not server.check_authorization(method, authorization, self.nonce):
            if authorization is None:
                server.stats.challenges += 1
            else:
                server.stats.auth_failures += 1
            challenge = f'Digest realm="{REALM}", nonce="{self.nonce}"'
            self._reply(401, "Unauthorized", cseq, {"WWW-Authenticate": challenge})
            return True
        if method == "DESCRIBE":
            base = uri.split("?", 1)[0].rstrip("/") + "/"
            self._reply(
                200,
                "OK",
                cseq,
                {"Content-Base": base, "Content-Type": "application/sdp"},
                self._sdp().encode("ascii"),
            )
        elif method == "SETUP":
            transport = headers.get("transport", "")
            if "RTP/AVP/TCP" not in transport.upper():
                self._reply(461, "Unsupported Transport", cseq)
                return True
            self.set_up = True
            self._reply(
                200,
                "OK",
                cseq,
                {
                    "Transport": "RTP/AVP/TCP;unicast;interleaved=0-1",
                    "Session": f"{self.session};timeout=65",
                },
            )
        elif method == "PLAY":
            if not self.set_up or headers.get("session", "").split(";")[0] != self.session:
                self._reply(454, "Session Not Found", cseq)
                return True
            self._reply(200, "OK", cseq, {"Session": self.session, "Range": "npt=0.000-"})
            if not self.playing:
                self.playing = True
                server.play(self.writer)
        elif method == "TEARDOWN":
            self._reply(200, "OK", cseq, {"Session": self.session})
            return False
        else:  # GET_PARAMETER: a keep-alive
            self._reply(200, "OK", cseq, {"Session": self.session})
        return True

    def _sdp(self) -> str:
        host = self.server.host
        return "\r\n".join(
            [
                "v=0",
                f"o=- {int.from_bytes(os.urandom(4), 'big')} 1 IN IP4 {host}",
                "s=Bambu Lab live view (simulated)",
                "c=IN IP4 0.0.0.0",
                "t=0 0",
                "a=control:*",
                "a=range:npt=0-",
                f"m=video 0 RTP/AVP {_PAYLOAD_TYPE}",
                f"a=rtpmap:{_PAYLOAD_TYPE} H264/90000",
                f"a=fmtp:{_PAYLOAD_TYPE} packetization-mode=1",
                "a=control:track1",
                "",
            ]
        )

    def _reply(
        self,
        status: int,
        reason: str,
        cseq: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        lines = [f"RTSP/1.0 {status} {reason}", f"CSeq: {cseq}", "Server: bambu-lan simulator"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body)
