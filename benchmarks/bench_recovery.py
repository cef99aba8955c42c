"""4. Recovery: how long until the library holds a fresh full state after a fault.

One simulated A1, printing (a report a second), in its own process; the benchmark injects
faults through the runner's stdin, and the client process reports when a full report reached
its library's state (and, for bambu-lan, when its watchdog noticed the silence). Both sides
use ``time.monotonic()``, the clock every process on Linux shares.

* drop: the simulator resets every connection at once (TCP RST, no goodbye);
  measured: fault -> the next full report in the library's state. Budget: 1.5 s.
* silence: the simulator stops sending to the open sessions (socket and MQTT keep-alive
  stay healthy) until a ``pushing.start`` comes; the watchdog is 5 s for this run.
  Measured: fault -> watchdog notices (budget: watchdog + 1 s) and fault -> full state again.

Peers get the same faults. A peer that does not recover within the cap once is not asked
again: it will not do better the second time.
"""

from __future__ import annotations

import json
import time
from typing import Any

from common import (
    ACCESS_CODE,
    CLIENTS,
    SERIAL,
    Context,
    LineProcess,
    Simulator,
    progress,
    running,
    summary,
)

WATCHDOG = 5.0  # for the run (the default is 30 s); --quick uses 1 s to stay short
BUDGET_DROP = 1.5
DROP_CAP = 10.0  # seconds to wait for a fresh full state after a drop


def silence_cap(watchdog: float) -> float:
    """Seconds to wait for a fresh full state after the silence began."""
    return 2 * watchdog + 5.0


def fault_rounds(
    sim: Simulator, client: LineProcess, fault: str, rounds: int, cap: float, *, watch_kick: bool
) -> list[dict[str, float | None]]:
    samples: list[dict[str, float | None]] = []
    for round_ in range(rounds):
        # Drain what came in between rounds, then fault at a random phase of the report cycle.
        while not client.lines.empty():
            client.lines.get_nowait()
        t_fault = sim.command(fault)["t"]
        sample: dict[str, float | None] = {"full": None, "noticed": None, "silent_for": None}
        deadline = time.monotonic() + cap
        while (left := deadline - time.monotonic()) > 0:
            event = client.wait_for(
                lambda v, t=t_fault: (
                    isinstance(v, dict) and v.get("ev") in ("full", "kick") and v["t"] > t
                ),
                timeout=left,
            )
            if event is None:
                break
            if event["ev"] == "kick" and sample["noticed"] is None:
                sample["noticed"] = event["t"] - t_fault
                sample["silent_for"] = event["silent_for"]  # since the last report came
            elif event["ev"] == "full":
                sample["full"] = event["t"] - t_fault
                break
        samples.append(sample)
        if sample["full"] is None:
            break  # it did not recover: no point asking again
        if round_ + 1 < rounds:
            time.sleep(1.3)  # let it settle; also puts the next fault at another phase
    if not watch_kick:
        for sample in samples:
            del sample["noticed"], sample["silent_for"]
    return samples


def one_library(ctx: Context, sim: Simulator, lib: str, watchdog: float) -> dict[str, Any]:
    printer = sim.printers[0]
    cfg = {
        "lib": lib,
        "host": printer["host"],
        "port": printer["port"],
        "serial": SERIAL,
        "access_code": ACCESS_CODE,
        "ca_path": printer["ca_path"],
        "timeout": 30,
        "watchdog": watchdog,
    }
    ours = lib == "bambu-lan"
    client = LineProcess(
        [ctx.python_for(lib), CLIENTS, "recover", json.dumps(cfg)],
        env=ctx.env,
        log=ctx.work_dir / f"recovery-{lib}.log",
    )
    try:
        ready = client.wait_for(
            lambda v: isinstance(v, dict) and v.get("ev") in ("ready", "full"), timeout=45
        )
        if ready is None:
            return {"error": "no first full state"}
        time.sleep(0.3 if ctx.quick else 1.5)
        drops = 1 if ctx.quick else (6 if ours else 3)
        silences = 1 if ctx.quick else (3 if ours else 1)
        drop = fault_rounds(sim, client, "drop", drops, DROP_CAP, watch_kick=False)
        cap = silence_cap(watchdog)
        silence = fault_rounds(sim, client, "silent", silences, cap, watch_kick=ours)
    finally:
        client.close(timeout=15)
    return {"drop": describe(drop, DROP_CAP), "silence": describe(silence, cap)}


def describe(samples: list[dict[str, float | None]], cap: float) -> dict[str, Any]:
    out: dict[str, Any] = {"samples": samples, "cap_seconds": cap}
    for key in ("full", "noticed", "silent_for"):
        values = [s[key] for s in samples if key in s]
        if not values:
            continue
        got = [v for v in values if v is not None]
        out[key] = (
            summary(got) if len(got) == len(values) else {"n": len(values), "recovered": len(got)}
        )
    return out


def run(ctx: Context) -> dict[str, Any]:
    watchdog = 1.0 if ctx.quick else WATCHDOG
    progress(f"recovery: drops and silences (watchdog {watchdog:g} s)")
    out: dict[str, Any] = {
        "watchdog_seconds": watchdog,
        "budget": {
            "drop_to_full_seconds": BUDGET_DROP,
            "silence_noticed_seconds": watchdog + 1.0,
        },
        "libraries": {},
    }
    with running(
        Simulator(
            ctx, "--host", "127.0.20.4", "--serial", SERIAL, "--printing", "1", name="sim_recovery"
        )
    ) as sim:
        assert isinstance(sim, Simulator)
        for lib in ["bambu-lan", *ctx.peers]:
            try:
                result = one_library(ctx, sim, lib, watchdog)
            except Exception as exc:
                result = {"error": str(exc)}
            out["libraries"][lib] = result
            progress(f"  {lib}: {brief(result)}")
    return out


def brief(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    parts = []
    for fault in ("drop", "silence"):
        full = result[fault].get("full", {})
        if "median" in full:
            parts.append(f"{fault} -> full state {full['median']:.2f} s (median)")
        else:
            parts.append(f"{fault}: no fresh full state within {result[fault]['cap_seconds']:g} s")
    return "; ".join(parts)
