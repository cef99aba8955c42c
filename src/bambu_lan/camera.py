"""The printer's camera: JPEG frames from an A1/P1 (port 6000) and from X1/P2S/H2 (RTSPS).

::

    async with Printer(host, serial, code) as printer:
        frame = await printer.camera.snapshot()          # one JPEG
        async for frame in printer.camera.frames():      # every JPEG, as it arrives
            ...

Every consumer of one printer's camera in this process shares one upstream connection
(the port's connection limit is unknown, so never more than one): it opens with the first
consumer and closes with the last. It uses the same trust as MQTT, checked before the
access code is written; it reconnects with backoff after a drop and after a stream that
stays silent for ``silence_timeout`` seconds. What happens is told as ``CameraEvent``s.
X1, P2S and H2 printers send H.264 over RTSPS instead: ``camera_rtsp_stream`` turns it into
the same frames through one ffmpeg (needs ffmpeg installed).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bambu_lan.camera_fanout import End, Subscriber, Subscription
from bambu_lan.config import PrinterConfig, redact
from bambu_lan.errors import AuthError, BambuError, ConfigError, ConnectError, TrustError
from bambu_lan.protocol.camera_wire import (
    DEFAULT_MAX_FRAME,
    FrameDecoder,
    FrameTooLarge,
    login_packet,
)
from bambu_lan.protocol.models import model_from_code, model_from_serial
from bambu_lan.trust import HandshakeCheck, tls12_context

log = logging.getLogger("bambu_lan.camera")

JPEG_PORT = 6000
RTSPS_PORT = 322
CameraKind = Literal["jpeg", "rtsps"]
# Model codes whose camera is the JPEG stream on port 6000 (protocol.md §11); the rest: RTSPS.
_JPEG_MODELS = frozenset({"C11", "C12", "N1", "N2S", "N9"})


def camera_kind(serial: str = "", model_code: str = "") -> CameraKind | None:
    """Which camera a printer has, from its model code or else its serial; None if unknown."""
    model = model_from_code(model_code) if model_code else None
    if model is None and serial:
        model = model_from_serial(serial)
    if model is None:
        return None
    return "jpeg" if model.code in _JPEG_MODELS else "rtsps"


# --- errors -------------------------------------------------------------------------------


class CameraError(ConnectError):
    """The camera could not be reached or its stream broke."""


class CameraAuthError(AuthError, CameraError):
    """The camera closed the connection right after the login: the access code is wrong."""


class CameraUnavailable(CameraError):
    """Nothing usable answers: the port is closed, the printer has no such camera, or the
    live view is switched off."""


class CameraTimeout(CameraError, TimeoutError):
    """No frame within the time allowed."""


# --- values -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CameraFrame:
    """One JPEG from the camera and when its last byte arrived."""

    jpeg: bytes = field(repr=False)
    received_at: float  # time.time()
    monotonic: float  # time.monotonic(), to measure ages and latency
    index: int  # 1, 2, 3, … over the life of the shared connection

    @property
    def size(self) -> int:
        return len(self.jpeg)

    def age(self) -> float:
        return time.monotonic() - self.monotonic


class CameraEventKind(enum.StrEnum):
    CONNECTED = "camera_connected"  # the first frame of a connection arrived
    DISCONNECTED = "camera_disconnected"  # the connection ended; a reconnect follows
    SILENT = "camera_silent"  # no frame for silence_timeout seconds: reconnecting
    FRAME_DROPPED = "camera_frame_dropped"  # a payload that was not a whole JPEG
    FRAME_TOO_LARGE = "camera_frame_too_large"  # a hostile length: refused, reconnecting
    TRUNCATED = "camera_truncated"  # the connection ended in the middle of a frame
    AUTH_FAILED = "camera_auth_failed"  # the access code was refused
    FAILED = "camera_failed"  # gave up for good (the printer's identity is wrong)
    DECODER_FAILED = "camera_decoder_failed"  # X1/P2S/H2: ffmpeg stopped; restarting it


@dataclass(frozen=True, slots=True)
class CameraEvent:
    kind: CameraEventKind
    serial: str
    message: str  # one line for a person (never the access code)
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "serial": self.serial, "message": self.message}


@dataclass(slots=True)
class CameraStats:
    connects: int = 0  # connections that got at least one frame
    attempts: int = 0
    frames: int = 0
    not_jpeg: int = 0
    too_large: int = 0
    truncated: int = 0
    silences: int = 0
    auth_failures: int = 0
    bytes: int = 0
    decoder_starts: int = 0  # X1/P2S/H2: ffmpeg processes started
    decoder_failures: int = 0  # X1/P2S/H2: ffmpeg processes that stopped on their own

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class CameraOptions:
    silence_timeout: float = 10.0  # no frame for this long: reconnect
    connect_timeout: float = 10.0  # TCP + TLS
    max_frame: int = DEFAULT_MAX_FRAME  # larger announced frames are refused, not buffered
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    auth_retry: float = 60.0  # a refused code is retried this slowly (it may be re-typed)
    queue_size: int = 3  # frames kept per slow consumer; the oldest are dropped beyond
    # X1/P2S/H2 only (their H.264 is turned into JPEGs by ffmpeg):
    fps: float = 5.0  # JPEGs per second at most
    jpeg_quality: int = 5  # ffmpeg's -q:v: 2 (best, largest) to 31 (smallest)
    # Seconds the shared connection stays open after its last consumer left (None: 0 on
    # A1/P1, 10 s on X1/P2S/H2, whose start costs an RTSP session and an ffmpeg).
    idle_linger: float | None = None

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps must be above 0, not {self.fps}")
        if not 2 <= self.jpeg_quality <= 31:
            raise ValueError(f"jpeg_quality must be 2 to 31, not {self.jpeg_quality}")


# --- the one upstream connection per printer ------------------------------------------------


class CameraStream:
    """The shared connection to one printer's port-6000 camera (one per process)."""

    def __init__(self, cfg: PrinterConfig, port: int, options: CameraOptions) -> None:
        self.cfg = cfg
        self.port = port
        self.options = options
        self.loop = asyncio.get_running_loop()
        self.stats = CameraStats()
        self.latest: CameraFrame | None = None
        self.error: BambuError | None = None  # the last failure (None while streaming)
        self.streaming = False
        self.frame_subs: set[Subscriber[CameraFrame]] = set()
        self.event_subs: set[Subscriber[CameraEvent]] = set()
        self.first_outcome: asyncio.Future[BambuError | None] = self.loop.create_future()
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    @property
    def label(self) -> str:
        return f"the camera of {self.cfg.label} ({self.cfg.host}:{self.port})"

    @property
    def users(self) -> int:
        return len(self.frame_subs) + len(self.event_subs)

    # -- consumers (called on any loop; scheduled onto ours) --

    def subscribe_frames(self) -> Subscriber[CameraFrame]:
        sub: Subscriber[CameraFrame] = Subscriber(self.options.queue_size)
        self._on_loop(self.frame_subs.add, sub)
        return sub

    def subscribe_events(self) -> Subscriber[CameraEvent]:
        sub: Subscriber[CameraEvent] = Subscriber(1000)
        self._on_loop(self.event_subs.add, sub)
        return sub

    def unsubscribe(self, sub: Subscriber[Any] | None) -> None:
        self._on_loop(self._drop, sub)

    def _drop(self, sub: Subscriber[Any] | None) -> None:
        if sub is not None:
            self.frame_subs.discard(sub)
            self.event_subs.discard(sub)
        self._close_if_unused()

    def _on_loop(self, fn: Callable[[Any], None], arg: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            fn(arg)
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, arg)

    # -- lifecycle --

    def start(self) -> None:
        if self._task is None and not self.closed:
            self._task = self.loop.create_task(
                self._run(), name=f"bambu-lan-camera-{self.cfg.serial}"
            )

    def _close_if_unused(self) -> None:
        if self.users == 0 and not self.closed:
            self.close()

    def release(self) -> None:
        """Close at once if no consumer is left (without waiting for any linger)."""
        self._on_loop(self._release, None)

    def _release(self, _: object) -> None:
        if self.users == 0 and not self.closed:
            self.close()

    def close(self) -> None:
        self.closed = True
        _forget(self)
        if self._task is not None:
            self._task.cancel()
        self._end(None)

    def _end(self, error: BambuError | None) -> None:
        for sub in list(self.frame_subs) + list(self.event_subs):
            sub.deliver(End(error), self.loop)
        if not self.first_outcome.done():
            self.first_outcome.set_result(error or CameraError(f"{self.label} was closed"))

    # -- events --

    def _emit(self, kind: CameraEventKind, message: str, level: int = logging.INFO) -> None:
        log.log(level, "%s", message)
        event = CameraEvent(kind, self.cfg.serial, message)
        for sub in list(self.event_subs):
            sub.deliver(event, self.loop)

    def _publish(self, frame: CameraFrame) -> None:
        self.latest = frame
        for sub in self.frame_subs:
            sub.deliver(frame, self.loop)

    # -- the connection loop --

    async def _run(self) -> None:
        backoff = self.options.backoff_initial
        while not self.closed:
            frames_before = self.stats.frames
            try:
                await self._stream_once()
                error: BambuError | None = None
            except TrustError as exc:
                self._fail_for_good(exc)
                return
            except BambuError as exc:
                error = exc
            except (OSError, ssl.SSLError) as exc:  # anything the mapping below missed
                error = CameraError(f"{self.label}: {exc}")
            except Exception as exc:
                # A bug, or printer input no check caught: without this the task ended
                # silently and every consumer waited forever. Said once, then closed.
                log.debug(
                    "%s: the camera stopped on an unexpected error", self.label, exc_info=True
                )
                self._fail_for_good(
                    CameraError(
                        f"{self.label} stopped on an unexpected error "
                        f"({type(exc).__name__}: {redact(str(exc), self.cfg.access_code)})",
                        hint="run with --debug for the details, and report it",
                    )
                )
                return
            self.streaming = False
            if error is None:
                error = CameraError(f"{self.label} closed the stream")
            self.error = error
            if not self.first_outcome.done():
                self.first_outcome.set_result(error)
            if self.stats.frames > frames_before and isinstance(error, CameraError):
                backoff = self.options.backoff_initial  # it worked until now: retry soon
            delay = self.options.auth_retry if isinstance(error, AuthError) else backoff
            backoff = min(backoff * 2, self.options.backoff_max)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))

    def _fail_for_good(self, exc: BambuError) -> None:
        self.error = exc
        self.streaming = False
        self._emit(CameraEventKind.FAILED, f"{self.label}: {exc}", logging.ERROR)
        self.closed = True
        _forget(self)
        self._end(exc)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        cfg = self.cfg
        check = HandshakeCheck(cfg.serial, cfg.trust, cfg.host)
        ctx = tls12_context(cfg.trust.ca_files() if cfg.trust.mode == "ca" else ())
        self.stats.attempts += 1
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    cfg.host, self.port, ssl=ctx, server_hostname=cfg.serial
                )
        except ssl.SSLCertVerificationError as exc:
            raise check.verification_failed(exc) from None
        except ConnectionRefusedError:
            raise CameraUnavailable(
                f"{self.label} refused the connection: nothing listens on port {self.port}",
                hint="only the A1, A1 mini, P1P and P1S stream JPEGs on port 6000; X1, P2S "
                "and H2 printers use RTSPS (`bambu-lan camera url`); check --camera-port",
            ) from None
        except TimeoutError:
            raise CameraUnavailable(
                f"{self.label} did not answer within {self.options.connect_timeout:g} s",
                hint="check the address, and that the printer is on and on the network",
            ) from None
        except ssl.SSLError as exc:
            raise CameraError(
                f"TLS handshake with {self.label} failed: {exc.reason or exc}",
                hint="is this port a printer's camera? check --camera-port",
            ) from None
        except OSError as exc:
            raise CameraUnavailable(f"cannot reach {self.label}: {exc.strerror or exc}") from None
        ssl_object = writer.get_extra_info("ssl_object")
        try:
            check.verify(ssl_object)  # before the access code leaves this machine
        except TrustError:
            writer.transport.abort()
            raise
        return reader, writer

    async def _stream_once(self) -> None:
        reader, writer = await self._open()
        decoder = FrameDecoder(self.options.max_frame)
        stats = self.stats
        silence = self.options.silence_timeout
        got_frame = False
        try:
            writer.write(login_packet(self.cfg.access_code.reveal()))
            last_frame = time.monotonic()
            while True:
                remaining = last_frame + silence - time.monotonic()
                try:
                    async with asyncio.timeout(max(remaining, 0.0)):
                        data = await reader.read(262144)
                except TimeoutError:
                    stats.silences += 1
                    message = f"{self.label} sent no frame for {silence:g} s: reconnecting"
                    self._emit(CameraEventKind.SILENT, message)
                    raise CameraTimeout(message) from None
                if not data:
                    raise self._eof_error(decoder, got_frame)
                before = decoder.stats.not_jpeg
                try:
                    payloads = decoder.feed(data)
                except FrameTooLarge as exc:
                    stats.too_large += 1
                    message = f"{self.label}: {exc}; refused, reconnecting"
                    self._emit(CameraEventKind.FRAME_TOO_LARGE, message)
                    raise CameraError(message) from None
                finally:
                    stats.bytes += len(data)
                if decoder.stats.not_jpeg != before:
                    stats.not_jpeg += decoder.stats.not_jpeg - before
                    self._emit(
                        CameraEventKind.FRAME_DROPPED,
                        f"{self.label} sent a frame that is not a whole JPEG; dropped "
                        f"({stats.not_jpeg} so far)",
                    )
                if not payloads:
                    continue
                now, wall = time.monotonic(), time.time()
                last_frame = now
                if not got_frame:
                    got_frame = True
                    stats.connects += 1
                    self.streaming = True
                    self.error = None
                    self._emit(CameraEventKind.CONNECTED, f"{self.label}: streaming", logging.INFO)
                    if not self.first_outcome.done():
                        self.first_outcome.set_result(None)
                for payload in payloads:
                    stats.frames += 1
                    self._publish(CameraFrame(payload, wall, now, stats.frames))
        finally:
            writer.transport.abort()

    def _eof_error(self, decoder: FrameDecoder, got_frame: bool) -> CameraError:
        if not got_frame and decoder.stats.bytes == 0:
            self.stats.auth_failures += 1
            message = (
                f"{self.label} closed the connection right after the login: the access code "
                "is wrong (or the camera takes no more viewers)"
            )
            self._emit(CameraEventKind.AUTH_FAILED, message)
            return CameraAuthError(message)
        if decoder.in_frame:
            self.stats.truncated += 1
            message = f"{self.label} closed the connection in the middle of a frame"
            self._emit(CameraEventKind.TRUNCATED, message + ": reconnecting")
            return CameraError(message)
        message = f"{self.label} closed the connection"
        self._emit(CameraEventKind.DISCONNECTED, message + ": reconnecting")
        return CameraError(message)


# The last consumer to close its subscription closes the upstream connection.
FrameSubscription = Subscription[CameraFrame, CameraStream]
EventSubscription = Subscription[CameraEvent, CameraStream]

# One upstream per printer per process (any loop, any thread).
_STREAMS: dict[tuple[str, int, str], CameraStream] = {}
_STREAMS_LOCK = threading.Lock()


def _forget(stream: CameraStream) -> None:
    with _STREAMS_LOCK:
        key = (stream.cfg.host, stream.port, stream.cfg.serial)
        if _STREAMS.get(key) is stream:
            del _STREAMS[key]


def _acquire(
    cfg: PrinterConfig,
    port: int,
    options: CameraOptions,
    factory: Callable[[PrinterConfig, int, CameraOptions], CameraStream] = CameraStream,
) -> CameraStream:
    key = (cfg.host, port, cfg.serial)
    with _STREAMS_LOCK:
        stream = _STREAMS.get(key)
        if stream is not None and (stream.closed or stream.loop.is_closed()):
            stream = None
        if stream is not None and stream.cfg.access_code != cfg.access_code:
            raise ConfigError(
                f"the camera of {cfg.label} is already open in this process with a "
                "different access code"
            )
        if stream is None:
            stream = factory(cfg, port, options)
            _STREAMS[key] = stream
    if stream.loop is asyncio.get_running_loop():
        stream.start()
    else:
        stream.loop.call_soon_threadsafe(stream.start)
    return stream


def shared_stream(cfg: PrinterConfig, port: int) -> CameraStream | None:
    """The open shared stream of this camera in this process, if any."""
    with _STREAMS_LOCK:
        stream = _STREAMS.get((cfg.host, port, cfg.serial))
    if stream is None or stream.closed or stream.loop.is_closed():
        return None
    return stream


def open_streams() -> int:
    """How many upstream camera connections this process holds (for tests and metrics)."""
    with _STREAMS_LOCK:
        return sum(not s.closed and not s.loop.is_closed() for s in _STREAMS.values())


# --- the public handle ------------------------------------------------------------------------


class Camera:
    """The camera of one printer. Cheap to create: the connection opens with the first
    consumer (``frames()``, ``events()``, ``snapshot()``) and closes with the last.

    ``port``: default ``config.camera_port``, else 6000 (JPEG) or 322 (RTSPS).
    """

    def __init__(
        self,
        config: PrinterConfig,
        *,
        port: int | None = None,
        options: CameraOptions | None = None,
        kind: CameraKind | None = None,
    ) -> None:
        self.config = config
        self.kind: CameraKind | None = kind or camera_kind(config.serial)
        default = RTSPS_PORT if self.kind == "rtsps" else JPEG_PORT
        self.port = port or config.camera_port or default
        self.options = options or CameraOptions()

    def __repr__(self) -> str:
        c = self.config
        return f"Camera(host={c.host!r}, serial={c.serial!r}, port={self.port}, kind={self.kind})"

    def _stream(self) -> CameraStream:
        if self.kind == "rtsps":
            from bambu_lan.camera_rtsp_stream import RtspsCameraStream, require_ffmpeg

            require_ffmpeg()  # at once, with what to install: not on every reconnect
            return _acquire(self.config, self.port, self.options, RtspsCameraStream)
        return _acquire(self.config, self.port, self.options)

    async def wait_until_streaming(
        self, stream: CameraStream | None = None, timeout: float | None = None
    ) -> None:
        """Wait for the first frame of the shared connection, or raise its first failure."""
        stream = stream or self._stream()
        if stream.streaming:
            return
        future = stream.first_outcome
        if stream.loop is not asyncio.get_running_loop():
            future = asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(_shielded(future), stream.loop)
            )
        try:
            async with asyncio.timeout(timeout or self._first_timeout()):
                error = await asyncio.shield(future)
        except TimeoutError:
            raise self._timeout_error(stream) from None
        if error is not None:
            raise error

    def frames(self) -> FrameSubscription:
        """Every frame from now on, as ``CameraFrame``s: ``async for frame in
        camera.frames()``.

        The first step waits for the first frame or the first failure and raises it
        (``CameraAuthError``, ``TrustError``, ``CameraUnavailable``…); after that, drops and
        silences are reconnected and told in ``events()``. A slow reader gets the newest
        frames (``options.queue_size`` of them are kept).

        X1/P2S/H2: JPEGs ffmpeg makes of the RTSPS video, at most ``options.fps`` a second;
        ``CameraUnavailable`` at once when ffmpeg is not installed.
        """
        stream = self._stream()
        return Subscription(stream, stream.subscribe_frames(), self.wait_until_streaming)

    def events(self) -> EventSubscription:
        """Camera events (streaming, silent, dropped frames, …) from now on; keeps the
        connection open like ``frames()`` does."""
        stream = self._stream()
        return Subscription(stream, stream.subscribe_events())

    async def snapshot(self, *, timeout: float | None = None, max_age: float = 2.0) -> CameraFrame:
        """The newest frame if it is at most ``max_age`` seconds old, else the next one.

        X1/P2S/H2: from the shared stream while one is open (``frames()`` consumers, or
        ``camera serve``); otherwise one RTSP session of its own and ffmpeg decoding one
        picture, closed at once.

        Raises the failure that keeps frames from coming (see ``frames()``), or
        ``CameraTimeout``.
        """
        if self.kind == "rtsps" and shared_stream(self.config, self.port) is None:
            # Nobody streams: one RTSP session for one picture, without a lasting ffmpeg.
            from bambu_lan.camera_rtsp import rtsps_snapshot

            return await rtsps_snapshot(self.config, self.port, timeout=timeout or 20.0)
        limit = timeout or self._first_timeout()
        with self.frames() as frames:  # holds the shared connection while we wait
            stream = frames.stream
            latest = stream.latest if stream is not None else None
            if latest is not None and latest.age() <= max_age:
                return latest
            try:
                async with asyncio.timeout(limit):
                    return await anext(frames)
            except TimeoutError:
                raise self._timeout_error(stream) from None
            except StopAsyncIteration:
                raise CameraError(f"the camera of {self.config.label} was closed") from None

    def _first_timeout(self) -> float:
        return self.options.connect_timeout + self.options.silence_timeout + 1.0

    def _timeout_error(self, stream: CameraStream | None) -> BambuError:
        if stream is not None and stream.error is not None:
            return stream.error
        return CameraTimeout(
            f"no frame from the camera of {self.config.label} in time",
            hint="run `bambu-lan doctor` to check the printer; the camera may be switched off",
        )

    def rtsp_url(self, *, masked: bool = True) -> str:
        """``rtsps://bblp:CODE@HOST:322/streaming/live/1`` (the code as ******** by default)."""
        from bambu_lan.camera_rtsp import rtsp_url

        return rtsp_url(self.config, self.port if self.kind == "rtsps" else RTSPS_PORT, masked)

    @property
    def stats(self) -> CameraStats | None:
        """Counters of the shared connection, while one is open."""
        with _STREAMS_LOCK:
            stream = _STREAMS.get((self.config.host, self.port, self.config.serial))
        return stream.stats if stream is not None else None


async def _shielded(future: asyncio.Future[BambuError | None]) -> BambuError | None:
    return await asyncio.shield(future)
