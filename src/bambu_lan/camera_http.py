"""``camera serve``: the printer's camera as an MJPEG stream and a still picture over HTTP.

``/stream.mjpg`` (``multipart/x-mixed-replace``, what browsers, VLC, OBS and Home Assistant's
MJPEG camera open), ``/snapshot.jpg`` and a small page at ``/``. Every viewer is fed from the
one shared upstream connection of ``bambu_lan.camera``; a slow viewer skips frames and never
holds up the others.

The HTTP side is deliberately tiny (GET and HEAD of three paths, a request head of at most
8 KB read within 10 s): there is nothing to parse beyond the request line.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from dataclasses import dataclass

from bambu_lan.camera import (
    Camera,
    CameraFrame,
    EventSubscription,
    FrameSubscription,
    shared_stream,
)
from bambu_lan.errors import BambuError

log = logging.getLogger("bambu_lan.camera_http")

BOUNDARY = "bambu-lan-frame"
_HEAD_LIMIT = 8192
_HEAD_TIMEOUT = 10.0
_WRITE_TIMEOUT = 30.0  # a viewer that takes no data for this long is dropped
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


@dataclass(slots=True)
class ServerStats:
    viewers: int = 0  # MJPEG viewers now
    viewers_total: int = 0
    snapshots: int = 0
    frames_written: int = 0
    requests_refused: int = 0


class MjpegServer:
    """Serves one ``Camera`` over HTTP until ``close()``.

    ``keep_open``: hold the upstream connection while nobody watches, so ``/snapshot.jpg``
    answers at once (and a failing camera is noticed before the first viewer). By default
    (None) A1/P1 cameras are held; an X1/P2S/H2 camera (an RTSP session and an ffmpeg
    decoding video) is checked once at the start, then runs only while someone watches
    and ``idle_linger`` seconds after.
    """

    def __init__(
        self,
        camera: Camera,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        max_viewers: int = 100,
        keep_open: bool | None = None,
        title: str = "",
    ) -> None:
        self.camera = camera
        self.host = host
        self.port = port
        self.max_viewers = max_viewers
        self.keep_open = camera.kind != "rtsps" if keep_open is None else keep_open
        self._check_at_start = keep_open is None or keep_open
        self.title = title or camera.config.label
        self.stats = ServerStats()
        self._server: asyncio.Server | None = None
        self._keeper: FrameSubscription | None = None
        self._events: EventSubscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._streams: set[FrameSubscription] = set()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Wait for the camera's first frame (raising its failure), then listen."""
        if self._check_at_start:
            keeper = self.camera.frames()
            try:
                await self.camera.wait_until_streaming(keeper.stream)
            except BaseException:
                keeper.close()
                raise
            if self.keep_open:
                self._keeper = keeper
            else:
                self._events = self.camera.events()  # tells a failure for good
                keeper.close()
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=_HEAD_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        """Until cancelled, or until the camera fails for good (its error is raised)."""
        if self._events is not None:
            async for _ in self._events:
                pass  # ends, raising it, when the camera fails for good
            return
        if self._keeper is None:
            await asyncio.Event().wait()
            return
        async for _ in self._keeper:
            pass  # frames reach each viewer through its own subscription

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._keeper is not None:
            self._keeper.close()
        if self._events is not None:
            self._events.close()
        # Ending the viewers' streams and sockets ends their handlers (cancelling a stream
        # handler makes asyncio log an error on Python 3.11).
        for frames in list(self._streams):
            frames.close()
        for writer in list(self._writers):
            writer.transport.abort()
        stream = shared_stream(self.camera.config, self.camera.port)
        if stream is not None:
            stream.release()  # no linger once the server is gone
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def __aenter__(self) -> MjpegServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- requests --------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._respond(reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the viewer went away
        except asyncio.LimitOverrunError:
            await self._simple(writer, 400, "request head too large\n")
        except BambuError as exc:
            # The camera failed for good (e.g. the printer's identity changed): the camera's
            # own event says so once; this viewer's response just ends.
            log.info("camera viewer %s: the stream ended: %s", _peer(writer), exc)
        finally:
            self._writers.discard(writer)
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _respond(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(_HEAD_TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            await self._simple(writer, 400, "bad request\n")
            return
        method = parts[0].decode("ascii", "replace")
        path = parts[1].decode("ascii", "replace").split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            await self._simple(writer, 405, "only GET and HEAD\n", extra="Allow: GET, HEAD\r\n")
            return
        head_only = method == "HEAD"
        if path == "/stream.mjpg":
            await self._stream(writer, head_only)
        elif path == "/snapshot.jpg":
            await self._snapshot(writer, head_only)
        elif path in ("/", "/index.html"):
            page = self._page()
            kind = "text/html; charset=utf-8"
            await self._simple(writer, 200, page, content_type=kind, head_only=head_only)
        else:
            await self._simple(writer, 404, "not found: try /stream.mjpg or /snapshot.jpg\n")

    def _page(self) -> str:
        title = html.escape(self.title)
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{title} camera</title></head>"
            "<body style='margin:0;background:#111;color:#ddd;font-family:sans-serif'>"
            f"<p style='margin:8px'>{title}: <a href='/snapshot.jpg' style='color:#8cf'>"
            "snapshot</a></p><img src='/stream.mjpg' alt='camera' style='max-width:100%'>"
            "</body></html>\n"
        )

    async def _simple(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: str,
        *,
        content_type: str = "text/plain; charset=utf-8",
        head_only: bool = False,
        extra: str = "",
    ) -> None:
        if status >= 400:
            self.stats.requests_refused += 1
        data = body.encode("utf-8")
        writer.write(self._head(status, content_type, len(data), extra))
        if not head_only:
            writer.write(data)
        async with asyncio.timeout(_WRITE_TIMEOUT):
            await writer.drain()

    @staticmethod
    def _head(status: int, content_type: str, length: int | None, extra: str = "") -> bytes:
        lines = [
            f"HTTP/1.1 {status} {_REASONS[status]}",
            f"Content-Type: {content_type}",
            "Cache-Control: no-store, no-cache, must-revalidate",
            "X-Content-Type-Options: nosniff",
            "Connection: close",
        ]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode("ascii")

    async def _snapshot(self, writer: asyncio.StreamWriter, head_only: bool) -> None:
        try:
            frame = await self.camera.snapshot(timeout=self.camera.options.silence_timeout)
        except BambuError as exc:
            await self._simple(writer, 503, f"no picture from the camera: {exc}\n")
            return
        self.stats.snapshots += 1
        writer.write(self._head(200, "image/jpeg", frame.size))
        if not head_only:
            writer.write(frame.jpeg)
        async with asyncio.timeout(_WRITE_TIMEOUT):
            await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, head_only: bool) -> None:
        if self.stats.viewers >= self.max_viewers:
            await self._simple(writer, 503, f"too many viewers (at most {self.max_viewers})\n")
            return
        content_type = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        if head_only:
            writer.write(self._head(200, content_type, None))
            await writer.drain()
            return
        frames = self.camera.frames()
        self._streams.add(frames)
        self.stats.viewers += 1
        self.stats.viewers_total += 1
        peer = _peer(writer)
        log.info("camera viewer %s connected (%d watching)", peer, self.stats.viewers)
        try:
            writer.write(self._head(200, content_type, None))
            stream = frames.stream
            if stream is not None and stream.latest is not None:
                await self._write_part(writer, stream.latest)  # a picture at once
            async for frame in frames:
                await self._write_part(writer, frame)
        finally:
            frames.close()
            self._streams.discard(frames)
            self.stats.viewers -= 1
            log.info("camera viewer %s left (%d watching)", peer, self.stats.viewers)

    async def _write_part(self, writer: asyncio.StreamWriter, frame: CameraFrame) -> None:
        header = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {frame.size}\r\n\r\n"
        writer.writelines((header.encode("ascii"), frame.jpeg, b"\r\n"))
        async with asyncio.timeout(_WRITE_TIMEOUT):
            await writer.drain()
        self.stats.frames_written += 1


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"
