"""LiveCards without sockets: coalescing, one encoding for every page, slow pages, catch-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import orjson

from bambu_lan.serve.web import view
from bambu_lan.serve.web.live import LiveCards
from bambu_lan.serve.web.source import HistoryQuery, JobRecord, PrinterEntry


class MemorySource:
    """A DashboardSource whose printers are plain entries the test edits."""

    def __init__(self, count: int) -> None:
        self.entries = {
            f"S{i:03d}": PrinterEntry(f"S{i:03d}", f"P{i}", None, False, "connecting")
            for i in range(count)
        }
        self.changes: asyncio.Queue[str] = asyncio.Queue()

    def set(self, serial: str, connection: str) -> None:
        self.entries[serial] = PrinterEntry(
            serial, self.entries[serial].name, None, False, connection
        )
        self.changes.put_nowait(serial)

    def printers(self) -> dict[str, PrinterEntry]:
        return dict(self.entries)

    async def updates(self) -> AsyncIterator[str]:
        while True:
            yield await self.changes.get()

    async def command(self, serial: str, action: str, value: int | bool | None) -> str:
        raise NotImplementedError

    async def history(self, query: HistoryQuery) -> Sequence[JobRecord] | None:
        return None

    async def snapshot(self, serial: str) -> bytes | None:
        return None

    def mjpeg(self, serial: str) -> AsyncIterator[bytes] | None:
        return None


def _decode(message: bytes) -> dict[str, object]:
    data: dict[str, object] = orjson.loads(message.split(b"data: ", 1)[1])
    return data


async def test_many_changes_one_message_one_patch_per_card() -> None:
    source = MemorySource(3)
    live = LiveCards(source, interval=3600)  # flushed by hand below
    live.refresh_all()
    pages = [live.subscribe(None, live.tick) for _ in range(10)]
    for n in range(50):
        source.set("S000", f"offline: try {n}")
        source.set("S001", f"offline: try {n}")
    while not source.changes.empty():
        live.mark(source.changes.get_nowait())
    live.flush()
    messages = [page.queue.get_nowait() for page in pages]
    assert all(page.queue.empty() for page in pages)
    assert all(m is messages[0] for m in messages)  # encoded once, the same bytes to all
    data = _decode(messages[0])  # type: ignore[arg-type]
    assert data["cards"] == {
        "S000": {"conn": "offline: try 49", "cls": "offline", "state": "Offline"},
        "S001": {"conn": "offline: try 49", "cls": "offline", "state": "Offline"},
    }
    assert data["summary"] == {**dict.fromkeys(view.SUMMARY_GROUPS, 0), "offline": 3, "total": 3}
    assert live.card_updates == 2 and live.messages_sent == 10
    # Nothing changed: nothing sent.
    for serial in source.entries:
        live.mark(serial)
    live.flush()
    assert all(page.queue.empty() for page in pages)


async def test_slow_page_is_dropped_and_catches_up_on_reconnect() -> None:
    source = MemorySource(1)
    live = LiveCards(source, interval=3600)
    live.refresh_all()
    slow = live.subscribe(None, live.tick)
    seen_tick = live.tick
    for n in range(40):
        source.set("S000", f"offline: {n}")
        live.mark("S000")
        live.flush()
    assert slow not in live.subscribers
    messages = []
    while (m := slow.queue.get_nowait()) is not None:
        messages.append(m)
    assert len(messages) < 40  # it fell behind and its stream ended
    again = live.subscribe(None, seen_tick)
    data = _decode(again.queue.get_nowait())  # type: ignore[arg-type]
    assert data["cards"]["S000"]["conn"] == "offline: 39"  # type: ignore[index]


async def test_printer_page_gets_only_its_printer() -> None:
    source = MemorySource(2)
    live = LiveCards(source, interval=3600)
    live.refresh_all()
    page = live.subscribe("S001", live.tick)
    source.set("S000", "offline: a")
    live.mark("S000")
    live.flush()
    assert page.queue.empty()
    source.set("S001", "offline: b")
    live.mark("S001")
    live.flush()
    data = _decode(page.queue.get_nowait())  # type: ignore[arg-type]
    assert list(data["cards"]) == ["S001"]  # type: ignore[call-overload]
    assert "summary" not in data


async def test_new_page_gets_only_cards_changed_after_its_tick() -> None:
    source = MemorySource(3)
    live = LiveCards(source, interval=3600)
    live.refresh_all()
    rendered_at = live.tick
    source.set("S002", "offline: gone")
    live.mark("S002")
    live.flush()
    page = live.subscribe(None, rendered_at)
    data = _decode(page.queue.get_nowait())  # type: ignore[arg-type]
    assert list(data["cards"]) == ["S002"]  # type: ignore[call-overload]
    assert live.subscribe(None, live.tick).queue.empty()  # up to date: nothing to send
    everything = _decode(live.subscribe(None, None).queue.get_nowait())  # type: ignore[arg-type]
    assert sorted(everything["cards"]) == ["S000", "S001", "S002"]  # type: ignore[call-overload]
