"""``SyncPrinter``: the same printer, for plain scripts without asyncio.

::

    with SyncPrinter("192.168.1.50", "03919A3B1200123", "12345678") as printer:
        state = printer.wait_for_state()
        print(state.job.state, state.temperatures.nozzle)
        for event in printer.events(timeout=60):
            print(event.message)

All ``SyncPrinter`` objects of a process share one background event-loop thread, and so share
one MQTT session per printer, like ``Printer`` handles in one loop.
"""

from __future__ import annotations

import asyncio
import atexit
import queue
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bambu_lan.config import DEFAULT_FTPS_PORT, PrinterConfig, Secret
from bambu_lan.printer import CommandResult, Printer, PrinterOptions, Update
from bambu_lan.protocol.commands import Command
from bambu_lan.protocol.events import Event
from bambu_lan.protocol.state import PrinterInfo, PrinterState
from bambu_lan.protocol.topics import DEFAULT_PORT
from bambu_lan.session import ConnectionStatus

if TYPE_CHECKING:
    from bambu_lan.files import Progress
    from bambu_lan.print_job import PrintOptions, PrintStarted

T = TypeVar("T")


class _LoopThread:
    """One daemon thread running an event loop for every blocking handle in the process."""

    _lock = threading.Lock()
    _instance: _LoopThread | None = None

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._main, args=(ready,), name="bambu-lan loop", daemon=True
        )
        self.thread.start()
        ready.wait()

    def _main(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    @classmethod
    def get(cls) -> _LoopThread:
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls()
                atexit.register(cls._instance.stop)
            return cls._instance

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


class SyncPrinter:
    """A blocking ``Printer``: same capabilities, for scripts. Use it as a context manager."""

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
        self._setup(
            Printer(
                host,
                serial,
                access_code,
                port=port,
                ca_file=ca_file,
                ca_dir=ca_dir,
                known_printers=known_printers,
                insecure=insecure,
                options=options,
                name=name,
                ftps_port=ftps_port,
            )
        )

    @classmethod
    def from_config(cls, cfg: PrinterConfig, options: PrinterOptions | None = None) -> SyncPrinter:
        printer = cls.__new__(cls)
        printer._setup(Printer.from_config(cfg, options))  # noqa: SLF001 - own set-up
        return printer

    def _setup(self, printer: Printer) -> None:
        self._printer = printer
        self._runner = _LoopThread.get()
        self._events_started = False
        self._events_queue: queue.Queue[Any] = queue.Queue()
        self._pumps: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"Sync{self._printer!r}"

    def __enter__(self) -> SyncPrinter:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def start(self) -> None:
        """Start connecting in the background (no waiting; see ``connect``)."""

        async def start() -> None:
            self._printer.start()

        self._run(start())

    def connect(self, timeout: float | None = None) -> None:
        """Connect; raises AuthError, TrustError or ConnectError when the printer says no."""
        self._run(self._printer.connect(timeout))

    def close(self) -> None:
        """Disconnect cleanly and stop the event stream."""
        # Closing the printer ends its streams, and with them the pumps and our iterators.
        self._run(self._printer.close())
        self._pumps.clear()

    @property
    def config(self) -> PrinterConfig:
        return self._printer.config

    @property
    def state(self) -> PrinterState | None:
        return self._printer.state

    @property
    def info(self) -> PrinterInfo | None:
        return self._printer.info

    @property
    def status(self) -> ConnectionStatus:
        return self._printer.status

    def wait_for_state(self, timeout: float = 30.0) -> PrinterState:
        return self._run(self._printer.wait_for_state(timeout))

    def refresh(self, timeout: float = 10.0) -> PrinterState:
        return self._run(self._printer.refresh(timeout))

    @property
    def options(self) -> PrinterOptions:
        return self._printer.options

    @property
    def decode_problems(self) -> dict[str, int]:
        """Counts of payloads and values that could not be read, by kind."""
        return self._printer.decode_problems

    def states(self, timeout: float | None = None) -> Iterator[PrinterState]:
        """The snapshots of ``updates()``; a slow reader gets the latest, not every one."""
        items: queue.Queue[Any] = queue.Queue()
        self._start_pump(self._printer.states, items)
        return self._drain(items, timeout)

    def updates(
        self, timeout: float | None = None, *, states: bool = True, events: bool = True
    ) -> Iterator[Update]:
        """``Printer.updates()`` for blocking code: states and events in order, collected
        from this call on (it may come before ``connect()``). The iterator stops after
        ``timeout`` seconds without an update, or when the printer is closed."""
        items: queue.Queue[Any] = queue.Queue()
        self._start_pump(lambda: self._printer.updates(states=states, events=events), items)
        return self._drain(items, timeout)

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """The events of ``updates()``; stops after ``timeout`` s without one, or on close.

        Collecting starts at the first call, so an event that happens before the first
        ``next()`` is not lost; later calls continue the same sequence.
        """
        if not self._events_started:
            self._events_started = True
            self._start_pump(self._printer.events, self._events_queue)
        return self._drain(self._events_queue, timeout)

    def _start_pump(self, make: Callable[[], AsyncIterator[Any]], items: queue.Queue[Any]) -> None:
        async def subscribe() -> None:
            stream = make()  # collecting starts here, on the loop thread

            async def pump() -> None:
                try:
                    async for item in stream:
                        items.put(item)
                finally:
                    items.put(None)

            self._pumps.add(asyncio.get_running_loop().create_task(pump()))

        self._run(subscribe())

    @staticmethod
    def _drain(items: queue.Queue[Any], timeout: float | None) -> Iterator[Any]:
        while True:
            try:
                item = items.get(timeout=timeout)
            except queue.Empty:
                return
            if item is None:
                items.put(None)  # later iterators of the same queue end too
                return
            yield item

    def send(self, command: Command, timeout: float | None = None) -> CommandResult:
        """Send any command; raises CommandRejected / DeveloperModeRequired / CommandTimeout."""
        return self._run(self._printer.send(command, timeout))

    def send_raw(
        self, cls: str, command: str, params: dict[str, Any] | None = None
    ) -> CommandResult:
        return self._run(self._printer.send_raw(cls, command, params))

    def pause(self) -> CommandResult:
        return self._run(self._printer.pause())

    def resume(self) -> CommandResult:
        return self._run(self._printer.resume())

    def stop(self) -> CommandResult:
        return self._run(self._printer.stop())

    def set_speed(self, level: int) -> CommandResult:
        return self._run(self._printer.set_speed(level))

    def set_light(self, on: bool, node: str = "chamber_light") -> CommandResult:
        return self._run(self._printer.set_light(on, node))

    def gcode(self, lines: str | Iterable[str]) -> CommandResult:
        return self._run(self._printer.gcode(lines))

    def print_file(
        self,
        path: str | Path,
        *,
        plate: int | None = None,
        options: PrintOptions | None = None,
        upload: bool = True,
        progress: Progress | None = None,
        start_timeout: float = 60.0,
    ) -> PrintStarted:
        """``Printer.print_file``, blocking (``progress`` is called from the loop thread)."""
        return self._run(
            self._printer.print_file(
                path, plate=plate, options=options, upload=upload, progress=progress,
                start_timeout=start_timeout,
            )
        )  # fmt: skip
