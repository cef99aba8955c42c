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
from bambu_lan.serve.metrics import MetricsSink
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
