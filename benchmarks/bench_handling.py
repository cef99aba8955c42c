"""2. Report handling: recorded A1 deltas through each library's message handler, in-process.

The stream is made by the simulator's own ``PrinterModel`` with ``publish`` captured, ticking
at the A1's pace (2 s idle, 1 s busy) through idle time, a print that finishes, an HMS alert
raised and cleared, and a print that fails: every kind of delta a monitor sees. Its first
line is the full report (``msg: 0``), fed once before timing, then the deltas go round and
round through the handler on one thread; the rate is per CPU second of that thread, so per
core. Each library runs in its own process.

Handlers: bambu-lan ``PrinterCore.feed`` (decode + merge + typed state + events;
snapshot sections are built when first read, so two more rows show the protocol functions
alone and the handler followed by a read of every field of every snapshot);
bambulabs-api ``PrinterMQTTClient._on_message``; bambu-printer-manager
``BambuPrinter._on_message`` (after the UTF-8 decode its paho callback does);
bambu-mqtt-comms ``BambuMQTTClient._on_message``. The peers get paho ``MQTTMessage`` objects
built beforehand, as paho would hand them over.
"""

from __future__ import annotations

import cProfile
import json
import pstats
from pathlib import Path
from typing import Any

import orjson
from clients import top_functions
from common import CLIENTS, SERIAL, Context, progress, run_json, summary

BUDGET = 300_000  # deltas per second per core (issue 9: ahead of the raw-dict peers)


def record_stream(path: Path) -> dict[str, Any]:
    """Write the full report and the deltas of a simulated A1's working day, one per line."""
    from bambu_lan.sim.printer import PrinterModel
    from bambu_lan.sim.profiles import get_profile

    model = PrinterModel(get_profile("a1"), SERIAL, seed=7)
    published: list[bytes] = []
    model.publish = published.append

    def run_for(seconds: float) -> None:
        end = model.sim_time + seconds
        while model.sim_time < end:
            model.advance(model.tick_interval)  # the pace of the real printer's pushes

    model.push_full()
    run_for(60)
    model.start_print(layers=40, layer_seconds=6.0)
    run_for(200)
    model.raise_hms("0300_0100_0001_0007")
    run_for(20)
    model.clear_hms()
    run_for(200)  # the print finishes in here
    run_for(60)
    model.start_print(layers=30, layer_seconds=6.0)
    run_for(90)
    model.fail()
    run_for(60)
    lines = [p for p in published if b'"push_status"' in p]  # reports only, not replies
    assert b'"msg":0' in lines[0]
    assert all(b"\n" not in line for line in lines)  # one report per line
    path.write_bytes(b"\n".join(lines) + b"\n")
    deltas = lines[1:]
    return {
        "deltas": len(deltas),
        "mean_delta_bytes": sum(map(len, deltas)) / len(deltas),
        "full_report_bytes": len(lines[0]),
    }


def profile_ours(path: Path, passes: int) -> list[dict[str, Any]]:
    """The top functions of bambu-lan's handler by own time (cProfile, in this process)."""
    from bambu_lan.protocol.core import PrinterCore

    lines = path.read_bytes().splitlines()
    core = PrinterCore(SERIAL)
    core.feed(lines[0], 0.0)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(passes):
        for line in lines[1:]:
            core.feed(line, 0.0)
    profiler.disable()
    return top_functions(pstats.Stats(profiler), 10)


def run(ctx: Context) -> dict[str, Any]:
    stream = ctx.work_dir / "a1-stream.jsonl"
    info = record_stream(stream)
    progress(
        f"report handling: {info['deltas']} recorded A1 deltas, "
        f"{info['mean_delta_bytes']:.0f} bytes on average"
    )
    timing = {"min_seconds": 0.05 if ctx.quick else 1.0, "repeats": 1 if ctx.quick else 5}
    # (library, stage): the stages of bambu-lan's handler show where its time goes.
    runs: list[tuple[str, str]] = [
        ("bambu-lan", "all"),
        ("bambu-lan", "decode"),
        ("bambu-lan", "decode+merge"),
        ("bambu-lan", "decode+merge+state"),
        ("bambu-lan", "pipeline"),
        ("bambu-lan", "every field read"),
        ("orjson.loads", ""),
        ("json.loads", ""),
        *((peer, "") for peer in ctx.peers),
    ]
    results: dict[str, Any] = {}
    for lib, stage in runs:
        name = lib if stage in ("", "all") else f"{lib} [{stage}]"
        cfg = {
            "lib": lib,
            "stage": stage or "all",
            "stream": str(stream),
            "serial": SERIAL,
            **timing,
        }
        try:
            raw = run_json(
                [ctx.python_for(lib), CLIENTS, "handle", json.dumps(cfg)],
                env=ctx.env,
                timeout=300,
                log=ctx.work_dir / "handling.log",
            )
        except Exception as exc:
            results[name] = {"error": str(exc)}
            progress(f"  {name}: failed: {exc}")
            continue
        rates = summary(raw["cpu_rates"])
        results[name] = {
            "deltas_per_cpu_second": rates,
            "deltas_per_wall_second": summary(raw["wall_rates"]),
        }
        progress(f"  {name}: {rates['median']:,.0f} deltas/s per core")
    ours = results["bambu-lan"]["deltas_per_cpu_second"]["median"]
    for entry in results.values():
        if "deltas_per_cpu_second" in entry:
            entry["ratio_to_bambu_lan"] = entry["deltas_per_cpu_second"]["median"] / ours
    return {
        "budget_per_core": BUDGET,
        "stream": info,
        "timing": timing,
        "libraries": results,
        "profile_bambu_lan": profile_ours(stream, 1 if ctx.quick else 10),
        "stream_sample": [orjson.loads(line) for line in stream.read_bytes().splitlines()[5:7]],
    }
