"""``bambu-lan status`` (one full state, then exit) and ``bambu-lan watch`` (live)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
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
    from bambu_lan.cli.view import Snapshot, print_once
    from bambu_lan.printer import Printer

    async with Printer.from_config(cfg) as printer:
        state = await printer.wait_for_state(timeout)
        await wait_for_info(printer, INFO_WAIT)
        state = printer.state or state
        if as_json:
            echo_json(state_json(printer, state))
            return
        snap = Snapshot(
            label=cfg.label, state=state, status=printer.status, info=printer.info, events=()
        )
        print_once(snap, plain=plain)


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
      {"type": "event", ...}   job started/paused/finished/failed, HMS raised/cleared,
                               connected/disconnected
    A dropped connection is shown and the watch goes on: the library reconnects by itself.
    """
    with json_errors(as_json):
        cfg = conn.resolve()
        with contextlib.suppress(KeyboardInterrupt):
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
    from bambu_lan.cli.view import follow, make_display
    from bambu_lan.errors import ConnectError
    from bambu_lan.printer import Printer

    async with Printer.from_config(cfg) as printer:
        if as_json:
            reason = await _watch_json(printer, duration, interval, max_events)
        else:
            await printer.wait_for_state()
            display = make_display(plain=True if plain else None)
            result = await follow(
                printer,
                display,
                label=cfg.label,
                footer="Ctrl-C to quit",
                duration=duration,
                max_events=max_events,
            )
            reason = result.reason
        if reason == "failed":
            raise ConnectError(
                f"gave up on {cfg.label}: {printer.status.last_error}",
                hint="check the access code and the printer's identity with `bambu-lan doctor`",
            )


async def _watch_json(
    printer: Printer, duration: float | None, interval: float, max_events: int | None
) -> str:
    """JSON lines until the duration ends, max_events events were printed, or the session
    gave up; returns which."""
    first = await printer.wait_for_state()
    await wait_for_info(printer, INFO_WAIT)
    first = printer.state or first
    changed = asyncio.Event()
    done = asyncio.Event()
    reason = "closed"
    sent_state: PrinterState | None = first
    sent_link = printer.status.state.value
    sent_at = time.monotonic()
    count = 0

    def emit_event(event: Event) -> None:
        echo_json({"type": "event", **event.to_dict()})

    async def events() -> None:
        nonlocal count, reason
        async for event in printer.events():
            emit_event(event)
            changed.set()
            count += 1
            if max_events is not None and count >= max_events:
                reason = "max_events"
                done.set()
                return

    async def states() -> None:
        async for _ in printer.states():
            changed.set()

    async def emit_states() -> None:
        nonlocal sent_state, sent_link, sent_at, reason
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await changed.wait()
            changed.clear()
            delay = sent_at + interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # throttle: the latest state after the pause
            state, link = printer.state, printer.status.state.value
            if state is not None and (state is not sent_state or link != sent_link):
                echo_json({"type": "state", **state_json(printer, state)})
                sent_state, sent_link, sent_at = state, link, time.monotonic()
            if link == "failed":
                reason = "failed"
                done.set()
                return

    async def timer() -> None:
        nonlocal reason
        if duration is not None:
            await asyncio.sleep(duration)
            reason = "duration"
            done.set()

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(events())]
        # One turn of the loop: events() subscribes before the first line goes out, so a
        # reader that acts on that line (a test dropping the connection) misses no event.
        await asyncio.sleep(0)
        echo_json({"type": "state", **state_json(printer, first)})
        tasks += [
            group.create_task(states()),
            group.create_task(emit_states()),
            group.create_task(timer()),
        ]
        await done.wait()
        for task in tasks:
            task.cancel()
    return reason
