"""Live cards: changes gathered for a second, then one message to every open page.

The source says which printers changed; once per ``interval`` the changed ones are turned into
cards, compared with what the pages already have, and only the fields that differ go out, all
printers in one server-sent event that is encoded once and written to every page. So a card
changes at most once per interval however often its printer reports, and ten open pages cost
ten socket writes per second, not ten renders.

A page that connects (or reconnects, with ``Last-Event-ID``) gets the cards changed since the
tick its HTML was rendered at, so nothing falls between the render and the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from bambu_lan.serve.web import view
from bambu_lan.serve.web.source import DashboardSource

log = logging.getLogger("bambu_lan.serve.web")

_QUEUE = 32  # messages a slow page may lag behind before it is dropped (it reconnects)


class Subscriber:
    """One open page's stream of encoded server-sent events."""

    def __init__(self, serial: str | None) -> None:
        self.serial = serial
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUE)

    def put(self, message: bytes) -> bool:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

    async def messages(self) -> AsyncIterator[bytes]:
        while True:
            message = await self.queue.get()
            if message is None:
                return
            yield message


class LiveCards:
    """The cards every page shows, kept current, and the pages listening for changes."""

    def __init__(self, source: DashboardSource, interval: float = 1.0) -> None:
        self.source = source
        self.interval = interval
        self.tick = 0
        self._cards: dict[str, view.Card] = {}
        self.changed_at: dict[str, int] = {}  # serial -> tick of its last change
        self.subscribers: set[Subscriber] = set()
        self.messages_sent = 0  # events written to pages (for the benchmark)
        self.card_updates = 0  # card patches sent (each counts once, however many pages)
        self._dirty: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._snap: dict[str, int] = {}

    # -- lifecycle --

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.refresh_all()
        self._tasks = [
            loop.create_task(self._watch(), name="web-updates"),
            loop.create_task(self._ticker(), name="web-ticker"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for sub in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
        self.subscribers.clear()

    async def _watch(self) -> None:
        async for serial in self.source.updates():
            self.mark(serial)

    def mark(self, serial: str) -> None:
        """This printer changed: its card goes out with the next flush (a hub's sink calls it)."""
        self._dirty.add(serial)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.subscribers:
                continue  # nobody is looking: the changes wait for the next page (``cards``)
            try:
                self.flush()
            except Exception:  # a bad state must not stop the page for every printer
                log.exception("could not update the dashboard")

    @property
    def cards(self) -> dict[str, view.Card]:
        """Every printer's card, current: changes not yet rendered are rendered first."""
        if self._dirty:
            self.flush()
        return self._cards

    # -- cards --

    def refresh_all(self) -> None:
        """Build every card now (at start, and when printers come and go)."""
        entries = self.source.printers()
        self._cards = {s: view.card(e, self._snap.get(s)) for s, e in entries.items()}
        for serial in self._cards:
            self.changed_at.setdefault(serial, self.tick)

    def bump_snapshot(self, serial: str) -> None:
        """A new camera picture: pages reload the card's image."""
        self._snap[serial] = self._snap.get(serial, 0) + 1
        self._dirty.add(serial)

    def flush(self) -> None:
        """Send the changes gathered since the last flush, as one event."""
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        entries = self.source.printers()
        self.tick += 1
        patches: dict[str, dict[str, Any]] = {}
        for serial in dirty:
            entry = entries.get(serial)
            if entry is None:
                if self._cards.pop(serial, None) is not None:
                    patches[serial] = {"removed": True}
                continue
            new = view.card(entry, self._snap.get(serial))
            patch = view.diff(self._cards.get(serial), new)
            if patch:
                self._cards[serial] = new
                self.changed_at[serial] = self.tick
                patches[serial] = patch
        if not patches:
            return
        self.card_updates += len(patches)
        self._send(patches)

    def _send(self, patches: dict[str, dict[str, Any]]) -> None:
        everything: bytes | None = None
        for sub in list(self.subscribers):
            if sub.serial is None:
                if everything is None:
                    everything = self.encode(patches, with_summary=True)
                message = everything
            elif sub.serial in patches:
                message = self.encode({sub.serial: patches[sub.serial]}, with_summary=False)
            else:
                continue
            if not sub.put(message):
                # Too far behind: end its stream; the browser reconnects and catches up.
                self.subscribers.discard(sub)
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)
            else:
                self.messages_sent += 1

    def encode(self, patches: dict[str, dict[str, Any]], *, with_summary: bool) -> bytes:
        body: dict[str, Any] = {"t": self.tick, "cards": patches}
        if with_summary:
            body["summary"] = view.summary(self._cards.values())
        return b"id: %d\ndata: %s\n\n" % (self.tick, orjson.dumps(body))

    def subscribe(self, serial: str | None, since: int | None) -> Subscriber:
        """A new page's stream; first the cards changed after tick ``since`` (all if None)."""
        if self._dirty:
            self.flush()  # to the pages already open, and so the catch-up below is current
        sub = Subscriber(serial)
        if since is None or since > self.tick:
            since = -1
        wanted = [serial] if serial is not None else list(self._cards)
        catch_up = {
            s: self._cards[s]
            for s in wanted
            if s in self._cards and self.changed_at.get(s, 0) > since
        }
        if catch_up or since == -1:
            sub.put(self.encode(catch_up, with_summary=serial is None))
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
