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
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bambu_lan.protocol.events import Event, EventKind
from bambu_lan.protocol.state import JobState, PrinterState
from bambu_lan.serve.hub import Hub, Sink, WatchedPrinter

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
_JOB_COUNTERS = {
    EventKind.JOB_STARTED: "started",
    EventKind.JOB_FINISHED: "finished",
    EventKind.JOB_FAILED: "failed",
    EventKind.JOB_CANCELLED: "cancelled",
}


@dataclass(frozen=True, slots=True)
class _Row:
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

    def snapshot(self) -> list[_Row]:
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
                _Row(
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

    def render(self, rows: list[_Row] | None = None) -> bytes:
        """The exposition text (thread-safe given a snapshot)."""
        return generate_latest(_Scrape(rows if rows is not None else self.snapshot()))

    async def _handle(self, request: web.Request) -> web.Response:
        from aiohttp import web

        rows = self.snapshot()
        body = await asyncio.get_running_loop().run_in_executor(None, self.render, rows)
        self.scrapes += 1
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class _Scrape:
    """A one-shot registry for ``generate_latest``: the farm plus the process's own metrics."""

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Metric]:
        yield from _FarmCollector(self.rows).collect()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            yield from collector.collect()


def _gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=[*LABELS, *extra])


def _counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=[*LABELS, *extra])


class _FarmCollector(Collector):
    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[Metric]:
        up = _gauge("bambu_printer_up", "1 when the printer's MQTT session is connected.")
        info = _gauge("bambu_printer_info", "Always 1; the firmware as a label.", ("firmware",))
        state = _gauge(
            "bambu_printer_job_state", "1 for the printer's current job state.", ("state",)
        )
        progress = _gauge("bambu_job_progress_ratio", "Progress of the current job, 0 to 1.")
        remaining = _gauge("bambu_job_remaining_seconds", "Estimated time left in the job.")
        layer = _gauge("bambu_job_layer", "The layer being printed.")
        layers = _gauge("bambu_job_layers", "Layers in the job.")
        temp = _gauge("bambu_temperature_celsius", "Measured temperature.", ("sensor",))
        target = _gauge("bambu_temperature_target_celsius", "Target temperature.", ("sensor",))
        fan = _gauge("bambu_fan_speed_ratio", "Fan speed, 0 to 1.", ("fan",))
        speed = _gauge("bambu_speed_level", "Print speed level: 1 silent ... 4 ludicrous.")
        wifi = _gauge("bambu_wifi_signal_dbm", "Wi-Fi signal strength.")
        tray = _gauge(
            "bambu_ams_tray_remaining_ratio",
            "Filament left on an AMS tray, 0 to 1 (where the printer knows it).",
            ("ams", "tray", "type"),
        )
        humidity = _gauge(
            "bambu_ams_humidity_level", "AMS humidity index as reported (1 wet ... 5 dry).",
            ("ams",),
        )  # fmt: skip
        hms = _gauge("bambu_hms_alerts", "Active HMS alerts.")
        reconnects = _counter("bambu_reconnects", "Reconnections since serve started.")
        reports = _counter("bambu_reports", "Messages received from the printer.")
        problems = _counter("bambu_decode_problems", "Payloads or values that could not be read.")
        jobs = _counter("bambu_jobs", "Jobs seen ending or starting, by outcome.", ("outcome",))
        for row in self.rows:
            labels = row.labels
            up.add_metric(labels, 1.0 if row.up else 0.0)
            reconnects.add_metric(labels, row.reconnects)
            reports.add_metric(labels, row.reports)
            problems.add_metric(labels, row.decode_problems)
            for outcome in _JOB_COUNTERS.values():
                jobs.add_metric([*labels, outcome], row.jobs.get(outcome, 0))
            s = row.state
            if s is None:
                continue
            info.add_metric([*labels, s.firmware or ""], 1.0)
            for js in EXPORTED_STATES:
                state.add_metric([*labels, js.value], 1.0 if s.job.state is js else 0.0)
            job = s.job
            progress.add_metric(labels, job.progress / 100)
            if job.remaining_minutes is not None:
                remaining.add_metric(labels, job.remaining_minutes * 60.0)
            layer.add_metric(labels, job.layer)
            layers.add_metric(labels, job.total_layers)
            t = s.temperatures
            for sensor, value, goal in (
                ("nozzle", t.nozzle, t.nozzle_target),
                ("bed", t.bed, t.bed_target),
                ("chamber", t.chamber, None),
            ):
                if value is not None:
                    temp.add_metric([*labels, sensor], value)
                if goal is not None:
                    target.add_metric([*labels, sensor], goal)
            for name in ("part", "aux", "chamber", "heatbreak"):
                pct = getattr(s.fans, name)
                if pct is not None:
                    fan.add_metric([*labels, name], pct / 100)
            if s.speed.level is not None:
                speed.add_metric(labels, s.speed.level)
            if s.wifi_signal_dbm is not None:
                wifi.add_metric(labels, s.wifi_signal_dbm)
            for unit in s.ams:
                if unit.humidity is not None:
                    humidity.add_metric([*labels, str(unit.ams_id)], unit.humidity)
                for t_ in unit.trays:
                    if t_.remain is not None and not t_.empty:
                        tray.add_metric(
                            [*labels, str(unit.ams_id), str(t_.tray_id), t_.type],
                            t_.remain / 100,
                        )
            hms.add_metric(labels, len(s.hms))
        yield from (
            up, info, state, progress, remaining, layer, layers, temp, target, fan, speed,
            wifi, tray, humidity, hms, reconnects, reports, problems, jobs,
        )  # fmt: skip


def scrape_text(hub: Hub) -> str:
    """The exposition text for ``hub`` (for tests and the benchmark)."""
    sink = next((s for s in hub.sinks if isinstance(s, MetricsSink)), None)
    if sink is None:
        raise LookupError("the hub has no metrics sink")
    return sink.render().decode()
