"""X1, P2S and H2 cameras as a stream of JPEGs, for ``frames()`` and ``camera serve``.

The printer sends H.264 over RTSPS (protocol.md §7.2). One RTSP session per printer per
process (``camera_rtsp.RtspSession``: bambu-lan's own TLS, identity check and login) feeds
its video into ONE long-running ffmpeg, which decodes it and encodes at most
``CameraOptions.fps`` JPEGs a second (``-q:v`` ``jpeg_quality``) onto its stdout. The JPEGs
are cut out of that byte stream by their markers (``JpegSplitter``) and handed to the same
fan-out as the A1's frames, so every viewer, ``snapshot()`` and the HTTP server work as
they do there. As with the one-picture snapshot, ffmpeg's command line and environment
carry neither the address nor the access code.

Faults: ffmpeg missing is a ``CameraUnavailable`` at once, saying what to install; an ffmpeg
that dies is restarted with backoff on the same session (logged once per run of failures,
``camera_decoder_failed``); a session that drops, or no picture for ``silence_timeout``
seconds, reconnects as the A1 camera does. Only ``frames()`` consumers start the session:
after the last one leaves, a streaming session stays ``idle_linger`` seconds (10 s by
default), then the session and ffmpeg stop (``events()`` subscribers keep only the object,
not the session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import time

from bambu_lan.camera import (
    CameraAuthError,
    CameraError,
    CameraEventKind,
    CameraFrame,
    CameraOptions,
    CameraStream,
    CameraTimeout,
    CameraUnavailable,
)
from bambu_lan.camera_fanout import Subscriber
from bambu_lan.camera_rtsp import (
    FFMPEG_HINT,
    LIVE_VIEW_HINT,
    RtspSession,
    end_ffmpeg,
    ffmpeg_environment,
    ffmpeg_reason,
    from_key_picture,
)
from bambu_lan.camera_rtsp_wire import (
    ACCESS_UNIT_DELIMITER,
    H264Depacketizer,
    RtspProtocolError,
    annex_b,
)
from bambu_lan.config import PrinterConfig

log = logging.getLogger("bambu_lan.camera")

DEFAULT_LINGER = 10.0  # seconds the session outlives its last viewer
_DECODER_BACKOFF = (0.5, 8.0)  # first and longest wait before an ffmpeg is restarted
_STDERR_TAIL = 4096  # bytes of ffmpeg's messages kept (for the reason it stopped)
_READ_SIZE = 262144


def require_ffmpeg() -> str:
    """ffmpeg's path, or ``CameraUnavailable`` saying what to install."""
    path = shutil.which("ffmpeg")
    if path is None:
        raise CameraUnavailable(
            "an X1, P2S or H2 camera's video needs ffmpeg to become pictures, and ffmpeg is "
            "not installed",
            hint=FFMPEG_HINT,
        )
    return path


def transcoder_args(ffmpeg: str, fps: float, quality: int) -> list[str]:
    """ffmpeg reading H.264 (Annex B) on stdin and writing JPEGs, back to back, to stdout.

    The pictures are stamped with their arrival time (the bare H.264 stream has none) and
    ``-r`` with ``-fps_mode vfr`` drops those that would come sooner than 1/fps after the
    last: at most ``fps`` JPEGs a second, none repeated. With the access unit delimiter
    after each picture, each comes out as soon as it is decoded.
    """
    return [
        ffmpeg, "-nostats", "-hide_banner", "-loglevel", "error",
        "-threads", "1", "-flags", "low_delay", "-probesize", "32", "-analyzeduration", "1",
        "-use_wallclock_as_timestamps", "1", "-f", "h264", "-i", "pipe:0",
        "-an", "-r", f"{fps:g}", "-fps_mode", "vfr",
        "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", str(quality), "-flush_packets", "1",
        "pipe:1",
    ]  # fmt: skip


class JpegSplitter:
    """Whole JPEGs out of a byte stream of JPEGs written back to back.

    Walks the marker segments by their lengths up to the scan, then the entropy-coded data
    (where a 0xFF byte is always followed by 0x00 or a restart marker) to the end marker, so
    an 0xFFD9 inside a segment never ends a picture early. Bytes before a start marker are
    skipped; a picture growing past ``max_size`` is dropped (counted in ``dropped``).
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.dropped = 0
        self._buf = bytearray()
        self._pos = 0  # where to go on reading the current picture
        self._in_scan = False

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            end = self._scan()
            if end is None:
                break
            out.append(bytes(self._buf[:end]))
            del self._buf[:end]
            self._pos, self._in_scan = 0, False
        if len(self._buf) > self.max_size:
            self.dropped += 1
            self._buf.clear()
            self._pos, self._in_scan = 0, False
        return out

    def _scan(self) -> int | None:
        """The end of the first whole picture in the buffer, or None (the position reached
        is kept for the next call)."""
        while True:
            end = self._scan_from_start()
            if end != -1:
                return end

    def _scan_from_start(self) -> int | None:
        """As ``_scan``; -1: what looked like a picture was not one (skipped): again."""
        buf = self._buf
        if self._pos == 0:
            start = buf.find(b"\xff\xd8")
            if start < 0:
                del buf[: max(len(buf) - 1, 0)]  # keep a last 0xFF: it may begin one
                return None
            del buf[:start]
            self._pos = 2
        pos = self._pos
        while True:
            if self._in_scan:
                marker_at = buf.find(b"\xff", pos)
                if marker_at < 0 or marker_at + 1 >= len(buf):
                    self._pos = len(buf) - 1 if marker_at >= 0 else len(buf)
                    return None
                code = buf[marker_at + 1]
                if code == 0x00 or 0xD0 <= code <= 0xD7 or code == 0xFF:
                    pos = marker_at + 1 if code == 0xFF else marker_at + 2
                    continue
                self._in_scan = False  # a marker: the end, or another segment
                pos = marker_at
            if pos + 2 > len(buf):
                self._pos = pos
                return None
            if buf[pos] != 0xFF:  # not a JPEG after all: look for the next start
                del buf[:pos]
                self._pos, self._in_scan = 0, False
                self.dropped += 1
                return -1
            code = buf[pos + 1]
            if code == 0xD9:
                return pos + 2
            if code == 0xFF:  # fill byte
                pos += 1
                continue
            if code == 0x01 or 0xD0 <= code <= 0xD8:  # markers without a length
                pos += 2
                continue
            if pos + 4 > len(buf):
                self._pos = pos
                return None
            pos += 2 + int.from_bytes(buf[pos + 2 : pos + 4], "big")
            if code == 0xDA:
                self._in_scan = True


class RtspsCameraStream(CameraStream):
    """The shared RTSPS session of one X1/P2S/H2 camera and its ffmpeg (one per process)."""

    def __init__(self, cfg: PrinterConfig, port: int, options: CameraOptions) -> None:
        super().__init__(cfg, port, options)
        linger = options.idle_linger
        self.linger = DEFAULT_LINGER if linger is None else linger
        self.ffmpeg = require_ffmpeg()
        self._wanted = False  # frame consumers are there (or left less than linger ago)
        self._changed = asyncio.Event()
        self._linger_timer: asyncio.TimerHandle | None = None
        self._decoder: asyncio.subprocess.Process | None = None
        self._stdin: asyncio.StreamWriter | None = None  # where the video goes now
        self._synced = False  # the current ffmpeg had its key picture
        self._session_frames = 0
        self._last_frame = 0.0
        self._failures_in_row = 0  # ffmpegs that stopped without a picture since the last

    @property
    def label(self) -> str:
        return f"the live view of {self.cfg.label} ({self.cfg.host}:{self.port})"

    @property
    def decoder_pid(self) -> int | None:
        """The process id of the running ffmpeg, if one runs."""
        decoder = self._decoder
        return decoder.pid if decoder is not None and decoder.returncode is None else None

    @property
    def session_open(self) -> bool:
        """Whether the RTSP session runs (it stops ``linger`` s after the last viewer)."""
        return self._wanted

    # -- who wants pictures --

    def subscribe_frames(self) -> Subscriber[CameraFrame]:
        sub = super().subscribe_frames()
        self._on_loop(self._want, None)
        return sub

    def _want(self, _: object) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if not self._wanted and not self.closed:
            self._wanted = True
            self._changed.set()

    def _close_if_unused(self) -> None:
        if self.closed or self.frame_subs:
            return
        if not self._wanted:
            if self.users == 0:
                self.close()
        elif self._linger_timer is None:
            if self.linger <= 0 or not self.streaming:  # only a working session is kept
                self._idle()
            else:
                self._linger_timer = self.loop.call_later(self.linger, self._idle)

    def _idle(self) -> None:
        self._linger_timer = None
        if self.frame_subs or self.closed:
            return
        self._wanted = False
        self._changed.set()
        if self.users == 0:
            self.close()

    def close(self) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        self._kill_decoder()  # now, not when the task gets to it: no ffmpeg outlives us
        super().close()

    def _kill_decoder(self) -> None:
        decoder = self._decoder
        self._stdin = None
        if decoder is not None and decoder.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                decoder.kill()

    # -- the session --

    async def _stream_once(self) -> None:
        """Sessions while frames are wanted; waits while they are not. Raises what ended a
        session (the caller reconnects with backoff)."""
        while True:
            while not self._wanted:
                self._changed.clear()
                await self._changed.wait()
            try:
                await self._session()
            finally:
                self.streaming = False
                self.latest = None

    async def _session(self) -> None:
        session = RtspSession(self.cfg, self.port)
        self.stats.attempts += 1
        timeout = self.options.connect_timeout
        try:
            try:
                async with asyncio.timeout(timeout):
                    await session.open(timeout)
                    depacketizer = await session.start_video()
            except TimeoutError:
                raise CameraUnavailable(
                    f"{self.label} did not start the video within {timeout:g} s",
                    hint=LIVE_VIEW_HINT,
                ) from None
            except CameraAuthError as exc:
                self.stats.auth_failures += 1
                self._emit(CameraEventKind.AUTH_FAILED, str(exc))
                raise
            self._session_frames = 0
            self._last_frame = time.monotonic()
            tasks = [
                asyncio.ensure_future(self._feed(session, depacketizer)),
                asyncio.ensure_future(self._transcode()),
                asyncio.ensure_future(self._watch()),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # the error that ended the session; else: idle
            except CameraError as exc:
                if not isinstance(exc, CameraTimeout) and self._session_frames:
                    self._emit(CameraEventKind.DISCONNECTED, f"{exc}: reconnecting")
                raise
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            session.close()
            self._kill_decoder()

    async def _watch(self) -> None:
        """Returns when nobody wants pictures any more; raises when none came for
        ``silence_timeout`` seconds."""
        silence = self.options.silence_timeout
        while self._wanted:
            remaining = self._last_frame + silence - time.monotonic()
            if remaining <= 0:
                self.stats.silences += 1
                message = f"{self.label} gave no picture for {silence:g} s: reconnecting"
                self._emit(CameraEventKind.SILENT, message)
                raise CameraTimeout(message)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

    async def _feed(self, session: RtspSession, depacketizer: H264Depacketizer) -> None:
        """The session's video, as Annex B, into the running ffmpeg (each new one from a
        key picture on); dropped while none runs."""
        while True:
            packet = await session.next_packet()
            self.stats.bytes += len(packet)
            try:
                nals = depacketizer.feed(packet)
            except RtspProtocolError as exc:
                raise CameraError(f"{self.label}: {exc}") from None
            stdin = self._stdin
            if stdin is None or stdin.transport.is_closing():
                continue
            if not self._synced:
                keyed = from_key_picture(nals, session.parameter_sets)
                if keyed is None:
                    continue
                nals, self._synced = keyed, True
            try:
                stdin.write(annex_b(nals))
                if depacketizer.marker:  # the picture is whole: say so at once
                    stdin.write(ACCESS_UNIT_DELIMITER)
                await stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                if self._stdin is stdin:
                    self._stdin = None  # ffmpeg stopped: _transcode restarts it

    async def _transcode(self) -> None:
        """Run ffmpeg, publish its JPEGs, restart it with backoff when it stops."""
        while True:
            produced, reason = await self._run_decoder()
            if self.stats.frames == 0:  # never a picture: a decoder that cannot work here
                raise CameraError(
                    f"ffmpeg could not decode {self.label}: {reason}",
                    hint="the printer's video may be damaged; try again, or open "
                    "`bambu-lan camera url` in VLC",
                )
            # The run of failures goes on across sessions until an ffmpeg gives a picture.
            failures = self._failures_in_row = 1 if produced else self._failures_in_row + 1
            first, longest = _DECODER_BACKOFF
            delay = min(first * 2 ** (failures - 1), longest) * random.uniform(0.8, 1.2)
            self.stats.decoder_failures += 1
            message = f"ffmpeg stopped decoding {self.label} ({reason}); restarting it"
            if failures == 1:  # once per run of failures, not at every retry
                self._emit(CameraEventKind.DECODER_FAILED, message, logging.WARNING)
            else:
                log.debug("%s (again, in %.1f s)", message, delay)
            await asyncio.sleep(delay)

    async def _run_decoder(self) -> tuple[int, str]:
        """One ffmpeg until it stops: how many pictures it gave and why it stopped."""
        args = transcoder_args(self.ffmpeg, self.options.fps, self.options.jpeg_quality)
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=ffmpeg_environment(self.cfg.access_code.reveal()),
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        self.stats.decoder_starts += 1
        self._decoder, self._stdin, self._synced = proc, proc.stdin, False
        errors = asyncio.ensure_future(_tail(proc.stderr))
        produced = 0
        try:
            splitter = JpegSplitter(self.options.max_frame)
            while True:
                data = await proc.stdout.read(_READ_SIZE)
                if not data:
                    break
                for jpeg in splitter.feed(data):
                    produced += 1
                    self._publish_jpeg(jpeg)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await proc.wait()
        finally:
            if self._decoder is proc:
                self._decoder, self._stdin = None, None
            await end_ffmpeg(proc, errors, drain_stdout=True)
        reason = ffmpeg_reason(errors, self.cfg.access_code) or f"exit code {proc.returncode}"
        return produced, reason

    def _publish_jpeg(self, jpeg: bytes) -> None:
        now, wall = time.monotonic(), time.time()
        self._last_frame = now
        stats = self.stats
        if self._session_frames == 0:
            stats.connects += 1
            self.streaming = True
            self.error = None
            self._emit(CameraEventKind.CONNECTED, f"{self.label}: streaming")
            if not self.first_outcome.done():
                self.first_outcome.set_result(None)
        self._session_frames += 1
        stats.frames += 1
        self._publish(CameraFrame(jpeg, wall, now, stats.frames))


async def _tail(stream: asyncio.StreamReader) -> bytes:
    """A stream read to its end, keeping only its last bytes (ffmpeg may complain about a
    damaged video for hours)."""
    kept = b""
    while chunk := await stream.read(65536):
        kept = (kept + chunk)[-_STDERR_TAIL:]
    return kept


__all__ = ["DEFAULT_LINGER", "JpegSplitter", "RtspsCameraStream", "require_ffmpeg"]
