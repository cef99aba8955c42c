"""Prometheus: a real Prometheus scrapes /metrics and its query API returns every printer;
promtool accepts the exposition."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bambu_lan.protocol.events import EventKind
from bambu_lan.serve.daemon import Daemon
from bambu_lan.serve.metrics import MetricsSink, PrinterRow
from bambu_lan.serve.settings import ServeSettings

from .support import RecordingSink, require_tool
from .test_daemon import daemon_for, write_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def fetch(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_metrics_names_values_and_promtool(sim_factory, tmp_path: Path) -> None:
    promtool = require_tool("promtool", "prometheus")
    a = await sim_factory(serial="01S00A000000031")
    b = await sim_factory(serial="01S00A000000032", access_code="11112222")
    config = write_config(tmp_path / "c.toml", {"left": a, "right": b})
    rec = RecordingSink()
    daemon = daemon_for(config, MetricsSink(), rec, metrics_port=0)
    await daemon.start()
    try:
        await rec.wait_for(lambda: {a.serial, b.serial} <= set(rec.states))
        a.model.start_print(layers=2, name="m", layer_seconds=1, prepare_seconds=0.5)
        await rec.wait_for(lambda: EventKind.JOB_FINISHED in rec.kinds(a.serial), timeout=30)
        status, text = await fetch(f"http://127.0.0.1:{daemon.metrics_port}/metrics")
        health, _ = await fetch(f"http://127.0.0.1:{daemon.metrics_port}/healthz")
    finally:
        await daemon.stop()
    assert status == 200 and health == 200
    samples = parse(text)
    left = {"model": "A1", "name": "left", "serial": a.serial}
    right = {"model": "A1", "name": "right", "serial": b.serial}
    assert samples[("bambu_printer_up", key(left))] == 1.0
    assert samples[("bambu_printer_up", key(right))] == 1.0
    assert samples[("bambu_jobs_total", key(left, outcome="finished"))] == 1.0
    assert samples[("bambu_jobs_total", key(left, outcome="started"))] == 1.0
    assert samples[("bambu_jobs_total", key(right, outcome="finished"))] == 0.0
    assert samples[("bambu_printer_job_state", key(left, state="FINISH"))] == 1.0
    assert samples[("bambu_printer_job_state", key(left, state="RUNNING"))] == 0.0
    assert samples[("bambu_job_progress_ratio", key(left))] == 1.0
    assert samples[("bambu_job_layers", key(left))] == 2.0
    assert ("bambu_temperature_target_celsius", key(left, sensor="bed")) in samples
    assert samples[("bambu_reports_total", key(left))] > 1
    assert ("bambu_wifi_signal_dbm", key(right)) in samples
    assert any(name == "process_resident_memory_bytes" for name, _ in samples)
    assert a.access_code not in text and b.access_code not in text
    await promtool_accepts(promtool, text)


async def promtool_accepts(promtool: str, text: str) -> None:
    check = await asyncio.create_subprocess_exec(
        promtool, "check", "metrics",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(check.communicate(text.encode()), 30)
    assert check.returncode == 0, out.decode()


def key(labels: dict[str, str], **extra: str) -> frozenset[tuple[str, str]]:
    return frozenset({**labels, **extra}.items())


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_a_real_prometheus_scrapes_every_printer(sim_factory, tmp_path: Path) -> None:
    prometheus = require_tool("prometheus", "prometheus")
    sims = [await sim_factory(serial=f"01S00A00000004{i}") for i in range(3)]
    config = write_config(tmp_path / "c.toml", {f"p{i}": s for i, s in enumerate(sims)})
    rec = RecordingSink()
    daemon = daemon_for(config, MetricsSink(), rec, metrics_port=0)
    await daemon.start()
    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: bambu\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{daemon.metrics_port}']\n"
    )
    proc = await asyncio.create_subprocess_exec(
        prometheus,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await rec.wait_for(lambda: all(EventKind.CONNECTED in rec.kinds(s.serial) for s in sims))
        url = f"http://127.0.0.1:{prom_port}/api/v1/query?query=bambu_printer_up"
        result: list[dict[str, object]] = []
        # Prometheus has no "scraped" notification: ask its API until the samples are there.
        async with asyncio.timeout(60):
            while len(result) < 3:
                try:
                    async with aiohttp.ClientSession() as session, session.get(url) as response:
                        if response.status == 200:
                            result = (await response.json())["data"]["result"]
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.5)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
        await daemon.stop()
    serials = {r["metric"]["serial"] for r in result}  # type: ignore[index]
    assert serials == {s.serial for s in sims}
    assert all(r["value"][1] == "1" for r in result)  # type: ignore[index]
    assert {r["metric"]["name"] for r in result} == {"p0", "p1", "p2"}  # type: ignore[index]


def test_metrics_need_no_printer_state() -> None:
    from bambu_lan.serve.hub import Hub

    hub = Hub(sinks=[MetricsSink()])
    sink = hub.sinks[0]
    assert isinstance(sink, MetricsSink)
    sink.hub = hub
    assert "bambu_printer_up" in sink.render().decode()
    assert isinstance(Daemon(ServeSettings(), []).hub, Hub)


async def test_a_job_that_ended_unseen_is_counted_and_kept_as_unknown(
    sim_factory, tmp_path: Path
) -> None:
    """Job A ends and job B starts while serve is away: A is counted in ``bambu_jobs_total``
    and kept in the history with the outcome ``unknown``."""
    from bambu_lan.serve.history import HistorySink
    from bambu_lan.serve.history_store import SqliteStore

    sim = await sim_factory(serial="01S00A000000033")
    config = write_config(tmp_path / "c.toml", {"bench": sim})
    rec = RecordingSink()
    history = HistorySink(f"sqlite:///{tmp_path / 'h.sqlite'}", spool=tmp_path / "spool.jsonl")
    daemon = daemon_for(config, MetricsSink(), history, rec, metrics_port=0)
    await daemon.start()
    try:
        await rec.wait_for(lambda: sim.serial in rec.states)
        sim.model.start_print(layers=50, name="first", file="first.3mf", layer_seconds=5)
        await rec.wait_for(lambda: EventKind.JOB_STARTED in rec.kinds(sim.serial))
        await sim.stop()
        sim.model.finish_now()
        sim.model.start_print(layers=50, name="second", file="second.3mf", layer_seconds=5)
        await sim.start()
        await rec.wait_for(lambda: EventKind.JOB_ENDED in rec.kinds(sim.serial), timeout=30)
        await rec.wait_for(lambda: history.written == 1)
        _, text = await fetch(f"http://127.0.0.1:{daemon.metrics_port}/metrics")
    finally:
        await daemon.stop()
    labels = {"model": "A1", "name": "bench", "serial": sim.serial}
    samples = parse(text)
    assert samples[("bambu_jobs_total", key(labels, outcome="unknown"))] == 1.0
    assert samples[("bambu_jobs_total", key(labels, outcome="finished"))] == 0.0
    assert samples[("bambu_jobs_total", key(labels, outcome="started"))] == 2.0
    jobs = await SqliteStore(tmp_path / "h.sqlite").query()
    assert [(j.name, j.outcome) for j in jobs] == [("first", "unknown")]


async def test_ams_humidity_percent_and_index(sim_factory, tmp_path: Path) -> None:
    """The AMS 2 Pro (H2D) reports humidity in percent and as an index; the A1's AMS Lite
    only the index: each goes to its own, clearly named, metric."""
    promtool = require_tool("promtool", "prometheus")
    h2d = await sim_factory(model="h2d")
    a1 = await sim_factory(serial="01S00A000000034")
    config = write_config(tmp_path / "c.toml", {"h2d": h2d, "a1": a1})
    rec = RecordingSink()
    daemon = daemon_for(config, MetricsSink(), rec, metrics_port=0)
    await daemon.start()
    try:
        await rec.wait_for(lambda: {h2d.serial, a1.serial} <= set(rec.states))
        await rec.wait_for(lambda: all(s.complete for s in rec.states.values()))
        _, text = await fetch(f"http://127.0.0.1:{daemon.metrics_port}/metrics")
        units = rec.states[h2d.serial].ams
    finally:
        await daemon.stop()
    samples = parse(text)
    ratio = [
        (dict(k)["serial"], v) for (n, k), v in samples.items() if n == "bambu_ams_humidity_ratio"
    ]
    assert {serial for serial, _ in ratio} == {h2d.serial}  # the AMS Lite has no percentage
    percents = [u.humidity_percent for u in units if u.humidity_percent is not None]
    assert percents and sorted(v for _, v in ratio) == sorted(p / 100 for p in percents)
    index = {dict(k)["serial"] for (n, k), _ in samples.items() if n == "bambu_ams_humidity_level"}
    assert a1.serial in index
    await promtool_accepts(promtool, text)


def test_label_values_are_escaped_and_parse_back() -> None:
    """Printer names are the user's text: quotes, backslashes and newlines survive a scrape."""
    from bambu_lan.serve.metrics import render_farm

    name = 'left "bench"\\ne\nw'
    rows = [_row(["01S00A000000035", name, "A1"])]
    samples = parse(render_farm(rows))
    labels = {"serial": "01S00A000000035", "name": name, "model": "A1"}
    assert samples[("bambu_printer_up", key(labels))] == 1.0
    assert samples[("bambu_jobs_total", key(labels, outcome="unknown"))] == 0.0


def _row(labels: list[str]) -> PrinterRow:
    return PrinterRow(labels, True, None, 0, 0, 0, {})
