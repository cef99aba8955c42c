"""``Printer``: the public asyncio object for one printer.

::

    async with Printer("192.168.1.50", "03919A3B1200123", "12345678") as printer:
        state = await printer.wait_for_state()
        print(state.job.state, state.temperatures.nozzle)
        async for event in printer.events():
            print(event.message)

Every ``Printer`` for the same printer in one event loop shares one MQTT session (the A1 allows
about four, and stale ones linger); the last one closed disconnects it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from bambu_lan.config import DEFAULT_FTPS_PORT, PrinterConfig, Secret
from bambu_lan.errors import (
    BambuError,
    CommandRejected,
    CommandTimeout,
    ConfigError,
    DeveloperModeRequired,
    NotConnected,
)
from bambu_lan.protocol import commands as cmd
from bambu_lan.protocol.commands import Command, Reply, SequenceIds, parse_reply
from bambu_lan.protocol.decode import DecodeStats, decode_payload
from bambu_lan.protocol.events import Event, EventKind, EventTracker
from bambu_lan.protocol.merge import apply_push
from bambu_lan.protocol.state import (
    PrinterInfo,
    PrinterState,
    StateBuilder,
    info_from_version_reply,
)
from bambu_lan.protocol.topics import DEFAULT_PORT
from bambu_lan.session import ConnectionStatus, LinkState, Session, SessionOptions
from bambu_lan.trust import TrustConfig

if TYPE_CHECKING:
    from bambu_lan.camera import Camera
    from bambu_lan.files import Progress, Storage
    from bambu_lan.print_job import PrintOptions, PrintStarted

log = logging.getLogger("bambu_lan.printer")

DEV_MODE_HMS = "HMS_0500_0500_0001_0007"


@dataclass(frozen=True, slots=True)
class PrinterOptions:
    """Behaviour above the connection: commands and the pushall policy."""

    session: SessionOptions = field(default_factory=SessionOptions)
    command_timeout: float = 10.0  # reply (or confirming state) within this
    confirm_timeout: float = 5.0  # after a success reply, wait this long for the state to agree
    pushall_min_interval: float = 3.0  # never ask for a full report more often (P1P: use 300)
    event_queue_size: int = 1000  # per subscriber; the oldest events are dropped beyond it


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A command the printer accepted."""

    command: str
    reply: Reply | None  # None when only the state confirmed it
    confirmed: bool  # the state shows the effect (for commands where that can be seen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "accepted": True,
            "confirmed": self.confirmed,
            "reply": dict(self.reply.body) if self.reply else None,
        }


class _Broadcast:
    """Fan-out of events to subscribers, each with its own bounded queue."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.queues: set[asyncio.Queue[Event | None]] = set()

    def publish(self, event: Event) -> None:
        for queue in self.queues:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()  # a slow reader loses the oldest, never blocks the printer
            queue.put_nowait(event)

    def close(self) -> None:
        for queue in self.queues:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(None)

    def subscribe(self) -> EventSubscription:
        return EventSubscription(self)


class EventSubscription:
    """An async iterator of events that starts collecting when created, not when first
    iterated, so nothing is lost between subscribing and the first ``async for`` step."""

    def __init__(self, source: _Broadcast) -> None:
        self._source = source
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(source.size)
        source.queues.add(self._queue)

    def __aiter__(self) -> EventSubscription:
        return self

    async def __anext__(self) -> Event:
        event = await self._queue.get()
        if event is None:
            self.close()
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        """Stop collecting (also done at the end of the stream and on garbage collection)."""
        self._source.queues.discard(self._queue)

    async def aclose(self) -> None:
        self.close()

    def __del__(self) -> None:
        self._source.queues.discard(self._queue)


class PrinterConnection:
    """The one connection to a printer that every ``Printer`` handle in this loop shares."""

    def __init__(self, cfg: PrinterConfig, options: PrinterOptions) -> None:
        self.cfg = cfg
        self.options = options
        self.stats = DecodeStats(cfg.label)
        self.builder = StateBuilder(cfg.serial, self.stats)
        self.tracker = EventTracker(cfg.serial)
        self.raw: dict[str, Any] = {}
        self.state: PrinterState | None = None
        self.info: PrinterInfo | None = None
        self.broadcast = _Broadcast(options.event_queue_size)
        self.seq = SequenceIds()
        self.pending: dict[tuple[str, str], asyncio.Future[Reply]] = {}
        self.users = 0
        self._changed = asyncio.Condition()
        self._waiters = 0  # tasks waiting on _changed: no wake-up work when nobody waits
        self._full_seen = asyncio.Event()
        self._first_outcome: asyncio.Future[BambuError | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._last_pushall = -1e9
        self._was_connected = False
        self.session = Session(
            cfg,
            options=options.session,
            on_payload=self._on_payload,
            on_connected=self._on_connected,
            on_status=self._on_status,
            on_silence=self._on_silence,
        )

    @property
    def status(self) -> ConnectionStatus:
        return self.session.status

    # -- session callbacks --

    async def _on_connected(self) -> None:
        # After every (re)connect: the version, then one full report (rule 5).
        self._publish(cmd.get_version())
        self.request_full_report(force=True)

    async def _on_silence(self) -> None:
        self._publish(cmd.start_pushing())
        self.request_full_report(force=True)

    def _on_status(self, status: ConnectionStatus, error: BambuError | None) -> None:
        if not self._first_outcome.done():
            if status.state is LinkState.CONNECTED:
                self._first_outcome.set_result(None)
            elif error is not None and status.state in (LinkState.DISCONNECTED, LinkState.FAILED):
                self._first_outcome.set_result(error)
        if status.state is LinkState.CONNECTED:
            self._was_connected = True
            self._emit(
                Event(EventKind.CONNECTED, self.cfg.serial, f"connected to {self.cfg.label}")
            )
        elif status.state in (LinkState.DISCONNECTED, LinkState.FAILED) and self._was_connected:
            self._was_connected = False
            reason = status.last_error or "connection lost"
            self._emit(
                Event(
                    EventKind.DISCONNECTED,
                    self.cfg.serial,
                    f"disconnected from {self.cfg.label}: {reason}",
                    {"reason": reason},
                )
            )
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(NotConnected(f"connection lost: {reason}"))
        if status.state is LinkState.FAILED:
            self._wake()

    def _on_payload(self, payload: bytes) -> None:
        obj = decode_payload(payload, self.stats)
        if obj is None:
            return
        for cls, body in obj.items():
            if not isinstance(body, dict):
                self.stats.record("not_object", repr(body).encode()[:60])
                continue
            if cls == "print" and body.get("command") == "push_status":
                self._merge(body)
            elif (reply := parse_reply(cls, body)) is not None:
                self._reply(reply)
            elif cls == "print" and "gcode_state" in body:
                self._merge(body)  # X1-style pushes may omit "command"

    def _merge(self, body: dict[str, Any]) -> None:
        self.raw, full = apply_push(self.raw, body)
        if full:
            self._full_seen.set()
        complete = self._full_seen.is_set()
        changed = None if full else body.keys()
        state = self.builder.build(self.raw, changed, complete)
        self.state = state
        for event in self.tracker.update(state):
            self._emit(event)
        self._wake()

    def _reply(self, reply: Reply) -> None:
        if reply.cls == "info" and reply.command == "get_version" and reply.ok is not False:
            self.info = info_from_version_reply(reply.body, self.cfg.serial)
            self.builder.set_info(self.info)
            if self.raw:
                self.state = self.builder.build(self.raw, None, self._full_seen.is_set())
                self._wake()
        future = self.pending.get((reply.cls, reply.sequence_id))
        if future is not None and not future.done():
            future.set_result(reply)

    def _emit(self, event: Event) -> None:
        self.broadcast.publish(event)

    def _wake(self) -> None:
        if self._waiters:
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- requests --

    def _publish(self, command: Command, sequence_id: str | None = None) -> str:
        seq = sequence_id or self.seq.next()
        self.session.publish(orjson.dumps(command.payload(seq)), qos=command.qos)
        return seq

    def request_full_report(self, *, force: bool = False) -> bool:
        """Send pushall unless one was sent less than ``pushall_min_interval`` ago."""
        now = time.monotonic()
        if not force and now - self._last_pushall < self.options.pushall_min_interval:
            return False
        self._last_pushall = now
        self._publish(cmd.pushall())
        return True

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``predicate()`` is true (re-checked on every report); False on timeout."""
        if predicate():
            return True
        self._waiters += 1
        try:
            async with self._changed:
                async with asyncio.timeout(timeout):
                    await self._changed.wait_for(predicate)
        except TimeoutError:
            return False
        finally:
            self._waiters -= 1
        return True

    async def first_outcome(self) -> BambuError | None:
        return await asyncio.shield(self._first_outcome)

    async def send(self, command: Command, timeout: float | None = None) -> CommandResult:
        timeout = self.options.command_timeout if timeout is None else timeout
        if not self.session.connected:
            raise NotConnected(
                f"not connected to {self.cfg.label}"
                + (f": {self.status.last_error}" if self.status.last_error else ""),
                hint="wait for the connection (wait_for_state) or check it with `bambu-lan doctor`",
            )
        had_dev_hms = self._has_dev_mode_hms()
        seq = self.seq.next()
        key = (command.cls, seq)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.pending[key] = future
        if command.cls == "print" and command.name == "stop":
            self.tracker.note_stop_requested()
        try:
            self._publish(command, seq)
            reply = await self._await_reply(command, future, had_dev_hms, timeout)
        finally:
            self.pending.pop(key, None)
        if reply is not None:
            if reply.developer_mode_required:
                raise DeveloperModeRequired(reply.reason, reply.err_code, command=command.label)
            if reply.ok is False:
                raise CommandRejected(reply.reason, reply.err_code, command=command.label)
        confirmed = False
        if command.confirmed_by is not None:
            check = command.confirmed_by
            confirmed = await self.wait_until(
                lambda: self.state is not None and check(self.state), self.options.confirm_timeout
            )
        return CommandResult(command=command.label, reply=reply, confirmed=confirmed)

    async def _await_reply(
        self, command: Command, future: asyncio.Future[Reply], had_dev_hms: bool, timeout: float
    ) -> Reply | None:
        """The reply; or None when the state alone confirms the command (some firmware does
        not answer pause); DeveloperModeRequired when only the HMS alert says no."""
        confirm = command.confirmed_by

        def settled() -> bool:
            if future.done():
                return True
            if not had_dev_hms and self._has_dev_mode_hms():
                return True
            return confirm is not None and self.state is not None and confirm(self.state)

        waiter = asyncio.get_running_loop().create_task(self.wait_until(settled, timeout))
        try:
            await asyncio.wait((future, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if future.done():
            return future.result()
        if not had_dev_hms and self._has_dev_mode_hms():
            raise DeveloperModeRequired(
                "the printer raised HMS 0500_0500_0001_0007 (MQTT command verification failed)",
                command=command.label,
            )
        if confirm is not None and self.state is not None and confirm(self.state):
            return None
        if not self.session.connected:
            raise NotConnected(f"connection to {self.cfg.label} lost while waiting for a reply")
        raise CommandTimeout(
            f"{command.label}: no reply from {self.cfg.label} within {timeout:g} s",
            hint="the printer may be busy or the command unsupported on this model",
        )

    def _has_dev_mode_hms(self) -> bool:
        return self.state is not None and any(a.code == DEV_MODE_HMS for a in self.state.hms)

    # -- lifecycle --

    def start(self) -> None:
        self.session.start()

    async def close(self) -> None:
        await self.session.close()
        self.broadcast.close()
        await self._notify()


# One connection per printer per event loop (design rule 8).
_REGISTRY: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int, str], PrinterConnection]
] = weakref.WeakKeyDictionary()


def _acquire(cfg: PrinterConfig, options: PrinterOptions) -> PrinterConnection:
    loop = asyncio.get_running_loop()
    conns = _REGISTRY.setdefault(loop, {})
    key = (cfg.host, cfg.port, cfg.serial)
    conn = conns.get(key)
    if conn is not None and conn.cfg.access_code != cfg.access_code:
        raise ConfigError(
            f"{cfg.label} is already connected in this process with a different access code"
        )
    if conn is None:
        conn = PrinterConnection(cfg, options)
        conns[key] = conn
        conn.start()
    conn.users += 1
    return conn


async def _release(conn: PrinterConnection) -> None:
    conn.users -= 1
    if conn.users > 0:
        return
    conns = _REGISTRY.get(asyncio.get_running_loop(), {})
    key = (conn.cfg.host, conn.cfg.port, conn.cfg.serial)
    if conns.get(key) is conn:
        del conns[key]
    await conn.close()


class Printer:
    """One printer: live state, events and commands over the LAN.

    ``async with Printer(...)`` connects and returns once the printer has accepted us (raises
    ``AuthError``, ``TrustError`` or ``ConnectError`` otherwise); it keeps the connection up,
    reconnecting as needed, until the block ends.
    """

    def __init__(
        self,
        host: str,
        serial: str,
        access_code: str | Secret,
        *,
        port: int = DEFAULT_PORT,
        ca_file: str | Path | None = None,
        ca_dir: str | Path | None = None,
        known_printers: str | Path | None = None,
        insecure: bool = False,
        options: PrinterOptions | None = None,
        name: str = "",
        ftps_port: int = DEFAULT_FTPS_PORT,
    ) -> None:
        code = access_code if isinstance(access_code, Secret) else Secret(access_code)
        trust = TrustConfig(
            ca_file=Path(ca_file) if ca_file else None,
            ca_dir=Path(ca_dir) if ca_dir else None,
            known_printers=Path(known_printers) if known_printers else None,
            insecure=insecure,
        )
        self._setup(
            PrinterConfig(
                host=host,
                serial=serial,
                access_code=code,
                port=port,
                trust=trust,
                name=name,
                ftps_port=ftps_port,
            ),
            options,
        )
        if insecure:
            log.warning(
                "%s: insecure mode: the printer's identity is NOT checked; the access code "
                "goes to whoever answers at %s",
                self.config.label,
                host,
            )

    @classmethod
    def from_config(cls, cfg: PrinterConfig, options: PrinterOptions | None = None) -> Printer:
        printer = cls.__new__(cls)
        printer._setup(cfg, options)
        return printer

    def _setup(self, cfg: PrinterConfig, options: PrinterOptions | None) -> None:
        self.config = cfg.validate()
        self.options = options or PrinterOptions()
        self._conn: PrinterConnection | None = None

    def __repr__(self) -> str:
        c = self.config
        return f"Printer(host={c.host!r}, serial={c.serial!r}, port={c.port})"

    # -- lifecycle --

    async def __aenter__(self) -> Printer:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start connecting in the background (no waiting; see ``connect``)."""
        if self._conn is None:
            self._conn = _acquire(self.config, self.options)

    async def connect(self, timeout: float | None = None) -> None:
        """Connect and wait for the first outcome: accepted, or the error that stopped it."""
        self.start()
        conn = self._live()
        if conn.session.connected:
            return
        limit = timeout or (
            self.options.session.connect_timeout + self.options.session.connack_timeout + 5
        )
        try:
            async with asyncio.timeout(limit):
                error = await conn.first_outcome()
        except TimeoutError:
            await self.close()
            raise CommandTimeout(
                f"no connection to {self.config.label} within {limit:g} s"
            ) from None
        if error is not None:
            await self.close()
            raise error

    async def close(self) -> None:
        """Disconnect cleanly (DISCONNECT sent) once no other handle uses the connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await _release(conn)

    def _live(self) -> PrinterConnection:
        if self._conn is None:
            raise NotConnected(
                "this Printer is not started", hint="use `async with Printer(...)` or connect()"
            )
        return self._conn

    # -- state --

    @property
    def state(self) -> PrinterState | None:
        """The latest snapshot (None before the first report)."""
        return self._conn.state if self._conn else None

    @property
    def info(self) -> PrinterInfo | None:
        """Model and firmware, once get_version has answered."""
        return self._conn.info if self._conn else None

    @property
    def camera(self) -> Camera:
        """The printer's camera: ``await printer.camera.snapshot()``, ``async for frame in
        printer.camera.frames()`` (A1/P1); ``rtsp_url()`` (X1/P2S/H2). See bambu_lan.camera."""
        from bambu_lan.camera import Camera, camera_kind

        info = self.info
        return Camera(
            self.config, kind=camera_kind(self.config.serial, info.model_code if info else "")
        )

    @property
    def status(self) -> ConnectionStatus:
        """Connection health: state, attempts, last error, age of the last message."""
        return self._live().status

    @property
    def decode_problems(self) -> dict[str, int]:
        """Counts of payloads and values that could not be read, by kind."""
        return dict(self._live().stats.counts)

    async def wait_for_state(self, timeout: float = 30.0) -> PrinterState:
        """The first complete state (after a full report); raises on failure or timeout."""
        conn = self._live()

        def ready() -> bool:
            return (
                conn.state is not None and conn.state.complete
            ) or conn.status.state is LinkState.FAILED

        if not await conn.wait_until(ready, timeout):
            raise CommandTimeout(
                f"no full report from {self.config.label} within {timeout:g} s"
                + (f" ({conn.status.last_error})" if conn.status.last_error else ""),
                hint="run `bambu-lan doctor` to see where it stops",
            )
        if conn.state is None or not conn.state.complete:
            if conn.status.error is not None:
                raise conn.status.error  # e.g. AuthError after the retries gave up
            raise NotConnected(f"{self.config.label}: {conn.status.last_error}")
        return conn.state

    async def refresh(self, timeout: float = 10.0) -> PrinterState:
        """Ask for a full report (rate-limited) and return the state after it arrives."""
        conn = self._live()
        before = conn.state.updated_at if conn.state else 0.0
        if not conn.request_full_report():
            # Rate-limited: the last full report is recent enough.
            return await self.wait_for_state(timeout)
        if not await conn.wait_until(
            lambda: conn.state is not None and conn.state.updated_at > before, timeout
        ):
            raise CommandTimeout(f"no report from {self.config.label} within {timeout:g} s")
        assert conn.state is not None
        return conn.state

    def events(self) -> EventSubscription:
        """Every event from now on (connected, job started/finished, HMS, ...), until close.

        ``async for event in printer.events(): ...``; collecting starts at this call.
        """
        return self._live().broadcast.subscribe()

    async def states(self) -> AsyncIterator[PrinterState]:
        """Each new snapshot (skipping ones a slow reader missed), until close."""
        conn = self._live()
        last: PrinterState | None = None
        while self._conn is not None:
            await conn.wait_until(
                lambda seen=last: (  # type: ignore[misc]
                    conn.state is not seen or self._conn is None or conn.session.closing
                ),
                None,
            )
            if self._conn is None or conn.session.closing:
                return
            last = conn.state
            if last is not None:
                yield last

    # -- commands --

    async def send(self, command: Command, timeout: float | None = None) -> CommandResult:
        """Send any command; raises CommandRejected / DeveloperModeRequired / CommandTimeout."""
        return await self._live().send(command, timeout)

    async def pause(self) -> CommandResult:
        return await self.send(cmd.pause())

    async def resume(self) -> CommandResult:
        return await self.send(cmd.resume())

    async def stop(self) -> CommandResult:
        return await self.send(cmd.stop())

    async def set_speed(self, level: int) -> CommandResult:
        """1 silent, 2 standard, 3 sport, 4 ludicrous."""
        return await self.send(cmd.print_speed(level))

    async def set_light(self, on: bool, node: str = "chamber_light") -> CommandResult:
        return await self.send(cmd.light(on, node))

    async def gcode(self, lines: str | Iterable[str]) -> CommandResult:
        """Send G-code lines (needs Developer Mode on 2025+ firmware)."""
        return await self.send(cmd.gcode(lines))

    async def send_raw(
        self, cls: str, command: str, params: dict[str, Any] | None = None
    ) -> CommandResult:
        return await self.send(cmd.raw(cls, command, params))

    # -- printing and storage (print_job.py, files.py) --

    async def print_file(
        self,
        path: str | Path,
        *,
        plate: int | None = None,
        options: PrintOptions | None = None,
        upload: bool = True,
        progress: Progress | None = None,
        start_timeout: float = 60.0,
    ) -> PrintStarted:
        """Print a sliced ``.gcode.3mf`` (or a plain ``.gcode``): check it locally, upload it
        over FTPS with ``progress(done, total)``, send ``project_file`` with the printer's
        defaults (``options`` to change them), and return once the printer reports the job
        started. ``upload=False`` prints the copy already on the card (a local file of the
        same name must match its size; else ``path`` is the card path). Raises
        ``PrintFileError`` (bad file, nothing sent), ``FileTransferError``/``StorageFull``,
        ``CommandRejected``/``DeveloperModeRequired``/``PrintFailed`` with the printer's reason.
        """
        import dataclasses

        from bambu_lan.print_job import PrintOptions, print_file

        chosen = options or PrintOptions()
        if plate is not None:
            chosen = dataclasses.replace(chosen, plate=plate)
        return await print_file(
            self, path, options=chosen, upload=upload, progress=progress,
            start_timeout=start_timeout,
        )  # fmt: skip

    def storage(self) -> Storage:
        """The printer's storage (FTPS), same address, access code and trust:
        ``async with printer.storage() as files: await files.entries("/")``."""
        from bambu_lan.files import Storage

        return Storage(self.config)
