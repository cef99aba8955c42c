"""Run the benchmarks and write ``docs/benchmarks.md`` and ``docs/benchmarks.json``.

    .venv/bin/python benchmarks/run.py              everything (about 15 minutes on 2 cores)
    .venv/bin/python benchmarks/run.py --quick      a smoke run of every section, seconds
    .venv/bin/python benchmarks/run.py --only farm --only recovery
    .venv/bin/python benchmarks/run.py --no-peers   bambu-lan and bare paho only

Sections: first_state, handling, farm, recovery, cold_start, inputs, ftps, camera, serve, web (see
``bench_*.py``). The peers (bambulabs-api, bambu-printer-manager, bambu-mqtt-comms) are
installed from PyPI into ``benchmarks/.peers-venv`` on first use. Every simulator runs in its
own process on 127.0.0.0/8. A full run writes into ``docs/``; ``--only`` replaces just those
sections of the last full run's JSON and rewrites the page from it; ``--quick`` writes into
``benchmarks/results/`` unless ``--out-dir`` says otherwise. Not part of the test suite:
budgets are measured here, never asserted by timed tests (design.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_camera
import bench_cold_start
import bench_farm
import bench_first_state
import bench_ftps
import bench_handling
import bench_inputs
import bench_recovery
import bench_serve
import bench_web
import peers
import report
from common import BENCH_DIR, ROOT, Context, child_env, machine, progress

SECTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "first_state": bench_first_state.run,
    "handling": bench_handling.run,
    "farm": bench_farm.run,
    "recovery": bench_recovery.run,
    "cold_start": bench_cold_start.run,
    "inputs": bench_inputs.run,
    "ftps": bench_ftps.run,
    "camera": bench_camera.run,
    "serve": bench_serve.run,
    "web": bench_web.run,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke mode: every section, minimal sizes, a few seconds each",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SECTIONS),
        metavar="NAME",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}",
    )
    parser.add_argument("--no-peers", action="store_true", help="skip the peer libraries")
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="where benchmarks.md/.json go (default: docs/; --quick: benchmarks/results/)",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite benchmarks.md from benchmarks.json in --out-dir (measure nothing)",
    )
    parser.add_argument(
        "--keep-work",
        action="store_true",
        help="keep the temporary directory (logs of every child process)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    names = args.only or list(SECTIONS)
    out_dir: Path = args.out_dir or (BENCH_DIR / "results" if args.quick else ROOT / "docs")
    if args.render:  # after a change to report.py: the same figures, the page anew
        json_path = out_dir / ("benchmarks-quick.json" if args.quick else "benchmarks.json")
        json_path.with_suffix(".md").write_text(report.render(json.loads(json_path.read_text())))
        progress(f"wrote {json_path.with_suffix('.md')}")
        return 0
    work_dir = Path(tempfile.mkdtemp(prefix="bambu-lan-bench-"))
    # The simulator's keys are slow to make for 1,000 printers: a full run keeps them.
    cert_dir = work_dir / "certs" if args.quick else BENCH_DIR / ".cache" / "sim-certs"
    ctx = Context(quick=args.quick, work_dir=work_dir, cert_dir=cert_dir, env=child_env(work_dir))
    measured = machine()  # before: the commit that is measured, not one made during the run
    progress(
        f"bambu-lan benchmarks ({'quick' if args.quick else 'full'}): {', '.join(names)}; "
        f"logs in {work_dir}"
    )

    peer_info: dict[str, Any] = {}
    if not args.no_peers:
        ctx.peers, peer_info = peers.ensure()
        for lib, info in peer_info.items():
            progress(f"peer {lib}: " + (info.get("version") or f"unavailable: {info['error']}"))

    sections: dict[str, Any] = {}
    failed = False
    for name in names:
        t0 = time.monotonic()
        try:
            data = SECTIONS[name](ctx)
        except Exception as exc:  # one broken section must not lose the others' figures
            failed = True
            progress(f"{name} FAILED: {exc}")
            data = {
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-2000:],
            }
        data["seconds"] = time.monotonic() - t0
        data["measured_at"] = now()
        sections[name] = data

    after = machine()
    if (after["git_commit"], after["src_changed"]) != (
        measured["git_commit"],
        measured["src_changed"],
    ):
        # Someone committed or edited the library while it was measured: the figures mix both.
        measured["changed_during_run"] = f"{measured['git_commit']} -> {after['git_commit']}"
        progress(f"warning: the library changed during the run ({measured['changed_during_run']})")
    results = {
        "mode": "quick" if args.quick else "full",
        "date": now(),
        "machine": measured,
        "peers": peer_info if not args.no_peers else {"skipped": "--no-peers"},
        "sections": sections,
        "duration_seconds": time.monotonic() - started,
        "command": " ".join(["benchmarks/run.py", *sys.argv[1:]]),
    }
    json_path = out_dir / ("benchmarks-quick.json" if args.quick else "benchmarks.json")
    md_path = json_path.with_suffix(".md")
    if args.only and not args.quick and json_path.exists():
        # Keep the sections that did not run, and what is known about the peers, from the
        # last full run; note this partial run.
        previous = json.loads(json_path.read_text())
        previous["sections"].update(sections)
        previous["sections"] = {
            k: previous["sections"][k] for k in SECTIONS if k in previous["sections"]
        }
        if not args.no_peers:
            previous["peers"] = peer_info
        previous["machine"] = results["machine"]
        previous.setdefault("partial_runs", []).append(
            {"command": results["command"], "date": results["date"], "sections": names}
        )
        results = previous
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    md_path.write_text(report.render(results))
    progress(f"wrote {md_path} and {json_path} in {(time.monotonic() - started) / 60:.1f} min")
    if args.keep_work:
        progress(f"kept {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 1 if failed else 0


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


if __name__ == "__main__":
    sys.exit(main())
