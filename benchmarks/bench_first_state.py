"""1. First full state: process start -> the library holds the printer's full state, cold.

Every run is a fresh process (interpreter start, imports, TLS, MQTT, pushall, the msg 0
report): the parent notes ``time.monotonic()`` just before starting it, the child the moment
its library has the full state. The clients take turns in a rotating order, so that drift on
the machine spreads over all of them; one warm-up run each (not counted) fills the page cache.

Two simulators: ``bambu-lan sim`` as users run it (CONNACK after 0.1 s, like an A1: it is in
every client's figure), and the runner with no CONNACK delay, which leaves only the clients'
own cost.

Besides the whole process, each client's *in-process* time is reported: from its imports done
to the full state (TLS, MQTT, pushall, the report), against the paho script's (budget 1.15x).
``bambu-lan status --json`` runs the command line in the same harness (its command's imports
are made while it runs, so they count in its in-process time). The package's bytecode is
compiled first and checked in a child (``without_bytecode`` in the results).
"""

from __future__ import annotations

import json
import time
from typing import Any

from common import (
    ACCESS_CODE,
    CLIENTS,
    OURS,
    SERIAL,
    CliSimulator,
    Context,
    LineProcess,
    Simulator,
    ensure_bytecode,
    import_profile,
    progress,
    run_json,
    running,
    summary,
)

FLOOR = "paho"
STATUS = "bambu-lan-status"  # `bambu-lan status --json`, in the same harness


def first_state_config(lib: str, printer: dict[str, Any]) -> dict[str, Any]:
    return {
        "lib": lib,
        "host": printer["host"],
        "port": printer["port"],
        "serial": SERIAL,
        "access_code": ACCESS_CODE,
        "ca_path": printer["ca_path"],
        "timeout": 30,
    }


def one_run(ctx: Context, lib: str, printer: dict[str, Any]) -> dict[str, float]:
    cfg = first_state_config(lib, printer)
    t0 = time.monotonic()
    marks = run_json(
        [ctx.python_for(lib), CLIENTS, "first-state", json.dumps(cfg)],
        env=ctx.env,
        timeout=60,
        log=ctx.work_dir / "first_state.log",
    )
    return {
        "total": marks["full"] - t0,
        "startup": marks["main"] - t0,  # interpreter + site until the client's first line
        "imports": marks["imported"] - marks["main"],
        "connect_to_full": marks["full"] - marks["imported"],
    }


def measure(
    ctx: Context, sim: LineProcess, libs: list[str], runs: int, *, profile: bool = False
) -> dict[str, Any]:
    printer = sim.printers[0]  # type: ignore[attr-defined]
    samples: dict[str, list[dict[str, float]]] = {lib: [] for lib in libs}
    errors: dict[str, str] = {}
    for lib in libs:
        try:
            one_run(ctx, lib, printer)  # warm-up
        except Exception as exc:  # a peer that fails is reported, the others go on
            errors[lib] = str(exc)
    active = [lib for lib in libs if lib not in errors]
    for index in range(runs):
        shift = index % len(active) if active else 0
        for lib in active[shift:] + active[:shift]:
            try:
                samples[lib].append(one_run(ctx, lib, printer))
            except Exception as exc:
                errors.setdefault(lib, str(exc))
        progress(f"  run {index + 1}/{runs} done")
    result: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    if profile:
        # Where the imports of the floor and of bambu-lan go, lazy ones while connecting too.
        for lib in (FLOOR, "bambu-lan"):
            cfg = first_state_config(lib, printer)
            profiles[lib] = import_profile(
                [ctx.python_for(lib), CLIENTS, "first-state", json.dumps(cfg)], env=ctx.env
            )
    floor = summary([s["total"] for s in samples.get(FLOOR, [])])
    floor_in = summary([s["connect_to_full"] for s in samples.get(FLOOR, [])])
    for lib in libs:
        if lib in errors and not samples[lib]:
            result[lib] = {"error": errors[lib]}
            continue
        totals = summary([s["total"] for s in samples[lib]])
        entry: dict[str, Any] = {
            "total_seconds": totals,
            "phases_median_seconds": {
                phase: summary([s[phase] for s in samples[lib]])["median"]
                for phase in ("startup", "imports", "connect_to_full")
            },
            "samples": samples[lib],
        }
        # In-process: imports done -> full state (the library's own connect path).
        entry["in_process_seconds"] = in_process = summary(
            [s["connect_to_full"] for s in samples[lib]]
        )
        if floor.get("n"):
            entry["ratio_to_paho"] = {
                "median": totals["median"] / floor["median"],
                "p90": totals["p90"] / floor["p90"],
            }
            entry["in_process_ratio_to_paho"] = {
                "median": in_process["median"] / floor_in["median"],
                "p90": in_process["p90"] / floor_in["p90"],
            }
        if lib in errors:
            entry["error"] = errors[lib]
        result[lib] = entry
    return {"libraries": result, "import_profiles": profiles}


def run(ctx: Context) -> dict[str, Any]:
    libs = [FLOOR, *OURS, STATUS, *ctx.peers]
    runs = 1 if ctx.quick else 10
    out: dict[str, Any] = {"runs": runs, "budget_ratio": 1.5, "budget_in_process_ratio": 1.15}
    out["bytecode"] = ensure_bytecode(ctx.env)
    progress(f"first full state: {', '.join(libs)}; {runs} runs each, `bambu-lan sim`")
    with running(CliSimulator(ctx, "127.0.20.1", name="sim_first_state")) as sim:
        out["a1_connack_delay"] = measure(ctx, sim, libs, runs, profile=True)
    if not ctx.quick:
        progress("first full state, no CONNACK delay (sim_runner --auth-delay 0)")
        with running(
            Simulator(
                ctx,
                "--host",
                "127.0.20.2",
                "--serial",
                SERIAL,
                "--auth-delay",
                "0",
                name="sim_first_state_0",
            )
        ) as sim:
            out["no_connack_delay"] = measure(ctx, sim, libs, runs)
    return out
