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

import contextlib
import json
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
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
#: Runs at each size (each: a fresh broker, simulator and serve); figures are given as
#: min / median / max over the runs that completed, failed runs are counted beside them.
RUNS = {100: 1, BUDGET_N: 3}

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
    """A free port below the ephemeral range: a thousand outgoing connections (ours, the
    simulator's, other programs') can never take it between this choice and its use."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


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
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"serve-{n}-", dir=ctx.work_dir))
    try:
        return _measure(ctx, n, mosquitto, work)
    except Exception as exc:
        said = _serve_errors(work / "serve.log")
        raise RuntimeError(f"{exc}" + (f" (serve said: {said})" if said else "")) from exc


def _serve_errors(log: Path) -> str:
    """serve's error lines (its log is lost with the temporary directory otherwise)."""
    if not log.exists():
        return ""
    lines = log.read_text(errors="replace").splitlines()
    wanted = [line for line in lines if line.startswith(("error:", "hint:")) or " ERROR " in line]
    return " / ".join(wanted[-3:])


def _measure(ctx: Context, n: int, mosquitto: str, work: Path) -> dict[str, Any]:
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
        # Then Home Assistant's discovery configs (about 45 per printer) are sent, in batches:
        # the window measures the steady state after it.
        while time.monotonic() - started < 2 * connect_timeout:
            health = get_json(f"http://127.0.0.1:{http_port}/healthz")
            if health["sinks"].get("mqtt", {}).get("discovery_pending", 0) == 0:
                break
            time.sleep(0.5)
        announce_seconds = time.monotonic() - started
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
            "announce_seconds": round(announce_seconds, 1),
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


#: The figures of one run that are summarised over the runs of a size.
FIGURES = {
    "lag_p50_ms": lambda r: r["lag_ms"]["median"],
    "lag_p99_ms": lambda r: r["lag_p99_ms"],
    "lag_max_ms": lambda r: r["lag_ms"]["max"],
    "state_messages_per_second": lambda r: r["state_messages_per_second"],
    "state_messages_per_printer_per_second": (
        lambda r: r["state_messages_per_printer_per_second"]["median"]
    ),
    "messages_per_second": lambda r: r["messages_per_second"],
    "cpu_percent": lambda r: r["cpu_percent"],
    "rss_mb": lambda r: r["rss_mb"]["max"],
    "scrape_ms": lambda r: r["scrape_ms"]["median"],
    "connect_seconds": lambda r: r["connect_seconds"],
    "announce_seconds": lambda r: r["announce_seconds"],
}


def run(ctx: Context) -> dict[str, Any]:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        return {"error": "mosquitto is not installed (apt-get install mosquitto)"}
    sizes = [3] if ctx.quick else list(RUNS)
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
        "sizes_measured": {},
    }
    for n in sizes:
        runs: list[dict[str, Any]] = []
        for index in range(1 if ctx.quick else RUNS[n]):
            progress(f"serve: {n} simulated printers into one mosquitto (run {index + 1})")
            try:
                row = one_run(ctx, n, mosquitto)
            except Exception as exc:
                row = {"error": f"{type(exc).__name__}: {exc}"}
            runs.append(row)
            if "error" in row:
                progress(f"  failed: {row['error']}")
            else:
                progress(
                    f"  {row['online']}/{n} online in {row['connect_seconds']} s, announced in "
                    f"{row['announce_seconds']} s; lag p50 "
                    f"{row['lag_ms'].get('median')} ms p99 {row['lag_p99_ms']} ms; "
                    f"{row['state_messages_per_second']} states/s; CPU {row['cpu_percent']}%; "
                    f"RSS {row['rss_mb'].get('max')} MB; scrape {row['scrape_ms'].get('median')} ms"
                )
        done = [r for r in runs if "error" not in r]
        out["sizes_measured"][str(n)] = {
            "runs": runs,
            "failures": len(runs) - len(done),
            "errors": [r["error"] for r in runs if "error" in r],
            "figures": {
                name: {
                    "min": min(values),
                    "median": statistics.median(values),
                    "max": max(values),
                }
                for name, get in FIGURES.items()
                if (values := [get(r) for r in done if get(r) is not None])
            },
        }
    return out


# --- the report's section -------------------------------------------------------------------


def _mmm(figure: dict[str, float], digits: int = 0) -> str:
    return " / ".join(f"{figure[k]:.{digits}f}" for k in ("min", "median", "max"))


def verdict_rows(data: dict[str, Any] | None) -> list[tuple[str, str, str, bool | None]]:
    """(budget, target, measured, passed) for the page's budget table (medians of the runs)."""
    size = (data or {}).get("sizes_measured", {}).get(str(BUDGET_N))
    figures = (size or {}).get("figures")
    if not figures:
        why = "; ".join((size or {}).get("errors", [])) or (data or {}).get("error")
        return [("`serve`, 1,000 printers into one broker", "see below", why or "not measured",
                 None)]  # fmt: skip
    failed = size["failures"]
    note = f" ({failed} of {len(size['runs'])} runs failed)" if failed else ""
    lag, rate = figures["lag_p99_ms"], figures["state_messages_per_printer_per_second"]
    cpu, rss, scrape = figures["cpu_percent"], figures["rss_mb"], figures["scrape_ms"]
    return [
        ("`serve` report-to-broker lag p99, 1,000 printers", f"≤ {BUDGET_LAG_P99_MS:.0f} ms",
         f"{_mmm(lag)} ms (min / median / max of runs; p50 {figures['lag_p50_ms']['median']:.0f})"
         + note, lag["median"] <= BUDGET_LAG_P99_MS),
        ("`serve` state messages per printer", "≤ 1 per second",
         f"{_mmm(rate, 3)}/s" + note, rate["median"] <= 1.0),
        ("`serve` CPU, 1,000 printers", f"≤ {BUDGET_CPU_PERCENT:.0f} % of a core",
         f"{_mmm(cpu, 1)} %" + note, cpu["median"] <= BUDGET_CPU_PERCENT),
        ("`serve` memory, 1,000 printers", f"≤ {BUDGET_RSS_MB:.0f} MB",
         f"{_mmm(rss)} MB (largest RSS of each run)" + note, rss["median"] <= BUDGET_RSS_MB),
        ("`/metrics` scrape, 1,000 printers", f"≤ {BUDGET_SCRAPE_MS:.0f} ms",
         f"{_mmm(scrape)} ms (median scrape of each run)" + note,
         scrape["median"] <= BUDGET_SCRAPE_MS),
    ]  # fmt: skip


def section(data: dict[str, Any] | None) -> list[str]:
    out = ["## 9. `bambu-lan serve` into one broker", ""]
    if not data or "error" in data:
        return [*out, f"Not measured: {(data or {}).get('error', 'not run')}", ""]
    out += [
        "`bambu-lan serve` with the MQTT bridge, `/metrics`, the web page and the SQLite "
        f"history, watching N simulated A1s ({data['printing_share']:.0%} printing, "
        "reporting every second) into "
        "one mosquitto; simulator, broker and serve each in a process of their own (see "
        "`bench_serve.py`). Each run starts all three afresh and measures a 30 s window once "
        "every printer is online and its Home Assistant discovery configs are sent (the "
        "steady state). Camera pictures: the simulated fleet has none. Lag: broker arrival of"
        " a state message minus the send time of the newest report of that printer before it "
        "(p50 and p99 of all messages in the window). CPU: serve's user + system time over "
        "the window. Memory: serve's largest RSS in the window. Scrape: the median of 20 "
        "`/metrics` requests. Figures are min / median / max over the runs.",
        "",
        "| printers | runs (failed) | lag p50 | lag p99 | state msg/printer/s | all msg/s "
        "| serve CPU | RSS | `/metrics` scrape |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, size in data.get("sizes_measured", {}).items():
        f = size["figures"]
        if not f:
            out.append(f"| {n} | {len(size['runs'])} ({size['failures']}): "
                       f"{'; '.join(size['errors'])} | | | | | | | |")  # fmt: skip
            continue
        out.append(
            f"| {n} | {len(size['runs'])} ({size['failures']}) | {_mmm(f['lag_p50_ms'])} ms | "
            f"{_mmm(f['lag_p99_ms'])} ms | {_mmm(f['state_messages_per_printer_per_second'], 3)} "
            f"| {_mmm(f['messages_per_second'])} | {_mmm(f['cpu_percent'], 1)} % | "
            f"{_mmm(f['rss_mb'])} MB | {_mmm(f['scrape_ms'])} ms |"
        )
    errors = [e for size in data.get("sizes_measured", {}).values() for e in size["errors"]]
    if errors:
        out += ["", "Failed runs: " + "; ".join(sorted(set(errors)))]
    return [*out, ""]
