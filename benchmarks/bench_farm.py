"""3. Farm scale: one process watching N simulated printers, each reporting about once a second.

The simulator runs the whole fleet in its own process (one loopback address per printer, port
8883, time at normal speed; nine in ten printers are printing, which pushes every second, the
rest idle, every 2-4 s). The watching process connects to the first N, waits until every one
has a full state, lets it settle, then measures over a window: CPU time of the process (all
threads, ``getrusage``) over wall time, its resident memory now and at peak (``ru_maxrss``:
the connect phase included) and the reports it took in. CPU is also given as min/median/max
over five equal parts of the window, and memory as RSS per printer (RSS at the end minus RSS
just before the first client, over N). A second run of bambu-lan at the budget's size traces
Python's allocations (tracemalloc) to say what each printer costs, by file. The simulator's
own CPU over the same window is noted, to show that it was not the limit.

bambu-lan runs a ``Farm`` (one asyncio loop, one MQTT session per printer) and drains its
merged event stream; the peers run one client object per printer, as their APIs are meant to
be used (each has paho's network thread; bambu-printer-manager adds a watchdog thread).
"""

from __future__ import annotations

import json
from typing import Any

from common import CLIENTS, Context, LineProcess, Simulator, progress, running

BUDGET_N = 1000
BUDGET_CPU_PERCENT = 6.0
BUDGET_RSS_MB = 64.0
PRINTING_SHARE = 0.9


def one_farm(
    ctx: Context, sim: Simulator, lib: str, n: int, sizes: list[int], *, trace: bool = False
) -> dict[str, Any]:
    window = 1.0 if ctx.quick else (10.0 if n <= 100 else 15.0)
    cfg = {
        "lib": lib,
        "printers": sim.printers[:n],
        "window": window,
        "parts": 5,  # CPU min/median/max over five equal parts of the window
        "tracemalloc": trace,
        "settle": 0.3 if ctx.quick else 3.0,
        "connect_timeout": 30.0 if ctx.quick else max(30.0, 0.06 * n),
        "client_timeout": 15.0,
        "profile_seconds": (0.5 if ctx.quick else 5.0)
        if lib == "bambu-lan" and n == sizes[-1]
        else 0,
    }
    path = ctx.work_dir / f"farm-{lib}-{n}{'-traced' if trace else ''}.json"
    path.write_text(json.dumps(cfg))  # 1,000 printers do not fit in an argument comfortably
    before = sim.command("stats")
    log = ctx.work_dir / f"farm-{lib}-{n}{'-traced' if trace else ''}.log"
    client = LineProcess(
        [ctx.python_for(lib), CLIENTS, "farm", json.dumps({"config": str(path)})],
        env=ctx.env,
        log=log,
    )
    result: dict[str, Any] | None = None
    timeout = cfg["connect_timeout"] + cfg["settle"] + window + 60
    try:
        key = "by_file" if trace else "cpu_percent"
        result = client.wait_for(lambda v: isinstance(v, dict) and key in v, timeout)
    except EOFError:
        pass  # it died: the reason is in its log
    finally:
        after = sim.command("stats")  # before the client's exit closes its connections
        client.close(timeout=30)
    if result is None:
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        if len(lines) > 1:  # the first line is the command
            why = f"it died (exit {client.proc.returncode}): {lines[-1][:200]}"
        else:
            why = f"no result within {timeout:.0f} s; stopped"
        return {"error": f"the watching process gave no figures: {why}"}
    if trace:
        return result
    # The simulator's CPU over the client's whole run (connect phase included): an upper bound
    # of its load during the window.
    wall = after["t"] - before["t"]
    result["sim_cpu_percent"] = 100 * (after["cpu_seconds"] - before["cpu_seconds"]) / wall
    result["sim_reports_per_second"] = (after["reports"] - before["reports"]) / wall
    result["messages_per_printer_per_second"] = result["messages_per_second"] / n
    result["sim_closes"] = {
        reason: count - before["closes"].get(reason, 0)
        for reason, count in after["closes"].items()
        if count > before["closes"].get(reason, 0)
    }
    return result


def run(ctx: Context) -> dict[str, Any]:
    sizes = [3] if ctx.quick else [10, 100, 1000, 5000]
    progress(f"farm scale: starting {max(sizes)} simulated A1s ({PRINTING_SHARE:.0%} printing)")
    out: dict[str, Any] = {
        "sizes": sizes,
        "printing_share": PRINTING_SHARE,
        "budget": {
            "printers": BUDGET_N,
            "cpu_percent": BUDGET_CPU_PERCENT,
            "rss_mb": BUDGET_RSS_MB,
        },
        "libraries": {},
    }
    with running(
        Simulator(
            ctx,
            "--count",
            str(max(sizes)),
            "--host",
            "127.0.1.1",
            "--printing",
            str(PRINTING_SHARE),
            name="sim_farm",
        )
    ) as sim:
        assert isinstance(sim, Simulator)
        idle = sim.command("stats")
        out["sim_start_rss_mb"] = idle["rss_mb"]
        for lib in ["bambu-lan", *ctx.peers]:
            rows: dict[str, Any] = {}
            for n in sizes:
                progress(f"  {lib}: {n} printers")
                try:
                    row = one_farm(ctx, sim, lib, n, sizes)
                except Exception as exc:
                    row = {"error": str(exc)}
                rows[str(n)] = row
                if "error" in row:
                    progress(f"    failed: {row['error']}")
                else:
                    progress(
                        f"    {row['full_states']}/{n} full states in "
                        f"{row['connect_seconds']:.1f} s; CPU {row['cpu_percent']:.1f}%, "
                        f"RSS {row['rss_mb']:.0f} MB (peak {row['peak_rss_mb']:.0f}), "
                        f"{row['messages_per_second']:.0f} msg/s"
                    )
                if not holds(row, n):
                    # A library that cannot hold N printers will not hold more: say so once.
                    for bigger in sizes[sizes.index(n) + 1 :]:
                        rows[str(bigger)] = {"skipped": f"could not hold {n} printers"}
                    break
            out["libraries"][lib] = rows
        if BUDGET_N in sizes or ctx.quick:
            traced_n = BUDGET_N if BUDGET_N in sizes else sizes[-1]
            progress(f"  bambu-lan: {traced_n} printers again, with tracemalloc (memory by file)")
            try:
                out["memory_profile"] = one_farm(ctx, sim, "bambu-lan", traced_n, sizes, trace=True)
            except Exception as exc:
                out["memory_profile"] = {"error": str(exc)}
    return out


def holds(row: dict[str, Any], n: int) -> bool:
    """Whether a library coped with N printers: nearly all of them got a full state and the
    process kept up (under one core)."""
    if "error" in row:
        return False
    return row["full_states"] >= 0.9 * n and row["cpu_percent"] < 95.0
