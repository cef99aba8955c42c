"""8. ``bambu-lan serve``: N simulated printers into one mosquitto.

The simulator runs the fleet in a process of its own (one loopback address per printer, nine
in ten printing, so reporting every second) and notes the time of every report it sends.
``bambu-lan serve`` runs as users run it (a config file with the printers and a ``[serve]``
table: the MQTT bridge, ``/metrics``, the SQLite history) in a third process. This process
subscribes to the broker and measures, over a window once every printer is online:

* lag: for each state message the broker delivers, its arrival minus the send time of the
  newest report of that printer before it (``time.monotonic`` is one clock for all processes
  on Linux): how stale the broker's state is when it changes;
* messages per second, and state messages per printer per second (the bridge's limit: 1);
* CPU of the serve process (user + system over wall time, all threads) and its memory (RSS);
* ``/metrics`` scrape time (the full body, N printers).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from common import (
    BAMBU_LAN,
    OUR_PYTHON,
    Context,
    LineProcess,
    loopback,
    progress,
    summary,
)

BUDGET_N = 1000
BUDGET_LAG_P99_MS = 250.0
BUDGET_CPU_PERCENT = 15.0
BUDGET_RSS_MB = 150.0
BUDGET_SCRAPE_MS = 100.0
PRINTING_SHARE = 0.9

SIM_CODE = r"""
import asyncio, json, sys, time
from pathlib import Path
from bambu_lan.sim import SimFleet

async def main() -> None:
    cfg = json.loads(sys.argv[1])
    fleet = SimFleet(cfg["count"], "a1", host_mode="address", base_host=cfg["host"], port=8883,
                     cert_dir=cfg["cert_dir"], access_code="12345678", seed=7)
    await fleet.start()
    sent = {}
    for index, p in enumerate(fleet.printers):
        times = sent[p.serial] = []
        def wrapped(payload, _send=p.model.publish, _times=times):
            _times.append(time.monotonic())
            _send(payload)
        p.model.publish = wrapped
        if index % 10 < round(cfg["printing"] * 10):
            p.model.start_print(layers=100000, layer_seconds=6.0)
    print(json.dumps({"printers": [p.connection_info() for p in fleet.printers]}), flush=True)
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        command = line.strip()
        if not line or command == "quit":
            break
        if command.startswith("dump "):
            Path(command[5:]).write_text(json.dumps(sent))
        elif command == "reset":
            for times in sent.values():
                times.clear()
        print(json.dumps({"cmd": command, "t": time.monotonic()}), flush=True)
    await fleet.stop()

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    import os

    return ticks / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


class Subscriber:
    """Counts and timestamps what the broker delivers (paho's own thread)."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.lock = threading.Lock()
        self.states: list[tuple[str, float]] = []  # (serial, arrival)
        self.messages = 0
        self.recording = False
        self.seen: set[str] = set()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4()}")
        self.client.on_connect = lambda c, *a: c.subscribe("bambu-lan/#", qos=0)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        now = time.monotonic()
        parts = message.topic.split("/")
        with self.lock:
            if len(parts) == 3 and parts[2] == "state" and message.payload:
                self.seen.add(parts[1])
                if self.recording:
                    self.states.append((parts[1], now))
            if self.recording:
                self.messages += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def lags_ms(states: list[tuple[str, float]], sent: dict[str, list[float]]) -> list[float]:
    import bisect

    out = []
    for serial, arrival in states:
        times = sent.get(serial)
        if not times:
            continue
        index = bisect.bisect_right(times, arrival) - 1
        if index >= 0:
            out.append((arrival - times[index]) * 1000)
    return out


def one_run(ctx: Context, n: int, mosquitto: str) -> dict[str, Any]:
    work = ctx.work_dir / f"serve-{n}"
    work.mkdir(parents=True, exist_ok=True)
    broker_port = free_port()
    (work / "mosquitto.conf").write_text(
        f"listener {broker_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "log_dest none\nmax_queued_messages 100000\n"
    )
    broker = subprocess.Popen([mosquitto, "-c", str(work / "mosquitto.conf")])
    sim = LineProcess(
        [
            OUR_PYTHON,
            "-c",
            SIM_CODE,
            json.dumps(
                {
                    "count": n,
                    "host": loopback("127.0.40.1"),
                    "cert_dir": str(ctx.cert_dir),
                    "printing": PRINTING_SHARE,
                }
            ),
        ],
        env=ctx.env,
        log=work / "sim.log",
    )
    serve: subprocess.Popen[bytes] | None = None
    sub: Subscriber | None = None
    try:
        printers = sim.next(300.0)["printers"]
        metrics_port, http_port = free_port(), free_port()
        lines = [
            "[serve]",
            f'mqtt = "mqtt://127.0.0.1:{broker_port}"',
            f"metrics_port = {metrics_port}",
            f"http_port = {http_port}",
        ]
        for i, p in enumerate(printers):
            lines += [
                f"[printers.p{i:04d}]",
                f'host = "{p["host"]}"',
                f'serial = "{p["serial"]}"',
                f'access_code = "{p["access_code"]}"',
                f'ca_file = "{p["ca_path"]}"',
            ]
        config = work / "config.toml"
        config.write_text("\n".join(lines) + "\n")
        config.chmod(0o600)
        env = {**ctx.env, "BAMBU_CONFIG": str(config), "XDG_DATA_HOME": str(work / "data")}
        time.sleep(0.5)  # mosquitto: a moment to bind (it prints nothing with log_dest none)
        sub = Subscriber(broker_port)
        started = time.monotonic()
        serve = subprocess.Popen(
            [BAMBU_LAN, "serve"], env=env, stderr=(work / "serve.log").open("wb")
        )
        connect_timeout = 30.0 if ctx.quick else max(60.0, 0.1 * n)
        online = 0
        while time.monotonic() - started < connect_timeout:
            time.sleep(0.5)
            try:
                online = get_json(f"http://127.0.0.1:{http_port}/healthz")["printers_online"]
            except OSError:
                continue
            if online >= n and len(sub.seen) >= n:
                break
        connect_seconds = time.monotonic() - started
        settle = 1.0 if ctx.quick else 5.0
        time.sleep(settle)
        window = 3.0 if ctx.quick else 30.0
        sim.send("reset")
        sim.next(30.0)
        with sub.lock:
            sub.states.clear()
            sub.messages = 0
            sub.recording = True
        cpu0, t0 = proc_cpu_seconds(serve.pid), time.monotonic()
        rss_samples = []
        while time.monotonic() - t0 < window:
            time.sleep(1.0)
            rss_samples.append(proc_rss_mb(serve.pid))
        cpu1, t1 = proc_cpu_seconds(serve.pid), time.monotonic()
        with sub.lock:
            sub.recording = False
            states = list(sub.states)
            messages = sub.messages
        time.sleep(0.3)  # reports sent just before the window closed have left the simulator
        dump = work / "sent.json"
        sim.send(f"dump {dump}")
        sim.next(60.0)
        sent = json.loads(dump.read_text())
        lags = lags_ms(states, sent)
        scrapes = []
        size = 0
        for _ in range(3 if ctx.quick else 20):
            s0 = time.perf_counter()
            with urllib.request.urlopen(
                f"http://127.0.0.1:{metrics_port}/metrics", timeout=30
            ) as response:
                size = len(response.read())
            scrapes.append((time.perf_counter() - s0) * 1000)
        elapsed = t1 - t0
        per_printer: dict[str, list[float]] = {}
        for serial, arrival in states:
            per_printer.setdefault(serial, []).append(arrival)
        rates = [len(times) / elapsed for times in per_printer.values()]
        return {
            "printers": n,
            "online": online,
            "connect_seconds": round(connect_seconds, 1),
            "window_seconds": round(elapsed, 1),
            "lag_ms": {k: round(v, 1) for k, v in summary(lags).items()},
            "lag_p99_ms": round(sorted(lags)[int(0.99 * (len(lags) - 1))], 1) if lags else None,
            "state_messages_per_second": round(len(states) / elapsed, 1),
            "messages_per_second": round(messages / elapsed, 1),
            "state_messages_per_printer_per_second": {
                k: round(v, 3) for k, v in summary(rates).items()
            },
            "reports_per_second": round(
                sum(1 for times in sent.values() for t in times if t0 <= t <= t1) / elapsed, 1
            ),
            "cpu_percent": round(100 * (cpu1 - cpu0) / elapsed, 1),
            "rss_mb": {k: round(v, 1) for k, v in summary(rss_samples).items()},
            "scrape_ms": {k: round(v, 1) for k, v in summary(scrapes).items()},
            "metrics_bytes": size,
        }
    finally:
        if serve is not None:
            serve.terminate()
            try:
                serve.wait(60)
            except subprocess.TimeoutExpired:
                serve.kill()
        if sub is not None:
            sub.close()
        sim.close(timeout=60)
        broker.terminate()
        broker.wait(10)


def run(ctx: Context) -> dict[str, Any]:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        return {"error": "mosquitto is not installed (apt-get install mosquitto)"}
    sizes = [3] if ctx.quick else [100, 1000]
    out: dict[str, Any] = {
        "sizes": sizes,
        "printing_share": PRINTING_SHARE,
        "budget": {
            "printers": BUDGET_N,
            "lag_p99_ms": BUDGET_LAG_P99_MS,
            "cpu_percent": BUDGET_CPU_PERCENT,
            "rss_mb": BUDGET_RSS_MB,
            "scrape_ms": BUDGET_SCRAPE_MS,
        },
        "runs": {},
    }
    for n in sizes:
        progress(f"serve: {n} simulated printers into one mosquitto")
        try:
            row = one_run(ctx, n, mosquitto)
        except Exception as exc:
            row = {"error": f"{type(exc).__name__}: {exc}"}
        out["runs"][str(n)] = row
        if "error" in row:
            progress(f"  failed: {row['error']}")
        else:
            progress(
                f"  {row['online']}/{n} online in {row['connect_seconds']} s; lag p50 "
                f"{row['lag_ms'].get('median')} ms p99 {row['lag_p99_ms']} ms; "
                f"{row['state_messages_per_second']} states/s; CPU {row['cpu_percent']}%; "
                f"RSS {row['rss_mb'].get('median')} MB; scrape {row['scrape_ms'].get('median')} ms"
            )
    return out


# --- the report's section -------------------------------------------------------------------


def verdict_rows(data: dict[str, Any] | None) -> list[tuple[str, str, str, bool | None]]:
    """(budget, target, measured, passed) for the page's budget table."""
    row = (data or {}).get("runs", {}).get(str(BUDGET_N))
    if not row or "error" in row:
        why = (row or {}).get("error") or (data or {}).get("error") or "not measured"
        return [("`serve`, 1,000 printers into one broker", "see below", why, None)]
    rss = row["rss_mb"]["max"]
    rates = row["state_messages_per_printer_per_second"]
    return [
        ("`serve` report-to-broker lag p99", f"≤ {BUDGET_LAG_P99_MS:.0f} ms",
         f"{row['lag_p99_ms']:.0f} ms (p50 {row['lag_ms']['median']:.0f})",
         row["lag_p99_ms"] <= BUDGET_LAG_P99_MS),
        ("`serve` state messages per printer", "≤ 1 per second",
         f"{rates['median']:.2f}/s median, {rates['max']:.2f}/s max",
         rates["median"] <= 1.0),
        ("`serve` CPU, 1,000 printers", f"≤ {BUDGET_CPU_PERCENT:.0f} % of a core",
         f"{row['cpu_percent']:.1f} %", row["cpu_percent"] <= BUDGET_CPU_PERCENT),
        ("`serve` memory, 1,000 printers", f"≤ {BUDGET_RSS_MB:.0f} MB", f"{rss:.0f} MB",
         rss <= BUDGET_RSS_MB),
        ("`/metrics` scrape, 1,000 printers", f"≤ {BUDGET_SCRAPE_MS:.0f} ms",
         f"{row['scrape_ms']['median']:.0f} ms (median)",
         row["scrape_ms"]["median"] <= BUDGET_SCRAPE_MS),
    ]  # fmt: skip


def section(data: dict[str, Any] | None) -> list[str]:
    out = ["## 9. `bambu-lan serve` into one broker", ""]
    if not data or "error" in data:
        return [*out, f"Not measured: {(data or {}).get('error', 'not run')}", ""]
    out += [
        "`bambu-lan serve` with the MQTT bridge, `/metrics` and the SQLite history, watching "
        f"N simulated A1s ({data['printing_share']:.0%} printing, reporting every second) "
        "into one mosquitto; simulator, broker and serve each in a process of their own (see "
        "`bench_serve.py`). Lag: broker arrival of a state message minus the send time of the "
        "newest report of that printer before it.",
        "",
        "| printers | online | lag p50 / p99 / max | state msg/s | per printer median / max "
        "| all msg/s | serve CPU | RSS median (max) | `/metrics` min / median / max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, row in data["runs"].items():
        if "error" in row:
            out.append(f"| {n} | failed: {row['error']} | | | | | | | |")
            continue
        lag, rss, scrape = row["lag_ms"], row["rss_mb"], row["scrape_ms"]
        out.append(
            f"| {n} | {row['online']} | {lag.get('median', 0):.0f} / {row['lag_p99_ms'] or 0:.0f}"
            f" / {lag.get('max', 0):.0f} ms | {row['state_messages_per_second']:.0f} | "
            f"{row['state_messages_per_printer_per_second'].get('median', 0):.2f} / "
            f"{row['state_messages_per_printer_per_second'].get('max', 0):.2f}/s | "
            f"{row['messages_per_second']:.0f} | {row['cpu_percent']:.1f} % | "
            f"{rss.get('median', 0):.0f} ({rss.get('max', 0):.0f}) MB | "
            f"{scrape.get('min', 0):.0f} / {scrape.get('median', 0):.0f} / "
            f"{scrape.get('max', 0):.0f} ms ({row['metrics_bytes'] // 1024} KiB) |"
        )
    return [*out, ""]
