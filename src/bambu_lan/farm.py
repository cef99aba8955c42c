"""``Farm``: many printers in one event loop, with one merged event stream.

::

    async with Farm(configs) as farm:
        await farm.wait_for_states(timeout=60)
        async for event in farm.events():
            print(event.serial, event.message)

Printers connect in the background: one that is off or refuses us does not hold up the others;
its trouble shows in ``farm.status()`` and as events. One MQTT session per printer per process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from bambu_lan.config import PrinterConfig
from bambu_lan.errors import BambuTimeout, NotConnected
from bambu_lan.printer import Printer, PrinterOptions, UpdateStream, merge_updates
from bambu_lan.protocol.events import Event
from bambu_lan.protocol.state import PrinterState


class Farm:
    """A set of printers watched together."""

    def __init__(
        self, printers: Iterable[PrinterConfig], options: PrinterOptions | None = None
    ) -> None:
        self.options = options or PrinterOptions()
        self.printers: dict[str, Printer] = {}
        for cfg in printers:
            if cfg.serial in self.printers:
                raise ValueError(f"printer {cfg.serial} is listed twice")
            self.printers[cfg.serial] = Printer.from_config(cfg, self.options)
        self._events: UpdateStream | None = None

    async def __aenter__(self) -> Farm:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def start(self) -> None:
        """Start every connection in the background."""
        for printer in self.printers.values():
            printer.start()
        if self._events is None:
            # One buffer for every printer's events: no stream or task per printer.
            self._events = merge_updates(
                self.printers.values(), self.options.event_queue_size * 4, states=False
            )

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.printers.values()))
        if self._events is not None:
            self._events.close()

    def __getitem__(self, serial: str) -> Printer:
        return self.printers[serial]

    def __len__(self) -> int:
        return len(self.printers)

    @property
    def states(self) -> dict[str, PrinterState | None]:
        return {serial: p.state for serial, p in self.printers.items()}

    def status(self) -> dict[str, dict[str, Any]]:
        """Connection health per printer."""
        return {serial: p.status.to_dict() for serial, p in self.printers.items()}

    async def wait_for_states(self, timeout: float = 60.0) -> dict[str, PrinterState]:
        """Wait until every printer has a full state; raises with the stragglers named."""
        results = await asyncio.gather(
            *(p.wait_for_state(timeout) for p in self.printers.values()), return_exceptions=True
        )
        failed = {
            serial: result
            for serial, result in zip(self.printers, results, strict=True)
            if isinstance(result, BaseException)
        }
        if failed:
            names = ", ".join(f"{s} ({e})" for s, e in list(failed.items())[:5])
            more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
            raise BambuTimeout(
                f"{len(failed)} printer(s) without a full state: {names}{more}",
                hint="`bambu-lan doctor --printer NAME` says why one of them is not answering",
            )
        return dict(zip(self.printers, results, strict=True))  # type: ignore[arg-type]

    async def events(self) -> AsyncIterator[Event]:
        """Events of every printer, merged, in arrival order, until close."""
        stream = self._events
        if stream is None:
            raise NotConnected("this Farm is not started", hint="use `async with Farm(...)`")
        while True:
            try:
                update = await anext(stream)
            except StopAsyncIteration:
                return
            if isinstance(update, Event):
                yield update
