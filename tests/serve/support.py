"""Helpers for the serve tests: config files for simulated printers, a recording sink."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from bambu_lan.protocol.events import Event, EventKind
from bambu_lan.protocol.state import PrinterState
from bambu_lan.serve.hub import Hub, Sink, WatchedPrinter
from bambu_lan.sim import SimulatedPrinter


def printer_table(name: str, sim: Any) -> str:
    return (
        f"[printers.{name}]\n"
        f'host = "{sim.host}"\n'
        f'serial = "{sim.serial}"\n'
        f'access_code = "{sim.access_code}"\n'
        f"port = {sim.port}\n"
        f'ca_file = "{sim.ca_path}"\n'
    )


def write_config(
    path: Path, printers: dict[str, SimulatedPrinter] | Iterable[tuple[str, Any]], serve: str = ""
) -> Path:
    items = printers.items() if isinstance(printers, dict) else printers
    text = (f"[serve]\n{serve}\n" if serve else "") + "\n".join(
        printer_table(name, sim) for name, sim in items
    )
    path.write_text(text)
    path.chmod(0o600)  # it holds access codes
    return path


class RecordingSink(Sink):
    """Keeps every call, and lets a test await a condition on what it saw."""

    name = "recording"

    def __init__(self) -> None:
        self.states: dict[str, PrinterState] = {}
        self.events: list[Event] = []
        self.added: list[str] = []
        self.removed: list[str] = []
        self.started = False
        self.stopped = False
        self.hub: Hub | None = None
        self._changed = asyncio.Event()

    async def start(self, hub: Hub) -> None:
        self.hub = hub
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def printer_added(self, printer: WatchedPrinter) -> None:
        self.added.append(printer.serial)
        self._changed.set()

    def printer_removed(self, printer: WatchedPrinter) -> None:
        self.removed.append(printer.serial)
        self._changed.set()

    def state(self, printer: WatchedPrinter, state: PrinterState) -> None:
        self.states[printer.serial] = state
        self._changed.set()

    def event(self, printer: WatchedPrinter, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def kinds(self, serial: str) -> list[EventKind]:
        return [e.kind for e in self.events if e.serial == serial]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


def require_tool(name: str, package: str) -> str:
    """The path of an installed program; skip (fail under CI=true) when it is missing."""
    path = shutil.which(name) or (
        next(
            (str(p) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}") if p.exists()),
            None,
        )
        if Path("/usr/lib/postgresql").is_dir()
        else None
    )
    if path is None:
        message = f"{name} is not installed (apt-get install {package}); .ci/run installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
