"""The live view of one printer (``watch``, ``demo``, ``status``).

Two faces of the same content:

* on a terminal, a rich panel redrawn in place: job, progress bar, temperatures, fans, AMS
  trays with colour swatches, HMS alerts with wiki links, connection health;
* anywhere else (a pipe, a log file), plain text: one line per change of what matters (job
  state, progress, layer, stage, speed, light, alerts, connection), one line per event.

rich is imported only when a panel is drawn, so ``--help`` stays fast. The words both faces
use for a state (temperatures, job, trays, nozzles...) are in ``cli/words.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import click

from bambu_lan.cli.words import (
    ams_about,
    ams_name,
    connection_text,
    external_name,
    fmt_minutes,
    fmt_pct,
    fmt_temp,
    job_text,
    lights_text,
    loaded_text,
    nozzle_name,
    nozzle_spec,
    nozzles_text,
    speed_text,
    stage_text,
)
from bambu_lan.text import terminal_safe, terminal_safe_copy

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live
    from rich.table import Table

    from bambu_lan.printer import Printer, Update
    from bambu_lan.protocol.events import Event
    from bambu_lan.protocol.state import PrinterInfo, PrinterState, Tray
    from bambu_lan.session import ConnectionStatus

JOB_STYLES = {
    "RUNNING": "bold green",
    "PREPARE": "bold cyan",
    "PAUSE": "bold yellow",
    "FINISH": "bold blue",
    "FAILED": "bold red",
    "IDLE": "dim",
    "OFFLINE": "red",
}
SEVERITY_STYLES = {"fatal": "bold red", "serious": "red", "common": "yellow", "info": "cyan"}
MAX_EVENTS_SHOWN = 6


@dataclass(slots=True)
class Snapshot:
    """Everything one frame of the view shows."""

    label: str
    state: PrinterState | None
    status: ConnectionStatus | None
    info: PrinterInfo | None = None
    events: Sequence[Event] = ()
    title: str = ""  # e.g. "simulated A1 (demo)"
    footer: str = ""  # e.g. "Ctrl-C to quit"


# --- plain text -----------------------------------------------------------------------------


def plain_key(snap: Snapshot) -> tuple[Any, ...]:
    """What must change for the plain view to print a new line (not the noisy temperatures)."""
    state, status = snap.state, snap.status
    link = (status.state.value, status.last_error) if status else None
    if state is None:
        return (link,)
    job = state.job
    return (
        link,
        job.state,
        job.progress // 5,  # a line per 5 %; layer changes come as events
        job.stage,
        job.prepare_percent,
        state.speed.level,
        tuple(sorted(state.lights.items())),
        tuple(a.code for a in state.hms),
        state.print_error.value if state.print_error else 0,
        state.active_tray,
    )


def plain_line(snap: Snapshot) -> str:
    """One line: time, printer, job, temperatures, speed, light, alerts, connection (made
    terminal-safe as a whole: it quotes the printer)."""
    return terminal_safe(_plain_line(snap))


def _plain_line(snap: Snapshot) -> str:
    stamp = time.strftime("%H:%M:%S")
    state, status = snap.state, snap.status
    head = f"{stamp} {snap.label}"
    link = status.state.value if status else "not started"
    if status is not None and status.state.value != "connected" and status.last_error:
        link += f" ({status.last_error})"
    if state is None:
        return f"{head} {link}, waiting for the first report"
    t = state.temperatures
    parts = [
        job_text(state),
        nozzles_text(state),
        f"bed {fmt_temp(t.bed, t.bed_target)}",
    ]
    if t.chamber_sensor:
        parts.append(f"chamber {fmt_temp(t.chamber, t.chamber_target)}")
    parts += [
        f"speed {speed_text(state)}",
        f"light {lights_text(state)}",
        f"filament {loaded_text(state)}",
    ]
    if state.hms:
        parts.append("HMS " + ", ".join(a.short for a in state.hms))
    if state.print_error:
        parts.append(f"error {state.print_error.hex} {state.print_error.text}".rstrip())
    if status is not None and status.state.value != "connected":
        parts.append(link)
    return f"{head} " + " | ".join(parts)


def event_line(event: Event) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
    return terminal_safe(f"{stamp} {event.serial} event {event.kind.value}: {event.message}")


# --- rich panel -----------------------------------------------------------------------------


def _kv_table() -> Table:
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    return table


def render(snap: Snapshot) -> RenderableType:
    """The panel for one frame. Every string the printer sent is made terminal-safe first
    (``terminal_safe_copy``); the consoles drawing it do not read rich markup either."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    snap = terminal_safe_copy(snap)
    state, status, info = snap.state, snap.status, snap.info
    model = (info.model if info else None) or (state.model if state else None) or "printer"
    firmware = (info.firmware if info else None) or (state.firmware if state else None)
    title = Text.assemble(
        (f"{model} ", "bold"),
        (snap.label, "bold cyan"),
        (f"  firmware {firmware}" if firmware else "", "dim"),
        (f"  {snap.title}" if snap.title else "", "magenta"),
    )
    subtitle = snap.footer or None
    grid = _kv_table()
    link_style = "green" if status is not None and status.connected else "bold red"
    grid.add_row("connection", Text(terminal_safe(connection_text(status)), style=link_style))
    if state is None:
        grid.add_row("", Text("waiting for the first full report…", style="dim"))
        return Panel(grid, title=title, subtitle=subtitle, expand=False)

    # The job.
    job = state.job
    grid.add_row("", "")
    job_line = Text(job.state.value, style=JOB_STYLES.get(job.state.value, ""))
    if job.name or job.file:
        job_line.append(f"  {job.name or job.file}")
    grid.add_row("job", job_line)
    if job.active or job.state.value in ("FINISH", "FAILED"):
        bar = Table.grid(padding=(0, 1))
        bar.add_column(width=40)
        bar.add_column()
        complete_style = "yellow" if job.state.value == "PAUSE" else "green"
        bar.add_row(
            ProgressBar(total=100, completed=job.progress, width=40, complete_style=complete_style),
            Text(f"{job.progress:3d}%"),
        )
        grid.add_row("progress", bar)
        if job.total_layers:
            grid.add_row("layer", f"{job.layer} / {job.total_layers}")
        if stage := stage_text(state):
            grid.add_row("stage", stage)
        if job.prepare_percent is not None:
            grid.add_row("preparing", f"{job.prepare_percent}%")
        if job.active:
            grid.add_row("remaining", fmt_minutes(job.remaining_minutes))
    if state.print_error is not None:
        text = state.print_error.text or "unknown error code (see the Bambu wiki)"
        grid.add_row("print error", Text(f"{state.print_error.hex}: {text}", style="bold red"))

    # The machine.
    t = state.temperatures
    grid.add_row("", "")
    nozzles = state.nozzles
    if not nozzles:
        grid.add_row("nozzle", fmt_temp(t.nozzle, t.nozzle_target))
    for nozzle in nozzles:
        reading = Text(fmt_temp(nozzle.temperature, nozzle.target))
        if spec := nozzle_spec(nozzle):
            reading.append(f"  {spec}", style="dim")
        if nozzle.active and len(nozzles) > 1:
            reading.append("  ◀ active", style="bold green")
        grid.add_row(nozzle_name(nozzle, len(nozzles)), reading)
    grid.add_row("bed", fmt_temp(t.bed, t.bed_target))
    grid.add_row(
        "chamber",
        fmt_temp(t.chamber, t.chamber_target)
        if t.chamber_sensor
        else Text("no sensor", style="dim"),
    )
    fans = state.fans
    grid.add_row(
        "fans",
        f"part {fmt_pct(fans.part)}  aux {fmt_pct(fans.aux)}  chamber {fmt_pct(fans.chamber)}"
        f"  heatbreak {fmt_pct(fans.heatbreak)}",
    )
    grid.add_row("speed", speed_text(state))
    grid.add_row("light", lights_text(state))
    wifi = state.wifi_signal_dbm
    grid.add_row("wi-fi", f"{wifi} dBm" if wifi is not None else "?")
    trays = _trays_table(state)
    if trays is not None:
        grid.add_row("", "")
        grid.add_row("filament", trays)

    rows: list[RenderableType] = [grid]
    if state.hms:
        alerts = Table.grid(padding=(0, 1))
        alerts.add_column(no_wrap=True)
        alerts.add_column()
        for alert in state.hms:
            style = SEVERITY_STYLES.get(alert.severity, "")
            alerts.add_row(
                Text(f"{alert.short} {alert.severity}", style=style),
                Text.assemble(
                    alert.text or "no description shipped; see the wiki",
                    "\n",
                    Text(alert.wiki_url, style=f"dim link {alert.wiki_url}"),
                ),
            )
        rows.append(Panel(alerts, title="HMS alerts", title_align="left", border_style="red"))
    if snap.events:
        events = Table.grid(padding=(0, 1))
        events.add_column(style="dim", no_wrap=True)
        events.add_column()
        for event in list(snap.events)[-MAX_EVENTS_SHOWN:]:
            events.add_row(time.strftime("%H:%M:%S", time.localtime(event.at)), event.message)
        rows.append(Panel(events, title="events", title_align="left", border_style="dim"))
    return Panel(Group(*rows), title=title, subtitle=subtitle, expand=False)


def _trays_table(state: PrinterState) -> RenderableType | None:
    """AMS units of every kind and the external spools: swatch, type, colour, remain, and
    which one is loaded. One small grid per unit, all with the same column widths."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    if not state.ams and not state.external_spools:
        return None
    names = [f"  slot {n}" for n in range(1, 5)] + [
        external_name(state, s) for s in state.external_spools
    ]
    types = [t.type for u in state.ams for t in u.trays] + [s.type for s in state.external_spools]
    widths = (max(map(len, names)), 4, max(5, *map(len, types)), 7, 4)

    def grid() -> Table:
        table = Table.grid(padding=(0, 1))
        for width in widths:
            table.add_column(no_wrap=True, width=width)
        table.add_column(no_wrap=True)
        return table

    def add(table: Table, name: str, tray: Tray) -> None:
        swatch = Text("    ")
        if tray.color_hex and not tray.empty:
            swatch = Text("████", style=tray.color_hex)
        table.add_row(
            name,
            swatch,
            "empty" if tray.empty else (tray.type or "?"),
            "" if tray.empty else tray.color_hex,
            Text("" if tray.empty else f"{fmt_pct(tray.remain):>4}"),
            Text("◀ loaded" if state.active_tray == tray.tray_id else "", style="bold green"),
        )

    parts: list[RenderableType] = []
    for unit in state.ams:
        about = ams_about(unit)
        parts.append(Text(ams_name(unit) + (f" ({about})" if about else ""), style="dim"))
        table = grid()
        for tray in unit.trays:
            if len(unit.trays) == 1:
                add(table, "  spool", tray)  # an AMS HT holds one
                continue
            slot = (tray.slot if tray.slot is not None else tray.tray_id) + 1
            add(table, f"  slot {slot}", tray)
        parts.append(table)
    if state.external_spools:
        table = grid()
        for spool in state.external_spools:
            add(table, external_name(state, spool), spool)
        parts.append(table)
    return Group(*parts)


# --- displays -------------------------------------------------------------------------------


class Display(Protocol):
    def update(self, snap: Snapshot) -> None: ...

    def event(self, event: Event) -> None: ...

    def close(self, snap: Snapshot | None) -> None: ...


class PlainDisplay:
    """One line per change, one line per event; flushed, for logs and pipes."""

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self._echo = echo or _echo_flush
        self._last: tuple[Any, ...] | None = None

    def update(self, snap: Snapshot) -> None:
        key = plain_key(snap)
        if key != self._last:
            self._last = key
            self._echo(plain_line(snap))

    def event(self, event: Event) -> None:
        self._echo(event_line(event))

    def close(self, snap: Snapshot | None) -> None:
        if snap is not None:
            self.update(snap)


class PanelDisplay:
    """The rich panel, redrawn in place; the last frame stays on screen at the end."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console(markup=False)  # printer text is not markup
        self._live: Live = Live(
            console=self.console, auto_refresh=False, redirect_stderr=False, transient=False
        )
        self._live.start()

    def update(self, snap: Snapshot) -> None:
        self._live.update(render(snap), refresh=True)

    def event(self, event: Event) -> None:
        pass  # shown inside the panel (Snapshot.events)

    def close(self, snap: Snapshot | None) -> None:
        if snap is not None:
            self._live.update(render(snap), refresh=True)
        self._live.stop()


def _echo_flush(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


def make_display(plain: bool | None = None) -> Display:
    """The panel on a terminal, plain lines otherwise (or as asked)."""
    if plain is None:
        plain = not sys.stdout.isatty()
    return PlainDisplay() if plain else PanelDisplay()


def print_once(snap: Snapshot, plain: bool = False) -> None:
    """One frame: the panel (without colours when not on a terminal), or one plain line."""
    if plain:
        _echo_flush(plain_line(snap))
        return
    from rich.console import Console

    Console(markup=False).print(render(snap))


# --- following a printer --------------------------------------------------------------------


@dataclass(slots=True)
class FollowResult:
    reason: str  # "event", "duration", "max_events", "failed", "closed"
    last_event: Event | None = None
    events: list[Event] = field(default_factory=list)
    error: BaseException | None = None  # for "failed": why the connection gave up


async def follow(
    printer: Printer,
    display: Display,
    *,
    label: str,
    updates: AsyncIterator[Update] | None = None,
    title: str = "",
    footer: str = "",
    until: Callable[[Event], bool] | None = None,
    duration: float | None = None,
    max_events: int | None = None,
    tick: float = 0.5,
    state_interval: float = 0.0,
    on_start: Callable[[], object] | None = None,
) -> FollowResult:
    """Render ``printer``'s update stream on ``display`` until ``until(event)`` is true,
    ``duration`` seconds pass, ``max_events`` events were seen, or the stream ends.

    ``updates`` should be made (``printer.updates()``) before the printer starts, so the
    view tells the whole story: retries, the connection, a job or alert found at connect.
    Events are shown as they come; frames at most every ``state_interval`` seconds and at
    least every ``tick`` (ages tick on). A wrong access code or identity before the first
    connection ends the view at once (reason "failed"); later drops are shown and the
    library reconnects by itself.
    """
    from bambu_lan.printer import UpdateStream
    from bambu_lan.protocol.state import PrinterState

    stream = updates if updates is not None else printer.updates()
    recent: deque[Event] = deque(maxlen=MAX_EVENTS_SHOWN)
    result = FollowResult(reason="closed")
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    connected = False
    dirty = True  # something changed since the last frame
    drawn_at = -1e9

    def snapshot() -> Snapshot:
        status = None
        with contextlib.suppress(Exception):
            status = printer.status
        return Snapshot(
            label=label,
            state=printer.state,
            status=status,
            info=printer.info,
            events=tuple(recent),
            title=title,
            footer=footer,
        )

    def on_event(event: Event) -> bool:
        """Show one event; True when the view should end."""
        nonlocal connected
        recent.append(event)
        result.events.append(event)
        display.event(event)
        kind = event.kind.value
        if kind in ("connected", "reconnected"):
            connected = True
        if kind == "retrying" and not connected and not event.data.get("retryable", True):
            result.reason, result.error = "failed", printer.status.error
            return True
        if until is not None and until(event):
            result.reason, result.last_event = "event", event
            return True
        if max_events is not None and len(result.events) >= max_events:
            result.reason, result.last_event = "max_events", event
            return True
        return False

    iterator = aiter(stream)
    display.update(snapshot())
    if on_start is not None:
        on_start()
    try:
        while True:
            now = loop.time()
            wait = tick
            if dirty:
                wait = min(wait, max(0.0, drawn_at + state_interval - now))
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - now))
            item: Update | None = None
            try:
                async with asyncio.timeout(wait):
                    item = await anext(iterator)
            except TimeoutError:
                pass
            except StopAsyncIteration:
                if printer.status.state.value == "failed":
                    result.reason, result.error = "failed", printer.status.error
                break
            if item is not None:
                dirty = True
                if not isinstance(item, PrinterState) and on_event(item):
                    break
            now = loop.time()
            if deadline is not None and now >= deadline:
                result.reason = "duration"
                break
            if now - drawn_at >= state_interval and (dirty or now - drawn_at >= tick):
                display.update(snapshot())
                dirty, drawn_at = False, now
    finally:
        # Also on Ctrl-C: the last frame stays on screen and the terminal is restored.
        if isinstance(stream, UpdateStream):
            stream.close()
        display.close(snapshot())
    return result
