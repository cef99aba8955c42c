"""One log line per event: the daemon's journal."""

from __future__ import annotations

import logging

from bambu_lan.protocol.events import Event, EventKind
from bambu_lan.serve.hub import Sink, WatchedPrinter
from bambu_lan.serve.text import safe

log = logging.getLogger("bambu_lan.serve.events")

_WARN = frozenset({EventKind.DISCONNECTED, EventKind.JOB_FAILED, EventKind.HMS_RAISED})


class LogSink(Sink):
    """``<name> (<serial>) <event>: <message>``, printer-provided text made terminal-safe."""

    name = "log"

    def printer_added(self, printer: WatchedPrinter) -> None:
        log.info(
            "%s (%s) watching %s:%d",
            safe(printer.name),
            printer.serial,
            printer.config.host,
            printer.config.port,
        )

    def printer_removed(self, printer: WatchedPrinter) -> None:
        log.info("%s (%s) no longer watched", safe(printer.name), printer.serial)

    def event(self, printer: WatchedPrinter, event: Event) -> None:
        level = logging.WARNING if event.kind in _WARN else logging.INFO
        log.log(
            level,
            "%s (%s) %s: %s",
            safe(printer.name),
            printer.serial,
            event.kind.value,
            safe(event.message),
        )
