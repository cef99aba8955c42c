"""``SimThread``: a simulated printer (or fleet) on its own event loop in a daemon thread.

For blocking code — the blocking API's tests, CLI tests, examples, the demo — that needs a
printer to talk to without running an event loop itself::

    with SimThread(SimulatedPrinter(cert_dir=tmp)) as st:
        info = st.target.connection_info()
        st.call(st.target.drop_connections)          # a fault, run on the simulator's loop
        st.run(st.target.broker.wait_for_sessions(0))  # await something from blocking code

Everything that touches the simulator after start must go through ``call`` or ``run``: the
simulator's objects belong to its loop and are not thread-safe.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

__all__ = ["SimThread", "Startable"]

_R = TypeVar("_R")


class Startable(Protocol):
    """What ``SimThread`` can run: ``SimulatedPrinter``, ``SimFleet`` or alike."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


_T = TypeVar("_T", bound=Startable)


class SimThread(Generic[_T]):
    """Runs ``target`` (started on entry, stopped on exit) on an event loop in a thread."""

    def __init__(self, target: _T, *, name: str = "bambu-lan-sim", timeout: float = 60.0) -> None:
        """``timeout``: how long ``start``/``stop`` may take before ``TimeoutError``."""
        self.target = target
        self.timeout = timeout
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()

    def __repr__(self) -> str:
        return f"<SimThread {self.target!r} alive={self.alive}>"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The simulator's event loop (while running)."""
        if self._loop is None:
            raise RuntimeError("the SimThread is not running")
        return self._loop

    @property
    def alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> _T:
        """Start the thread and the target; returns the target once it is listening.

        Re-raises whatever the target's ``start()`` raised (port in use, ...).
        """
        if self._thread is not None:
            raise RuntimeError("a SimThread starts only once")
        self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        self._thread.start()
        try:
            self._started.result(self.timeout)
        except BaseException:
            self._thread.join(self.timeout)
            self._thread = None
            raise
        return self.target

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self.target.start())
            except BaseException as exc:
                self._started.set_exception(exc)
                return
            self._loop = loop
            self._started.set_result(None)
            loop.run_forever()
        finally:
            self._loop = None
            _close_loop(loop)

    def stop(self) -> None:
        """Stop the target, then the loop and the thread. Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self.target.stop(), loop).result(self.timeout)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop may be closing already
                    loop.call_soon_threadsafe(loop.stop)
        thread.join(self.timeout)
        self._thread = None

    def run(self, coro: Coroutine[Any, Any, _R], timeout: float | None = None) -> _R:
        """Run a coroutine on the simulator's loop and return its result (blocking)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., _R], *args: Any, timeout: float | None = None) -> _R:
        """Call ``fn(*args)`` on the simulator's loop and return its result (blocking)."""

        async def invoke() -> _R:
            return fn(*args)

        return self.run(invoke(), timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on the loop, let it finish, and close the loop."""
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
