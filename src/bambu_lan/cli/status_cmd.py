"""``bambu-lan status`` (one full state, then exit) and ``bambu-lan watch`` (live)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any

import click

from bambu_lan.cli.options import (
    ConnectionParams,
    connection_options,
    echo_json,
    json_errors,
    json_option,
    run,
)

if TYPE_CHECKING:
    from bambu_lan.cli.view import Snapshot
    from bambu_lan.config import PrinterConfig
    from bambu_lan.printer import Printer
    from bambu_lan.protocol.events import Event
    from bambu_lan.protocol.state import PrinterInfo, PrinterState

INFO_WAIT = 3.0  # seconds to wait for get_version's answer after the full state


def info_dict(info: PrinterInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    data = dataclasses.asdict(info)
    data["modules"] = [dict(m) for m in info.modules]
    return data


def connection_dict(printer: Printer) -> dict[str, Any]:
    """Connection health plus where and how we connected (never the access code)."""
    cfg = printer.config
    data: dict[str, Any] = {
        "host": cfg.host,
        "port": cfg.port,
        "serial": cfg.serial,
        "name": cfg.name or None,
        "trust": cfg.trust.mode,
    }
    with contextlib.suppress(Exception):
        data.update(printer.status.to_dict())
    return data


def state_json(printer: Printer, state: PrinterState) -> dict[str, Any]:
    """``PrinterState.to_dict()`` plus ``connection`` and ``info``."""
    data = state.to_dict()
    data["connection"] = connection_dict(printer)
    data["info"] = info_dict(printer.info)
    return data


async def wait_for_info(printer: Printer, timeout: float) -> None:
    """Give get_version a moment to answer (model and firmware); never fails."""

    def known() -> bool:
        return printer.info is not None

    if known():
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            async for _ in printer.states():
                if known():
                    return


# --- status ---------------------------------------------------------------------------------


@click.command()
@connection_options
@json_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the printer's full state.",
)
@click.option("--plain", is_flag=True, help="One line instead of the panel.")
def status(conn: ConnectionParams, as_json: bool, timeout: float, plain: bool) -> None:
    """Connect, wait for one full state of the printer, print it, and exit.

    \b
    A panel with the job, temperatures, fans, AMS trays and alerts (--plain: one line).
    With --json: one JSON object with the typed fields, "raw" (the merged `print` object,
    keys as the printer names them), "connection" and "info" (model, firmware).

    \b
    Examples:
      bambu-lan status --host 192.168.1.50 --serial 03919A3B1200123 --access-code 12345678
      BAMBU_PRINTER=workshop bambu-lan status --json | jq .job
    """
    with json_errors(as_json):
        cfg = conn.resolve()
        run(_status(cfg, as_json, timeout, plain))


async def _status(cfg: PrinterConfig, as_json: bool, timeout: float, plain: bool) -> None:
    from bambu_lan.printer import Printer

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # --timeout covers everything: a busy or starting printer is waited for until then.
    printer = Printer.from_config(cfg)
    try:
        await printer.connect(timeout=timeout)
        state = await printer.wait_for_state(max(0.1, deadline - loop.time()))
        await wait_for_info(printer, min(INFO_WAIT, max(0.0, deadline - loop.time())))
        state = printer.state or state
        if as_json:
            echo_json(state_json(printer, state))
            return
        from bambu_lan.cli.view import Snapshot, print_once  # the panel only: not for --json

        snap = Snapshot(
            label=cfg.label, state=state, status=printer.status, info=printer.info, events=()
        )
        print_once(snap, plain=plain)
    finally:
        await printer.close()


# --- watch ----------------------------------------------------------------------------------


@click.command()
@connection_options
@json_option
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Stop after this many seconds (default: run until Ctrl-C).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="With --json: at most one state line per this many seconds.",
)
@click.option("--plain", is_flag=True, help="Plain lines even on a terminal.")
@click.option("--max-events", type=click.IntRange(min=1), hidden=True)
def watch(
    *,
    conn: ConnectionParams,
    as_json: bool,
    duration: float | None,
    interval: float,
    plain: bool,
    max_events: int | None,
) -> None:
    """Follow a printer live until Ctrl-C.

    \b
    On a terminal: a panel redrawn in place (job, progress, layers, temperatures, fans,
    AMS trays, HMS alerts, connection health). In a pipe or with --plain: one line per
    change of job state, progress, layer, stage, speed, light, alerts or connection, and one
    line per event. With --json: one JSON object per line, flushed:
      {"type": "state", ...}   the full state (as `status --json`), at most once per --interval
      {"type": "event", ...}   job started/paused/finished/failed/ended, HMS raised/cleared,
                               connected/retrying/disconnected/reconnected/resynced/silent
    A job or alert already there when the watch connects is announced once, with
    "present_at_connect": true. A busy printer (at its session limit, starting up, off) is
    waited for, with a "retrying" line saying why; a dropped connection is shown and the
    watch goes on. Only a wrong access code or a changed certificate stops it.
    """
    with json_errors(as_json):
        cfg = conn.resolve()
        run(
            _watch(
                cfg,
                as_json=as_json,
                duration=duration,
                interval=interval,
                plain=plain,
                max_events=max_events,
            )
        )


async def _watch(
    cfg: PrinterConfig,
    *,
    as_json: bool,
    duration: float | None,
    interval: float,
    plain: bool,
    max_events: int | None,
) -> None:
    from bambu_lan.cli.view import Display, follow, make_display
    from bambu_lan.errors import ConnectError
    from bambu_lan.printer import Printer

    printer = Printer.from_config(cfg)
    # The stream exists before the first connection attempt: retries, the connection, and a
    # job or alert found at connect are all part of what the watch shows.
    updates = printer.updates()
    printer.start()
    display: Display = (
        JsonLines(printer) if as_json else make_display(plain=True if plain else None)
    )
    try:
        result = await follow(
            printer,
            display,
            updates=updates,
            label=cfg.label,
            footer="Ctrl-C to quit",
            duration=duration,
            max_events=max_events,
            state_interval=interval if as_json else 0.0,
        )
    finally:
        await printer.close()
    if result.reason == "failed":
        error = result.error
        if isinstance(error, ConnectError) and not error.retryable:
            raise error
        raise ConnectError(
            f"gave up on {cfg.label}: {error or 'the connection failed'}",
            hint="check the access code and the printer's identity with `bambu-lan doctor`",
        )


class JsonLines:
    """The watch's ``--json`` face: one object per line, flushed. A state line when the
    state or the connection changed (complete states only), an event line per event."""

    def __init__(self, printer: Printer) -> None:
        self._printer = printer
        self._sent: tuple[object, str] | None = None

    def update(self, snap: Snapshot) -> None:
        state, status = snap.state, snap.status
        if state is None or not state.complete:
            return
        key = (state, status.state.value if status else "")
        if key != self._sent:
            self._sent = key
            echo_json({"type": "state", **state_json(self._printer, state)})

    def event(self, event: Event) -> None:
        echo_json({"type": "event", **event.to_dict()})

    def close(self, snap: Snapshot | None) -> None:
        pass
