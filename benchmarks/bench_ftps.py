"""6. The printer's storage (FTPS) and printing.

* Upload throughput of one file (50 MB; quick: 5 MB) on loopback, from connect to the final
  ``226``, to the simulator (``bambu-lan sim``, its own process) and to a real vsftpd set up
  like a printer: bambu-lan, curl (implicit FTPS with TLS session reuse: the floor) and
  bambulabs-api (its ``PrinterFTPClient.upload_file``), each client in a process of its own.
* Memory while uploading 1 GB (quick: 100 MB): the uploading process's resident set sampled
  every 50 ms; flat means max - after-connect within 10 MB.
* ``print``: from the call to the printer reporting the job started, for a 5 MB sliced file,
  split into check (local 3MF + state), upload and command (project_file → PREPARE).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from common import OUR_PYTHON, ROOT, CliSimulator, Context, progress, running, summary

MB = 1_000_000
THROUGHPUT_BUDGET = 0.85  # of curl's (design.md)
MEMORY_BUDGET = 10 * MB

OUR_UPLOAD = """
import json, sys, time
from pathlib import Path
from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.files import SyncStorage
from bambu_lan.trust import TrustConfig
cfg = json.loads(sys.argv[1])
config = PrinterConfig(host=cfg["host"], serial=cfg["serial"], access_code=Secret(cfg["code"]),
                       trust=TrustConfig(ca_file=Path(cfg["ca"])), ftps_port=cfg["port"])
t0 = time.perf_counter()
with SyncStorage(config) as storage:
    if cfg.get("mark"):
        print(json.dumps({"connected": True}), flush=True)
        sys.stdin.readline()
    sent = storage.upload(cfg["file"], cfg["remote"])
print(json.dumps({"seconds": time.perf_counter() - t0, "bytes": sent}), flush=True)
"""

PEER_UPLOAD = """
import json, sys, time
from bambulabs_api.ftp_client import PrinterFTPClient
cfg = json.loads(sys.argv[1])
client = PrinterFTPClient(cfg["host"], cfg["code"], port=cfg["port"])
t0 = time.perf_counter()
with open(cfg["file"], "rb") as handle:
    reply = client.upload_file(handle, cfg["remote"])
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "reply": str(reply)}), flush=True)
"""

PRINT = """
import json, sys, time
from bambu_lan import Printer
cfg = json.loads(sys.argv[1])
async def main():
    async with Printer(cfg["host"], cfg["serial"], cfg["code"], port=cfg["mqtt_port"],
                       ca_file=cfg["ca"], ftps_port=cfg["port"]) as printer:
        await printer.wait_for_state()
        t0 = time.perf_counter()
        started = await printer.print_file(cfg["file"])
        total = time.perf_counter() - t0
        await printer.stop()
        return {"total": total, **started.timings}
import asyncio
print(json.dumps(asyncio.run(main())), flush=True)
"""


def _child(python: Path, script: str, cfg: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), "-c", script, json.dumps(cfg)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-400:] or f"exit {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _curl(cfg: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    url = f"ftps://{cfg['host']}:{cfg['port']}{cfg['remote']}"
    done = subprocess.run(
        ["curl", "--silent", "--show-error", "--insecure", "--tls-max", "1.2",
         "--user", f"bblp:{cfg['code']}", "--upload-file", cfg["file"],
         "--write-out", "%{time_total}", url],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"curl exit {done.returncode}: {done.stderr.strip()[-300:]}")
    return {"seconds": float(done.stdout.strip().splitlines()[-1])}


def _throughput(
    target: dict[str, Any], source: Path, runs: int, ctx: Context, card: Path | None
) -> dict[str, Any]:
    size = source.stat().st_size
    out: dict[str, Any] = {}
    clients: dict[str, Any] = {
        "curl": lambda cfg: _curl(cfg, ctx.env),
        "bambu-lan": lambda cfg: _child(OUR_PYTHON, OUR_UPLOAD, cfg, ctx.env),
    }
    if "bambulabs-api" in ctx.peers:
        clients["bambulabs-api"] = lambda cfg: _child(
            ctx.peers["bambulabs-api"], PEER_UPLOAD, cfg, ctx.env
        )
    seconds: dict[str, list[float]] = {name: [] for name in clients}
    failures: dict[str, list[str]] = {name: [] for name in clients}
    if shutil.which("curl") is None:
        clients.pop("curl")
        out["curl"] = {"error": "curl is not installed"}
    # Round by round, every client once per round: a busy machine slows all of them alike.
    for i in range(runs + 1):  # round 0 is a warm-up (page cache, bytecode)
        for name, upload in clients.items():
            cfg = {**target, "file": str(source), "remote": f"/bench-{name}-{i}.bin"}
            try:
                result = upload(cfg)
                stored = (card / cfg["remote"].lstrip("/")).stat().st_size if card else size
                if stored != size or ("reply" in result and not result["reply"].startswith("226")):
                    failures[name].append(
                        f"stored {stored} of {size} bytes, reply {result.get('reply')}"
                    )
                elif i:
                    seconds[name].append(result["seconds"])
            except Exception as exc:  # counted beside the medians
                failures[name].append(str(exc)[:200])
            if card is not None:
                for leftover in card.glob("bench-*"):
                    leftover.unlink()
    for name in clients:
        stats = summary(seconds[name])
        entry: dict[str, Any] = {"seconds": stats, "failures": len(failures[name])}
        if failures[name]:
            entry["failure_examples"] = failures[name][:2]
        if seconds[name]:
            entry["mb_per_s"] = size / MB / stats["median"]
        out[name] = entry
        progress(
            f"    {name}: "
            + (
                f"{entry['mb_per_s']:.0f} MB/s (median {stats['median']:.3f} s)"
                if seconds[name]
                else ""
            )
            + (f", {len(failures[name])} failed" if failures[name] else "")
        )
    return {"bytes": size, "runs": runs, "clients": out}


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _memory(target: dict[str, Any], source: Path, ctx: Context) -> dict[str, Any]:
    cfg = {**target, "file": str(source), "remote": "/bench-memory.bin", "mark": True}
    proc = subprocess.Popen(
        [str(OUR_PYTHON), "-c", OUR_UPLOAD, json.dumps(cfg)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ctx.env,
    )  # fmt: skip
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdout.readline()  # connected and logged in
    baseline = _rss(proc.pid)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                samples.append(_rss(proc.pid))
            except OSError:
                return
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc.stdin.write("\n")
    proc.stdin.flush()
    result = json.loads(proc.stdout.readline())
    stop.set()
    sampler.join()
    proc.wait(60)
    return {
        "bytes": source.stat().st_size,
        "seconds": result["seconds"],
        "rss_after_connect": baseline,
        "rss_max": max(samples or [baseline]),
        "growth": max(samples or [baseline]) - baseline,
        "samples": len(samples),
    }


def _vsftpd(ctx: Context):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(ROOT))
    from tests.files.vsftpd_printer import run_vsftpd

    return run_vsftpd(ctx.cert_dir, "03919A3B1200123")


def run(ctx: Context) -> dict[str, Any]:
    runs = 1 if ctx.quick else 9
    size = 5 * MB if ctx.quick else 50 * MB
    big = 20 * MB if ctx.quick else 1000 * MB
    data_dir = ctx.work_dir / "ftps"
    data_dir.mkdir(exist_ok=True)
    source = data_dir / "upload.bin"
    source.write_bytes(os.urandom(size))
    large = data_dir / "large.bin"
    with large.open("wb") as handle:  # random, so nothing on the way can shrink it
        for _ in range(big // (10 * MB)):
            handle.write(os.urandom(10 * MB))
    card = data_dir / "card"
    results: dict[str, Any] = {"budget_share_of_curl": THROUGHPUT_BUDGET}
    progress(f"ftps: {size // MB} MB uploads, {runs} runs each; memory over {big // MB} MB")

    sim_args = ["--card-dir", str(card)]
    with running(CliSimulator(ctx, "127.0.20.9", name="sim_ftps", extra=sim_args)) as sim:
        info = sim.printers[0]  # type: ignore[attr-defined]
        target = {
            "host": info["host"], "port": info["ftps_port"], "mqtt_port": info["port"],
            "serial": info["serial"], "code": info["access_code"], "ca": info["ca_path"],
        }  # fmt: skip
        progress("  to the simulator:")
        results["simulator"] = _throughput(target, source, runs, ctx, card)
        progress("  memory while uploading to the simulator")
        results["memory"] = _memory(target, large, ctx)
        (card / "bench-memory.bin").unlink(missing_ok=True)
        progress(f"    RSS growth {results['memory']['growth'] / MB:.1f} MB")
        progress("  print: 5 MB sliced file")
        results["print"] = _print_runs(target, data_dir, runs, ctx)

    try:
        with _vsftpd(ctx) as server:
            target = {
                "host": server.host, "port": server.port, "serial": server.serial,
                "code": server.access_code, "ca": str(server.ca_path),
            }  # fmt: skip
            progress("  to vsftpd:")
            results["vsftpd"] = _throughput(target, source, runs, ctx, server.card)
    except BaseException as exc:  # pytest.skip/fail from the fixture when vsftpd is missing
        results["vsftpd"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        progress(f"  vsftpd not measured: {results['vsftpd']['error']}")
    return results


def _print_runs(target: dict[str, Any], data_dir: Path, runs: int, ctx: Context) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.files.make_3mf import make_3mf

    source = make_3mf(data_dir / "cube.gcode.3mf", layers=50, padding=5 * MB)
    phases: dict[str, list[float]] = {"total": [], "check": [], "upload": [], "command": []}
    failures: list[str] = []
    for i in range(runs + 1):
        try:
            result = _child(OUR_PYTHON, PRINT, {**target, "file": str(source)}, ctx.env)
        except Exception as exc:
            failures.append(str(exc)[:200])
            continue
        if i:
            for key, values in phases.items():
                values.append(result[key])
    out = {key: summary(values) for key, values in phases.items()}
    progress(
        "    "
        + ", ".join(f"{k} {v['median'] * 1000:.0f} ms" for k, v in out.items() if "median" in v)
        + (f"; {len(failures)} failed" if failures else "")
    )
    return {"bytes": source.stat().st_size, "phases": out, "failures": len(failures),
            "failure_examples": failures[:2]}  # fmt: skip
