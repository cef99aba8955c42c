"""Simulated printers in their own process, with faults on command (the benchmarks' simulator).

    .venv/bin/python benchmarks/sim_runner.py --count 1000 --host 127.0.1.1 --printing 0.9

Starts one ``SimulatedPrinter`` (``--count 1``) or a ``SimFleet`` in address mode (one
loopback address each, same port), prints one JSON line ``{"printers": [...], "pid": ...}``
with every printer's ``connection_info()``, then reads commands from stdin, one per line, and
answers each with one JSON line:

    drop        every connection of every printer is reset; {"t": <time.monotonic()>, ...}
    silent      every open session stops receiving (until pushing.start); {"t": ...}
    stats       CPU seconds and RSS of this process, reports published and delivered
    quit / EOF  stop the printers and exit

``t`` is ``time.monotonic()`` just before the fault: on Linux that clock is shared by every
process, so the benchmark compares it with times its clients report. The simulator runs in its
own process so that its CPU never counts as the measured client's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bambu_lan.sim import SimFleet, SimulatedPrinter


def rss_mb() -> float:
    """Resident set size now (Linux /proc; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(args: argparse.Namespace) -> tuple[SimulatedPrinter | SimFleet, list[SimulatedPrinter]]:
    options: dict[str, Any] = {
        "cert_dir": args.cert_dir,
        "time_scale": args.speed,
        "access_code": args.access_code,
        "auth_delay": args.auth_delay,
        "seed": args.seed,
    }
    if args.count == 1:
        printer = SimulatedPrinter("a1", args.serial, host=args.host, port=args.port, **options)
        return printer, [printer]
    fleet = SimFleet(
        args.count, "a1", host_mode="address", base_host=args.host, port=args.port, **options
    )
    return fleet, fleet.printers


def start_prints(printers: list[SimulatedPrinter], fraction: float, layers: int) -> int:
    """Start a long print on ``fraction`` of the printers, spread evenly over the list (so
    that the first N of a farm have the same mix as all of them)."""
    started = 0
    for index, printer in enumerate(printers):
        # Printer i prints when the running share of printing ones is behind ``fraction``.
        if started < round((index + 1) * fraction):
            printer.model.start_print(layers=layers, layer_seconds=6.0)
            started += 1
    return started


async def serve(args: argparse.Namespace) -> None:
    target, printers = build(args)
    await target.start()
    try:
        printing = start_prints(printers, args.printing, args.layers)
        listing = [p.connection_info() for p in printers]
        print(
            json.dumps({"printers": listing, "printing": printing, "pid": os.getpid()}), flush=True
        )
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            command = line.strip()
            if not line or command == "quit":
                return
            reply: dict[str, Any] = {"cmd": command}
            if command == "drop":
                reply["t"] = time.monotonic()
                reply["dropped"] = sum(p.drop_connections() for p in printers)
            elif command == "silent":
                reply["t"] = time.monotonic()
                for printer in printers:
                    printer.go_silent("start")
            elif command == "stats":
                reply["t"] = time.monotonic()
                reply["cpu_seconds"] = cpu_seconds()
                reply["rss_mb"] = rss_mb()
                reply["reports"] = sum(p.broker.stats.reports for p in printers)
                reply["deliveries"] = sum(p.broker.stats.deliveries for p in printers)
                reply["sessions"] = sum(p.broker.session_count for p in printers)
                closes: Counter[str] = Counter()
                for printer in printers:
                    closes.update(printer.broker.closes)
                reply["closes"] = dict(closes)  # why connections ended, by reason
            else:
                reply["error"] = "unknown command"
            print(json.dumps(reply), flush=True)
    finally:
        await target.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--host", default="127.0.20.1", help="the (first) loopback address")
    parser.add_argument("--port", type=int, default=8883)
    parser.add_argument("--serial", default=None, help="with --count 1 only")
    parser.add_argument("--access-code", default="12345678")
    parser.add_argument("--cert-dir", type=Path, required=True)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated s per real s")
    parser.add_argument(
        "--auth-delay", type=float, default=0.1, help="CONNECT to CONNACK, s (0.1 like an A1)"
    )
    parser.add_argument("--printing", type=float, default=0.0, help="share printing, 0..1")
    parser.add_argument("--layers", type=int, default=100_000, help="layers of those prints")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
