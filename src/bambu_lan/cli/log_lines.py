"""Library warnings as the CLI's own ``warning: ...`` lines.

The library logs to the ``bambu_lan`` logger and leaves showing it to the application (a
``NullHandler`` keeps Python's last-resort handler away). The CLI is that application: it
shows warnings as one terminal-safe line each (printer-provided text can be in them), with
no traceback; ``--debug`` configures full logging instead, and ``serve`` its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

LIBRARY_LOGGER = "bambu_lan"


class WarningLines(logging.Handler):
    """Each warning (or worse) from the library: one ``warning:`` line on stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.muted: list[str] = []  # loggers whose news the command tells itself

    def emit(self, record: logging.LogRecord) -> None:
        if any(_within(record.name, name) for name in self.muted):
            return
        try:
            import click

            from bambu_lan.text import terminal_safe

            click.echo(f"warning: {terminal_safe(record.getMessage())}", err=True)
        except Exception:  # a logging call must never break the command
            self.handleError(record)


def _within(name: str, parent: str) -> bool:
    return name == parent or name.startswith(parent + ".")


_current: WarningLines | None = None


@contextlib.contextmanager
def warning_lines() -> Iterator[WarningLines]:
    """Show library warnings as ``warning:`` lines while the command runs."""
    global _current  # noqa: PLW0603 - one CLI run at a time per process
    handler = WarningLines()
    logger = logging.getLogger(LIBRARY_LOGGER)
    logger.addHandler(handler)
    previous, _current = _current, handler
    try:
        yield handler
    finally:
        _current = previous
        logger.removeHandler(handler)


def stop_warning_lines() -> None:
    """For a command that configures logging itself (``serve``): its handlers show the
    library's warnings, so they are not shown twice."""
    if _current is not None:
        logging.getLogger(LIBRARY_LOGGER).removeHandler(_current)


@contextlib.contextmanager
def told_by_command(logger_name: str) -> Iterator[None]:
    """While the command tells what ``logger_name`` logs in its own words (camera serve's
    ``camera:`` lines), its records are not repeated as ``warning:`` lines."""
    handler = _current
    if handler is None:
        yield
        return
    handler.muted.append(logger_name)
    try:
        yield
    finally:
        handler.muted.remove(logger_name)
