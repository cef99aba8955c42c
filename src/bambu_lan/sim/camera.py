"""The simulated A1/P1 camera: TLS with the printer's certificate, the 80-byte login, JPEG
frames about once a second (protocol.md §7.1).

Like the printer it answers nothing to a good login, and closes the connection on a bad one.
Each frame is written as the 16-byte header in a TLS record of its own followed by the
JPEG, as printers do (some clients depend on it). One picture is drawn per tick and shared
by every viewer; nothing is drawn while nobody watches.

Faults on demand, for the client's tests: a payload that is not a JPEG, a frame cut off by
a closed connection, a header announcing 50 MB, silence with the socket kept open, and
frames split across TLS records at random places.

This module parses the login on its own: the fake printer shares no decoding with the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["JPEG_CAMERA_MODELS", "CameraFault", "CameraServer", "CameraServerStats"]

log = logging.getLogger(__name__)

#: Model codes whose camera is this JPEG stream (A1, A1 mini, P1P, P1S, A2L); others: RTSPS.
JPEG_CAMERA_MODELS = frozenset({"N2S", "N1", "C11", "C12", "N9"})

CameraFault = Literal["not_jpeg", "truncate", "too_large", "fragment"]

_LOGIN = struct.Struct("<IIII32s32s")
_HEADER = struct.Struct("<IIII")
_MAX_BUFFERED = 4 * 1024 * 1024  # a viewer this far behind skips frames


@dataclass(slots=True)
class CameraServerStats:
    connections: int = 0
    logins_received: int = 0  # 80-byte logins read (the access code reached the printer)
    logins_accepted: int = 0
    logins_refused: int = 0  # wrong code, wrong user, wrong packet, or none in time
    frames_sent: int = 0
    frames_skipped: int = 0  # a slow viewer's frames not written


class _Viewer:
    __slots__ = ("fragment", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.fragment = False


class CameraServer:
    """The camera port of one simulated printer.

    ``frame_source()`` returns the next JPEG (called once per tick while someone watches);
    ``interval`` is the seconds between frames.
    """

    def __init__(
        self,
        serial: str,
        access_code: str,
        frame_source: Callable[[], bytes],
        *,
        interval: float = 1.0,
        login_timeout: float = 5.0,
        seed: int | None = None,
    ) -> None:
        self.serial = serial
        self.access_code = access_code
        self.frame_source = frame_source
        self.interval = interval
        self.login_timeout = login_timeout
        self.stats = CameraServerStats()
        self.host = ""
        self.port = 0
        self._server: asyncio.Server | None = None
        self._viewers: set[_Viewer] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._faults: list[CameraFault] = []
        self._silent = False
        self._rng = random.Random(seed)
        #: Called with ``time.monotonic()`` of the moment each frame began to be written to the
        #: viewers (benchmarks measure delivery latency from it).
        self.on_frame: Callable[[float], None] | None = None

    def __repr__(self) -> str:
        return f"<CameraServer {self.serial} {self.host}:{self.port} viewers={self.viewers}>"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def viewers(self) -> int:
        """Connections that logged in and are being sent frames."""
        return len(self._viewers)

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext) -> None:
        self._server = await asyncio.start_server(
            self._handle, host, port, ssl=ssl_context, ssl_handshake_timeout=self.login_timeout
        )
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self._tick(), name=f"bambu-lan-sim-camera-{self.serial}")

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        # Aborting the sockets ends every handler by itself (cancelling a stream handler
        # makes asyncio log an error on Python 3.11).
        for writer in list(self._writers):
            writer.transport.abort()
        self._viewers.clear()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    # -- faults ----------------------------------------------------------------------------

    def inject(self, fault: CameraFault) -> None:
        """Apply ``fault`` to the next frame of every viewer.

        ``not_jpeg``: a payload of text instead of a JPEG; ``truncate``: half a frame, then
        the connection is closed; ``too_large``: a header announcing 50 MB and a little data;
        ``fragment``: from now on, this viewer's bytes are split at random places.
        """
        self._faults.append(fault)

    def go_silent(self, silent: bool = True) -> None:
        """Stop (or resume) sending frames, keeping every socket open."""
        self._silent = silent

    def drop_viewers(self) -> int:
        """Close every viewer's connection at once. Returns how many."""
        viewers = list(self._viewers)
        for viewer in viewers:
            viewer.writer.transport.abort()
        self._viewers.clear()
        return len(viewers)

    # -- connections -------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        self.stats.connections += 1
        viewer: _Viewer | None = None
        try:
            try:
                async with asyncio.timeout(self.login_timeout):
                    login = await reader.readexactly(_LOGIN.size)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                self.stats.logins_refused += 1
                return
            self.stats.logins_received += 1
            if not self._login_ok(login):
                self.stats.logins_refused += 1
                return
            self.stats.logins_accepted += 1
            viewer = _Viewer(writer)
            self._viewers.add(viewer)
            self._wake.set()
            # Nothing more is read; wait for the viewer to hang up.
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                while await reader.read(4096):
                    pass
        finally:
            if viewer is not None:
                self._viewers.discard(viewer)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if task is not None:
                self._handlers.discard(task)

    def _login_ok(self, packet: bytes) -> bool:
        size, kind, _flags, _reserved, user, code = _LOGIN.unpack(packet)
        return bool(
            size == 0x40
            and kind == 0x3000
            and user.rstrip(b"\0") == b"bblp"
            and code.rstrip(b"\0") == self.access_code.encode("ascii")
        )

    # -- frames ------------------------------------------------------------------------------

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._viewers:
                self._wake.clear()
                await self._wake.wait()
            started = loop.time()
            if not self._silent:
                try:
                    jpeg = self.frame_source()
                except Exception:
                    log.exception("the simulated camera of %s could not draw a frame", self.serial)
                else:
                    began = time.monotonic()
                    self._send_all(jpeg)
                    if self.on_frame is not None:
                        self.on_frame(began)
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    def _send_all(self, jpeg: bytes) -> None:
        fault = self._faults.pop(0) if self._faults else None
        for viewer in list(self._viewers):
            transport = viewer.writer.transport
            if transport.is_closing():
                self._viewers.discard(viewer)
                continue
            if transport.get_write_buffer_size() > _MAX_BUFFERED:
                self.stats.frames_skipped += 1
                continue
            if fault == "fragment":
                viewer.fragment = True
            self._send(viewer, jpeg, fault)

    def _send(self, viewer: _Viewer, jpeg: bytes, fault: CameraFault | None) -> None:
        writer = viewer.writer
        if fault == "not_jpeg":
            payload = b"this is not a JPEG " * 20
            self._write(viewer, _HEADER.pack(len(payload), 0, 1, 0), payload)
            return
        if fault == "too_large":
            self._write(viewer, _HEADER.pack(50 * 1024 * 1024, 0, 1, 0), jpeg[:4096])
            return
        if fault == "truncate":
            self._write(viewer, _HEADER.pack(len(jpeg), 0, 1, 0), jpeg[: len(jpeg) // 2])
            self._viewers.discard(viewer)
            writer.close()  # a clean TLS close in the middle of the frame
            return
        self._write(viewer, _HEADER.pack(len(jpeg), 0, 1, 0), jpeg)
        self.stats.frames_sent += 1

    def _write(self, viewer: _Viewer, header: bytes, payload: bytes) -> None:
        writer = viewer.writer
        if not viewer.fragment:
            writer.write(header)  # its own TLS record, as a printer sends it
            writer.write(payload)
            return
        data = header + payload
        cuts = sorted(self._rng.sample(range(1, len(data)), min(6, len(data) - 1)))
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            writer.write(data[start:end])
