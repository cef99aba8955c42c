"""One producer's items fanned out to consumers on any event loop of the process.

A ``Subscriber`` is one consumer's bounded queue on the consumer's own loop (a slow consumer
loses its oldest items, never slows the others); a ``Subscription`` is the consumer's async
iterator over it. ``bambu_lan.camera`` feeds every viewer of a printer's camera this way
from its one upstream connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from bambu_lan.errors import BambuError

T = TypeVar("T")
S = TypeVar("S", bound="Source")


class End:
    """Queue marker: the stream ended, with the error that ended it (if any)."""

    __slots__ = ("error",)

    def __init__(self, error: BambuError | None) -> None:
        self.error = error


class Subscriber(Generic[T]):
    """One consumer's bounded queue, on the consumer's own event loop."""

    def __init__(self, size: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[T | End] = asyncio.Queue(size)

    def _put(self, item: T | End) -> None:
        queue = self.queue
        if queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()  # a slow consumer loses the oldest, never slows the others
        queue.put_nowait(item)

    def deliver(self, item: T | End, loop: asyncio.AbstractEventLoop | None) -> None:
        """Hand ``item`` over; ``loop`` is the caller's running loop (None off any loop)."""
        if self.loop is loop:
            self._put(item)
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._put, item)


class Source(Protocol):
    def unsubscribe(self, sub: Subscriber[Any] | None) -> None: ...


class Subscription(Generic[T, S]):
    """An async iterator that collects from its creation (nothing is lost before the first
    ``async for`` step) and ends when the source stops, raising the error that stopped it.

    ``first_wait``, if given, is awaited by the first step (and its failure raised). Use it in
    ``async with`` (or call ``close()``) to release the source early.
    """

    def __init__(
        self,
        stream: S,
        sub: Subscriber[T],
        first_wait: Callable[[S], Awaitable[None]] | None = None,
    ) -> None:
        self._stream: S | None = stream
        self._sub = sub
        self._first_wait = first_wait

    def __aiter__(self) -> Subscription[T, S]:
        return self

    async def __aenter__(self) -> Subscription[T, S]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __enter__(self) -> Subscription[T, S]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def stream(self) -> S | None:
        """The shared source (None once closed)."""
        return self._stream

    async def __anext__(self) -> T:
        stream = self._stream
        if stream is None:
            raise StopAsyncIteration
        try:
            if self._first_wait is not None:
                first_wait, self._first_wait = self._first_wait, None
                await first_wait(stream)
            item = await self._sub.queue.get()
        except BaseException:
            self.close()
            raise
        if isinstance(item, End):
            self.close()
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """Stop collecting (a pending ``async for`` step ends); the source learns of it."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.unsubscribe(self._sub)
            try:
                running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            self._sub.deliver(End(None), running)

    async def aclose(self) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
