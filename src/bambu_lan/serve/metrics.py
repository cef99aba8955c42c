"""Prometheus ``/metrics`` (the official client library) on ``--metrics-port``.

Nothing is updated per report: at each scrape the hub's latest states are read once (on the
event loop, cheap) and rendered into the exposition format in a worker thread, so a scrape of
1,000 printers never stalls the bridge. Names follow Prometheus conventions: ``bambu_``
prefix, base units in names, ``_total`` counters, ``serial`` / ``name`` / ``model`` labels.
Counters that the connection keeps (reconnects, reports, decode problems) are read from it;
job outcomes are counted here from events.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    generate_latest,
)
from prometheus_client.core import Metric

from bambu_lan.protocol.events import Event, EventKind
from bambu_lan.protocol.state import JobState, PrinterState
from bambu_lan.serve.hub import JOB_OUTCOMES, Hub, Sink, WatchedPrinter

if TYPE_CHECKING:
    from aiohttp import web

LABELS = ["serial", "name", "model"]
#: The job states exported as a state set (one series each, 1 for the current one).
EXPORTED_STATES = (
    JobState.IDLE,
    JobState.PREPARE,
    JobState.RUNNING,
    JobState.PAUSE,
    JobState.FINISH,
    JobState.FAILED,
    JobState.UNKNOWN,
)
_JOB_COUNTERS = {EventKind.JOB_STARTED: "started", **JOB_OUTCOMES}


@dataclass(frozen=True, slots=True)
class PrinterRow:
    """What one scrape needs of one printer, copied on the loop."""

    labels: list[str]
    up: bool
    state: PrinterState | None
    reconnects: int
    reports: int
    decode_problems: int
    jobs: dict[str, int]


class MetricsSink(Sink):
    """Serves ``/metrics``; counts job outcomes from events."""

    name = "metrics"

    def __init__(self) -> None:
        self.hub: Hub | None = None
        self._jobs: dict[str, dict[str, int]] = {}
        self.scrapes = 0

    async def start(self, hub: Hub) -> None:
        self.hub = hub

    def event(self, printer: WatchedPrinter, event: Event) -> None:
        which = _JOB_COUNTERS.get(event.kind)
        if which is not None:
            counts = self._jobs.setdefault(printer.serial, {})
            counts[which] = counts.get(which, 0) + 1

    def setup_http(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self._handle)

    def snapshot(self) -> list[PrinterRow]:
        assert self.hub is not None
        rows = []
        for p in list(self.hub.printers.values()):
            try:
                status = p.status
                connects, reports = status.connects, status.messages
                problems = sum(p.printer.decode_problems.values())
            except Exception:  # a printer being removed: counters are gone with it
                connects = reports = problems = 0
            rows.append(
                PrinterRow(
                    labels=[p.serial, p.name, p.model],
                    up=p.online,
                    state=p.state,
                    reconnects=max(connects - 1, 0),
                    reports=reports,
                    decode_problems=problems,
                    jobs=dict(self._jobs.get(p.serial, {})),
                )
            )
        return rows

    def render(self, rows: list[PrinterRow] | None = None) -> bytes:
        """The exposition text (thread-safe given a snapshot)."""
        farm = render_farm(rows if rows is not None else self.snapshot())
        return farm.encode() + generate_latest(_Scrape())

    async def _handle(self, request: web.Request) -> web.Response:
        from aiohttp import web

        rows = self.snapshot()
        body = await asyncio.get_running_loop().run_in_executor(None, self.render, rows)
        self.scrapes += 1
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class _Scrape:
    """A one-shot registry for ``generate_latest``: the process's own metrics."""

    def collect(self) -> Iterator[Metric]:
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            yield from collector.collect()


class _Family:
    """One metric family of the exposition text, its samples appended as text.

    The farm's part of a scrape (40-odd series per printer, 40,000 for 1,000 printers) is
    written here rather than through ``generate_latest``, which formats each sample through
    several Python calls: 500 ms for 1,000 printers against 100 ms allowed. The format is the
    same (tests parse it with the client's parser; promtool checks it)."""

    __slots__ = ("kind", "lines", "name")

    def __init__(self, name: str, kind: str, doc: str) -> None:
        self.name = name + "_total" if kind == "counter" else name
        self.kind = kind
        self.lines = [f"# HELP {self.name} {doc}", f"# TYPE {self.name} {kind}"]

    def add(self, labels: str, value: float) -> None:
        self.lines.append(f"{self.name}{{{labels}}} {_value(value)}")


def _value(value: float) -> str:
    if math.isfinite(value):
        return repr(float(value))
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def _label(value: str) -> str:
    """A label value escaped for the text format."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def render_farm(rows: list[PrinterRow]) -> str:
    """The farm's metric families in the Prometheus text format."""
    up = _Family("bambu_printer_up", "gauge", "1 when the printer's MQTT session is connected.")
    info = _Family("bambu_printer_info", "gauge", "Always 1; the firmware as a label.")
    state = _Family("bambu_printer_job_state", "gauge", "1 for the printer's current job state.")
    progress = _Family("bambu_job_progress_ratio", "gauge", "Progress of the current job, 0 to 1.")
    remaining = _Family("bambu_job_remaining_seconds", "gauge", "Estimated time left in the job.")
    layer = _Family("bambu_job_layer", "gauge", "The layer being printed.")
    layers = _Family("bambu_job_layers", "gauge", "Layers in the job.")
    temp = _Family("bambu_temperature_celsius", "gauge", "Measured temperature.")
    target = _Family("bambu_temperature_target_celsius", "gauge", "Target temperature.")
    fan = _Family("bambu_fan_speed_ratio", "gauge", "Fan speed, 0 to 1.")
    speed = _Family("bambu_speed_level", "gauge", "Print speed level: 1 silent ... 4 ludicrous.")
    wifi = _Family("bambu_wifi_signal_dbm", "gauge", "Wi-Fi signal strength.")
    tray = _Family(
        "bambu_ams_tray_remaining_ratio", "gauge",
        "Filament left on an AMS tray, 0 to 1 (where the printer knows it).",
    )  # fmt: skip
    humidity_ratio = _Family(
        "bambu_ams_humidity_ratio", "gauge",
        "Relative humidity inside the AMS, 0 to 1 (models that report it: AMS 2 Pro, AMS HT).",
    )  # fmt: skip
    humidity_index = _Family(
        "bambu_ams_humidity_level", "gauge",
        "AMS humidity index as the printer reports it: 1 wet ... 5 dry (not a percentage).",
    )  # fmt: skip
    hms = _Family("bambu_hms_alerts", "gauge", "Active HMS alerts.")
    reconnects = _Family("bambu_reconnects", "counter", "Reconnections since serve started.")
    reports = _Family("bambu_reports", "counter", "Messages received from the printer.")
    problems = _Family(
        "bambu_decode_problems", "counter", "Payloads or values that could not be read."
    )
    jobs = _Family(
        "bambu_jobs", "counter",
        "Jobs seen starting, and ending by outcome (unknown: it ended while serve was away).",
    )  # fmt: skip
    for row in rows:
        serial, name, model = (_label(v) for v in row.labels)
        labels = f'serial="{serial}",name="{name}",model="{model}"'
        up.add(labels, 1 if row.up else 0)
        reconnects.add(labels, row.reconnects)
        reports.add(labels, row.reports)
        problems.add(labels, row.decode_problems)
        for outcome in _JOB_COUNTERS.values():
            jobs.add(f'{labels},outcome="{outcome}"', row.jobs.get(outcome, 0))
        s = row.state
        if s is None:
            continue
        info.add(f'{labels},firmware="{_label(s.firmware or "")}"', 1)
        job = s.job
        for js in EXPORTED_STATES:
            state.add(f'{labels},state="{js.value}"', 1 if job.state is js else 0)
        progress.add(labels, job.progress / 100)
        if job.remaining_minutes is not None:
            remaining.add(labels, job.remaining_minutes * 60)
        layer.add(labels, job.layer)
        layers.add(labels, job.total_layers)
        t = s.temperatures
        for sensor, value, goal in (
            ("nozzle", t.nozzle, t.nozzle_target),
            ("bed", t.bed, t.bed_target),
            ("chamber", t.chamber, None),
        ):
            if value is not None:
                temp.add(f'{labels},sensor="{sensor}"', value)
            if goal is not None:
                target.add(f'{labels},sensor="{sensor}"', goal)
        fans = s.fans
        for fan_name in ("part", "aux", "chamber", "heatbreak"):
            pct = getattr(fans, fan_name)
            if pct is not None:
                fan.add(f'{labels},fan="{fan_name}"', pct / 100)
        if s.speed.level is not None:
            speed.add(labels, s.speed.level)
        if s.wifi_signal_dbm is not None:
            wifi.add(labels, s.wifi_signal_dbm)
        for unit in s.ams:
            ams = f'{labels},ams="{unit.ams_id}"'
            if unit.humidity_percent is not None:
                humidity_ratio.add(ams, unit.humidity_percent / 100)
            if unit.humidity is not None:
                humidity_index.add(ams, unit.humidity)
            for t_ in unit.trays:
                if t_.remain is not None and not t_.empty:
                    tray.add(f'{ams},tray="{t_.tray_id}",type="{_label(t_.type)}"', t_.remain / 100)
        hms.add(labels, len(s.hms))
    families = (
        up, info, state, progress, remaining, layer, layers, temp, target, fan, speed, wifi,
        tray, humidity_ratio, humidity_index, hms, reconnects, reports, problems, jobs,
    )  # fmt: skip
    return "\n".join(line for family in families for line in family.lines) + "\n"


def scrape_text(hub: Hub) -> str:
    """The exposition text for ``hub`` (for tests and the benchmark)."""
    sink = next((s for s in hub.sinks if isinstance(s, MetricsSink)), None)
    if sink is None:
        raise LookupError("the hub has no metrics sink")
    return sink.render().decode()
