"""5. Cold start of the command line: ``bambu-lan --help`` and ``bambu-lan status --json``.

Wall time of the whole process, as a person at a shell sees it (exit included), median of
N fresh processes after one warm-up run (the page cache is warm, as it is for anyone who
runs a command twice). ``status --json`` talks to ``bambu-lan sim`` in another process.

The interpreter alone (``python -c pass``, with this venv's site) is the floor; ``-X
importtime`` names the modules that cost ``--help`` the most, and a probe says whether
``--help`` imports the library itself (paho, asyncio, ...), which it should not need to.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

from common import (
    ACCESS_CODE,
    BAMBU_LAN,
    OUR_PYTHON,
    SERIAL,
    CliSimulator,
    Context,
    ensure_bytecode,
    import_profile,
    progress,
    running,
    summary,
)

BUDGET_HELP = 0.200  # seconds (design.md)
RUN_MAIN = "import sys; from bambu_lan.cli.main import main; sys.exit(main())"


def wall_times(args: list[str], env: dict[str, str], runs: int) -> dict[str, Any]:
    def once() -> float:
        t0 = time.perf_counter()
        done = subprocess.run(args, env=env, capture_output=True, check=False, timeout=120)
        elapsed = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:3])} failed: {done.stderr.decode()[-300:]}")
        return elapsed

    once()  # warm-up
    return summary([once() for _ in range(runs)])


def cli_loads_library(env: dict[str, str]) -> bool:
    probe = "import sys, bambu_lan.cli.main; print('bambu_lan.printer' in sys.modules)"
    done = subprocess.run(
        [str(OUR_PYTHON), "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip() == "True"


def run(ctx: Context) -> dict[str, Any]:
    runs = 1 if ctx.quick else 10
    env = ctx.env
    python = str(OUR_PYTHON)
    progress(f"cold start: {runs} runs each")
    out: dict[str, Any] = {"runs": runs, "budget_help_seconds": BUDGET_HELP}
    out["bytecode"] = ensure_bytecode(env)
    out["python -c pass"] = wall_times([python, "-c", "pass"], env, runs)
    out["bambu-lan --help"] = wall_times([str(BAMBU_LAN), "--help"], env, runs)
    progress(f"  bambu-lan --help: {out['bambu-lan --help']['median'] * 1000:.0f} ms (median)")
    out["import_profile_help"] = import_profile([python, "-c", RUN_MAIN, "--help"], env=env)
    # Whether `--help` pays for the library itself (paho, asyncio, ...): it should not.
    out["help_imports_library"] = cli_loads_library(env)
    with running(CliSimulator(ctx, "127.0.20.3", name="sim_cold_start")) as sim:
        printer = sim.printers[0]  # type: ignore[attr-defined]
        status = [
            str(BAMBU_LAN),
            "status",
            "--json",
            "--host",
            printer["host"],
            "--port",
            str(printer["port"]),
            "--serial",
            SERIAL,
            "--access-code",
            ACCESS_CODE,
            "--ca-file",
            printer["ca_path"],
        ]
        out["bambu-lan status --json"] = wall_times(status, env, runs)
    progress(
        f"  bambu-lan status --json: "
        f"{out['bambu-lan status --json']['median'] * 1000:.0f} ms (median)"
    )
    return out
