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
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bambu_lan.config import DEFAULT_FTPS_PORT, PrinterConfig, Secret
from bambu_lan.errors import (
    BambuError,
    BambuTimeout,
    CommandTimeout,
    ConfigError,
    ConnectTimeout,
    NotConnected,
)
from bambu_lan.protocol import commands as cmd
from bambu_lan.protocol.commands import Command, Reply
from bambu_lan.protocol.core import Outcome, Pending, PrinterCore, Step
from bambu_lan.protocol.events import Event
from bambu_lan.protocol.records import Record, record
from bambu_lan.protocol.state import PrinterInfo, PrinterState
from bambu_lan.protocol.topics import DEFAULT_PORT
from bambu_lan.session import ConnectionStatus, LinkState, Session, SessionOptions
from bambu_lan.trust import TrustConfig, warn_insecure

if TYPE_CHECKING:
    from bambu_lan.camera import Camera
    from bambu_lan.files import Progress, Storage
    from bambu_lan.print_job import PrintOptions, PrintStarted

log = logging.getLogger("bambu_lan.printer")


@record(slots=True)  # a frozen dataclass, cheaper to import (records.py)
class PrinterOptions(Record):
    """Behaviour above the connection: commands and the pushall policy."""

    session: SessionOptions = field(default_factory=SessionOptions)
    command_timeout: float = 10.0  # reply (or confirming state) within this
    confirm_timeout: float = 5.0  # after a success reply, wait this long for the state to agree
    pushall_min_interval: float = 3.0  # never ask for a full report more often (P1P: use 300)
    event_queue_size: int = 1000  # per subscriber; the oldest events are dropped beyond it


@record(slots=True)  # a frozen dataclass, cheaper to import (records.py)
class CommandResult(Record):
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


Update = PrinterState | Event
"""One item of ``Printer.updates()``: a new snapshot, or an event."""


class UpdateStream:
    """An async iterator of a printer's updates (states and events) in the order they
    happened. It collects from its creation, not from the first ``async for`` step.

    A reader that falls behind never holds the printer up: consecutive snapshots waiting
    to be read are merged into the latest one (a snapshot is the whole state), and beyond
    ``size`` waiting items the oldest is dropped (counted in ``dropped``). Events are never
    merged. The stream ends when the printer is closed or the connection gives up (a stream
    fed by several printers, see ``merge_updates``: when all of them have).
    """

    __slots__ = (
        "_ended", "_events", "_items", "_size", "_sources", "_states", "_waiter", "dropped"
    )  # fmt: skip

    def __init__(self, size: int, *, states: bool = True, events: bool = True) -> None:
        self._items: deque[Update] = deque()
        self._size = size
        self._states = states
        self._events = events
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._sources: list[_Fanout] = []
        self.dropped = 0

    def _attach(self, source: _Fanout) -> bool:
        """Collect from ``source``; False when it has ended already (nothing will come)."""
        if source.ended:
            return False
        self._sources.append(source)
        source.streams.add(self)
        return True

    def _put(self, item: Update) -> None:
        items = self._items
        if isinstance(item, PrinterState):
            if not self._states:
                return
            if items and isinstance(items[-1], PrinterState):
                items[-1] = item
                return
        elif not self._events:
            return
        items.append(item)
        if len(items) > self._size:
            items.popleft()
            self.dropped += 1
        self._wake()

    def _end(self, source: _Fanout | None = None) -> None:
        """``source`` has ended (None: every source, or the stream never got one)."""
        if source is not None and source in self._sources:
            self._sources.remove(source)
            if self._sources:
                return
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> UpdateStream:
        return self

    async def __anext__(self) -> Update:
        while not self._items:
            if self._ended:
                self.close()
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def close(self) -> None:
        """Stop collecting (also done at the end of the stream); a reader waiting for the
        next item gets the ones already collected, then the end."""
        self._ended = True
        for source in self._sources:
            source.streams.discard(self)
        self._sources.clear()
        self._wake()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> UpdateStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class _Fanout:
    """The streams of one connection."""

    __slots__ = ("ended", "streams")

    def __init__(self) -> None:
        self.streams: set[UpdateStream] = set()
        self.ended = False  # the connection gave up or closed: a stream attached now ends

    def put(self, item: Update) -> None:
        for stream in self.streams:
            stream._put(item)  # noqa: SLF001 - this module's own stream

    def end(self) -> None:
        self.ended = True
        for stream in list(self.streams):
            stream._end(self)  # noqa: SLF001 - this module's own stream
        self.streams.clear()


class PrinterConnection:
    """The one connection to a printer that every ``Printer`` handle in this loop shares:
    the session's I/O around a ``PrinterCore``."""

    __slots__ = (
        "_changed", "_first_outcome", "_futures", "_waiters", "cfg", "core", "fanout", "options",
        "session", "users",
    )  # fmt: skip

    def __init__(self, cfg: PrinterConfig, options: PrinterOptions) -> None:
        self.cfg = cfg
        self.options = options
        self.core = PrinterCore(
            cfg.serial, label=cfg.label, pushall_min_interval=options.pushall_min_interval
        )
        self.fanout = _Fanout()
        self.users = 0
        self._futures: dict[Pending, asyncio.Future[None]] = {}
        self._changed: asyncio.Condition | None = None  # made by the first wait_until
        self._waiters = 0  # tasks waiting on _changed: no wake-up work when nobody waits
        self._first_outcome: asyncio.Future[BambuError | None] = (
            asyncio.get_running_loop().create_future()
        )
        self.session = Session(cfg, self, options=options.session)

    @property
    def status(self) -> ConnectionStatus:
        return self.session.status

    @property
    def state(self) -> PrinterState | None:
        return self.core.state

    @property
    def info(self) -> PrinterInfo | None:
        return self.core.info

    # -- the session's listener: everything goes through the core --

    def on_payload(self, payload: bytes, now: float) -> None:
        self._apply(self.core.feed(payload, now))

    def on_connected(self, now: float) -> None:
        if not self._first_outcome.done():
            self._first_outcome.set_result(None)
        self._apply(self.core.connected(now))

    def on_disconnected(self, now: float, reason: str) -> None:
        self._apply(self.core.disconnected(now, reason))

    def on_attempt_failed(self, now: float, error: BambuError, retry_in: float | None) -> None:
        retryable = getattr(error, "retryable", False)
        if not self._first_outcome.done() and (retry_in is None or not retryable):
            self._first_outcome.set_result(error)  # a wrong code or identity: say so at once
        if retry_in is not None:
            self._apply(self.core.retrying(now, error, retry_in))
        else:
            self.fanout.end()  # gave up: the streams end; status.error says why
            self._wake()

    def on_silence(self, now: float) -> None:
        self._apply(self.core.silence(now))

    def on_closed(self) -> None:
        self.fanout.end()
        self._wake()

    def _apply(self, step: Step) -> None:
        for out in step.outgoing:
            with contextlib.suppress(NotConnected):
                self.session.publish(out.payload, out.qos)
        fanout = self.fanout
        if step.state is not None:
            fanout.put(step.state)
        for event in step.events:
            fanout.put(event)
        for pending in step.settled:
            future = self._futures.pop(pending, None)
            if future is not None and not future.done():
                future.set_result(None)
        if step.state is not None and self._waiters:
            self._wake()

    def _wake(self) -> None:
        if self._waiters:
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        changed = self._changed
        if changed is not None:
            async with changed:
                changed.notify_all()

    # -- requests --

    def request_full_report(self, *, force: bool = False) -> bool:
        """Send pushall unless one was sent less than ``pushall_min_interval`` ago."""
        out = self.core.request_full_report(time.monotonic(), force=force)
        if out is None:
            return False
        self.session.publish(out.payload, out.qos)
        return True

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``predicate()`` is true (re-checked on every report); False on timeout."""
        if predicate():
            return True
        if self._changed is None:
            self._changed = asyncio.Condition()
        changed = self._changed
        self._waiters += 1
        try:
            async with changed:
                async with asyncio.timeout(timeout):
                    await changed.wait_for(predicate)
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
        out, pending = self.core.request(command, time.monotonic())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures[pending] = future
        try:
            self.session.publish(out.payload, out.qos)
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            self.core.cancel(pending)
            raise CommandTimeout(
                f"{command.label}: no reply from {self.cfg.label} within {timeout:g} s",
                hint="the printer may be busy or the command unsupported on this model",
            ) from None
        except BaseException:
            self.core.cancel(pending)
            raise
        finally:
            self._futures.pop(pending, None)
        error = pending.error()
        if error is not None:
            raise error
        confirmed = pending.outcome is Outcome.CONFIRMED
        check = command.confirmed_by
        if not confirmed and check is not None:
            confirmed = await self.wait_until(
                lambda: self.core.state is not None and check(self.core.state),
                self.options.confirm_timeout,
            )
        return CommandResult(command=command.label, reply=pending.reply, confirmed=confirmed)

    # -- lifecycle --

    def start(self) -> None:
        self.session.start()

    async def close(self) -> None:
        await self.session.close()
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

    __slots__ = ("_conn", "_early", "config", "options")

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

    @classmethod
    def from_config(cls, cfg: PrinterConfig, options: PrinterOptions | None = None) -> Printer:
        printer = cls.__new__(cls)
        printer._setup(cfg, options)  # noqa: SLF001 - the constructor's own set-up
        return printer

    def _setup(self, cfg: PrinterConfig, options: PrinterOptions | None) -> None:
        self.config = cfg.validate()
        self.options = options or PrinterOptions()
        if self.config.trust.insecure:
            warn_insecure(self.config.label, self.config.serial, self.config.host)
        self._conn: PrinterConnection | None = None
        self._early: list[UpdateStream] = []  # streams made before start()

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
            conn = self._conn = _acquire(self.config, self.options)
            early, self._early = self._early, []
            for stream in early:
                if not stream._attach(conn.fanout):  # noqa: SLF001 - this module's own stream
                    stream._end()  # noqa: SLF001 - a shared connection that has ended

    async def connect(self, timeout: float | None = None) -> None:
        """Connect, waiting out passing trouble (a printer at its session limit, starting up,
        briefly unreachable: retried with backoff) until ``timeout`` seconds (default: the
        session's connect + CONNACK timeouts + 5 s).

        Raises at once ``AuthError`` (wrong access code), ``TrustError`` (identity) or
        ``HostNotFound``; ``ConnectTimeout`` naming the last failure when the time is up.
        """
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
            last = conn.status.error
            await self.close()
            raise ConnectTimeout(
                f"no connection to {self.config.label} within {limit:g} s"
                + (f" (last: {last})" if last else ""),
                hint=(last.hint if last and last.hint else "run `bambu-lan doctor` to see why"),
            ) from None
        if error is not None:
            await self.close()
            raise error

    async def close(self) -> None:
        """Disconnect cleanly (DISCONNECT sent) once no other handle uses the connection."""
        conn, self._conn = self._conn, None
        early, self._early = self._early, []
        for stream in early:
            stream._end()  # noqa: SLF001 - this module's own stream
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
        return self._conn.core.state if self._conn else None

    @property
    def info(self) -> PrinterInfo | None:
        """Model and firmware, once get_version has answered."""
        return self._conn.core.info if self._conn else None

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
        return dict(self._live().core.stats.counts)

    async def wait_for_state(self, timeout: float = 30.0) -> PrinterState:
        """The first complete state (after a full report); raises on failure or timeout."""
        conn = self._live()

        def ready() -> bool:
            return (
                conn.state is not None and conn.state.complete
            ) or conn.status.state is LinkState.FAILED

        if not await conn.wait_until(ready, timeout):
            raise BambuTimeout(
                f"no full report from {self.config.label} within {timeout:g} s"
                + (f" ({conn.status.last_error})" if conn.status.last_error else ""),
                hint="run `bambu-lan doctor` to see where it stops",
            )
        state = conn.state
        if state is None or not state.complete:
            if conn.status.error is not None:
                raise conn.status.error  # e.g. AuthError after the retries gave up
            raise NotConnected(f"{self.config.label}: {conn.status.last_error}")
        return state

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
            raise BambuTimeout(f"no report from {self.config.label} within {timeout:g} s")
        assert conn.state is not None
        return conn.state

    def updates(self, *, states: bool = True, events: bool = True) -> UpdateStream:
        """Every snapshot and event from now on, in the order they happened, until close.

        ``async for update in printer.updates(): ...``: an update is a ``PrinterState`` or an
        ``Event`` (job, HMS; ``connected``, ``retrying``, ``disconnected``, ``reconnected``,
        ``resynced``). Collecting starts at this call, which may come before ``start()`` or
        ``connect()``: then the stream holds the whole story of the connection. A stream made
        while a state is already known starts with that state.
        """
        stream = UpdateStream(self.options.event_queue_size, states=states, events=events)
        if not self._feed(stream):
            stream._end()  # noqa: SLF001 - the connection has ended: so does the stream
        return stream

    def _feed(self, stream: UpdateStream) -> bool:
        """Put this printer's updates into ``stream`` from now on (before start: from it);
        False when its connection has ended already (gave up, or closed)."""
        conn = self._conn
        if conn is None:
            self._early.append(stream)
            return True
        if stream._states and conn.state is not None:  # noqa: SLF001 - own stream
            stream._put(conn.state)  # noqa: SLF001
        return stream._attach(conn.fanout)  # noqa: SLF001

    def events(self) -> AsyncIterator[Event]:
        """The events of ``updates()`` (connected, job started/finished, HMS, ...)."""
        return _only(self.updates(states=False), Event)

    def states(self) -> AsyncIterator[PrinterState]:
        """The snapshots of ``updates()``; a slow reader gets the latest, not every one."""
        return _only(self.updates(events=False), PrinterState)

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

    # -- printing and storage (print_job.py, the files package) --

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


def merge_updates(
    printers: Iterable[Printer], size: int, *, states: bool = True, events: bool = True
) -> UpdateStream:
    """One stream of the updates of several printers, in arrival order (``Farm.events()``):
    one buffer for all instead of a stream and a task per printer. It ends when every
    printer's connection has ended (closed or given up), or at ``close()``. The printers
    must be started."""
    stream = UpdateStream(size, states=states, events=events)
    live = False
    for printer in printers:
        printer._live()  # noqa: SLF001 - raises NotConnected when not started
        live = printer._feed(stream) or live  # noqa: SLF001 - this module's own class
    if not live:  # every connection has ended already (or there are none)
        stream._end()  # noqa: SLF001
    return stream


_T = TypeVar("_T")


async def _only(stream: UpdateStream, kind: type[_T]) -> AsyncIterator[_T]:
    async with stream:
        async for update in stream:
            if isinstance(update, kind):
                yield update
