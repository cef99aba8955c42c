"""What every benchmark section shares: paths, statistics, child processes, the machine."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CLIENTS = BENCH_DIR / "clients.py"
SIM_RUNNER = BENCH_DIR / "sim_runner.py"
OUR_PYTHON = Path(sys.executable)
BAMBU_LAN = OUR_PYTHON.parent / "bambu-lan"  # the console script of this venv

OURS = ("bambu-lan", "bambu-lan-sync")
PEER_LIBS = ("bambulabs-api", "bambu-printer-manager", "bambu-mqtt-comms")

# The printer every single-printer section simulates (an A1 serial: prefix 039).
SERIAL = "039SIM000000001"
ACCESS_CODE = "12345678"

# Simulators listen on port 8883 like printers (some peers cannot use another port), each on
# its own loopback address. Runs on one machine at the same time (the test suite's smoke run
# in several checkouts) must not collide: each run takes its own 127.N.0.0/16 block.
RUN_NET = 32 + (os.getpid() ^ int(time.time())) % 200


def loopback(host: str) -> str:
    """``127.0.a.b`` -> ``127.N.a.b`` in this run's block (other addresses unchanged)."""
    parts = host.split(".")
    if len(parts) == 4 and parts[:2] == ["127", "0"]:
        return f"127.{RUN_NET}.{parts[2]}.{parts[3]}"
    return host


_T0 = time.monotonic()


def progress(message: str) -> None:
    """One line of progress, with the time since the run started (stderr: stdout stays
    clean for whoever pipes the run)."""
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Context:
    """What a section needs to run."""

    quick: bool
    work_dir: Path  # temporary files of this run
    cert_dir: Path  # the simulator's CA and leaves (reused across runs: keys are slow)
    peers: dict[str, Path] = field(default_factory=dict)  # peer library -> its python
    env: dict[str, str] = field(default_factory=dict)  # environment of every child

    def python_for(self, lib: str) -> Path:
        return self.peers[lib] if lib in PEER_LIBS else OUR_PYTHON


def child_env(work_dir: Path) -> dict[str, str]:
    """Children see neither the user's config nor their cache: a clean, repeatable setup."""
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(work_dir / "config")
    env["XDG_CACHE_HOME"] = str(work_dir / "cache")
    env.pop("BAMBU_PRINTER", None)
    env.pop("PYTHONPATH", None)
    return env


# --- bytecode -------------------------------------------------------------------------------

# Imports what ``status`` and a first state import, then names every loaded module whose
# bytecode is missing or does not match its source (Python would compile it on every run).
_BYTECODE_PROBE = """
import asyncio, importlib.util, json, os, sys
import bambu_lan.printer, bambu_lan.sync, bambu_lan.cli.main, bambu_lan.cli.status_cmd
stale, checked = [], 0
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None) or ""
    if not path.endswith(".py"):
        continue
    checked += 1
    try:
        with open(importlib.util.cache_from_source(path), "rb") as pyc:
            head = pyc.read(16)
        st = os.stat(path)
        fresh = head[4:8] == bytes(4) and head[8:16] == (
            (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
            + (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
        )
    except OSError:
        fresh = False
    if not fresh:
        stale.append(name)
print(json.dumps({"modules_checked": checked, "without_bytecode": sorted(stale)}))
"""


def ensure_bytecode(env: dict[str, str]) -> dict[str, Any]:
    """Byte-compile the package, as installing it does. A checkout run with
    ``PYTHONDONTWRITEBYTECODE=1`` (or just edited) has no current bytecode, and every cold
    process would compile the package again (about 30 ms): not what users run. Returns what a
    child then finds (``without_bytecode`` should be empty)."""
    import compileall

    compileall.compile_dir(ROOT / "src" / "bambu_lan", quiet=1)
    done = subprocess.run(
        [str(OUR_PYTHON), "-c", _BYTECODE_PROBE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["without_bytecode"]:
        progress(f"warning: modules without current bytecode: {result['without_bytecode']}")
    return result


# --- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (p90 of 10 runs is the 9th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-share * len(ordered) // 1))))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p90": percentile(values, 0.9),
        "min": min(values),
        "max": max(values),
    }


# --- child processes ------------------------------------------------------------------------


class LineProcess:
    """A child whose stdout is JSON lines, read by a thread into a queue (lines that are not
    JSON, such as a peer library's own prints, are kept apart in ``noise``)."""

    def __init__(self, args: Sequence[str | Path], *, env: dict[str, str], log: Path) -> None:
        self.args = [str(a) for a in args]
        self._log: TextIO = log.open("a")
        self._log.write(f"$ {' '.join(self.args)}\n")
        self._log.flush()
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
            start_new_session=True,  # a Ctrl-C of the run reaches us, and we stop the child
        )
        self.lines: queue.Queue[Any] = queue.Queue()
        self.noise: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.noise.append(line.rstrip())
        self.lines.put(None)  # EOF

    def next(self, timeout: float) -> Any:
        """The next JSON value; TimeoutError, or EOFError when the child closed stdout."""
        try:
            value = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no output from {self.args[1:3]} within {timeout:g} s") from None
        if value is None:
            self.lines.put(None)
            raise EOFError(f"{self.args[1:3]} exited (code {self.proc.poll()})")
        return value

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float) -> Any | None:
        """The first value for which ``predicate`` holds, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                value = self.next(left)
            except TimeoutError:
                return None
            if predicate(value):
                return value
        return None

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self, timeout: float = 10.0) -> None:
        """EOF on stdin (the polite stop), then SIGTERM, then SIGKILL."""
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self._log.close()


class Simulator(LineProcess):
    """``sim_runner.py`` in its own process: printers listening, faults on command."""

    def __init__(self, ctx: Context, *extra: str, name: str, timeout: float = 300.0) -> None:
        # The --host given is in the 127.0.0.0/16 naming; this run's block is used instead.
        extra = tuple(
            loopback(arg) if index and extra[index - 1] == "--host" else arg
            for index, arg in enumerate(extra)
        )
        args = [OUR_PYTHON, SIM_RUNNER, "--cert-dir", ctx.cert_dir, *extra]
        super().__init__(args, env=ctx.env, log=ctx.work_dir / f"{name}.log")
        first = self.next(timeout)
        self.printers: list[dict[str, Any]] = first["printers"]
        self.printing: int = first["printing"]

    def command(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        self.send(name)
        reply: dict[str, Any] = self.next(timeout)
        return reply


class CliSimulator(LineProcess):
    """``bambu-lan sim --json``: the simulator as users run it."""

    def __init__(self, ctx: Context, host: str, *, name: str, extra: Sequence[str] = ()) -> None:
        args = [
            BAMBU_LAN,
            "sim",
            "--host",
            loopback(host),
            "--port",
            "8883",
            "--serial",
            SERIAL,
            "--access-code",
            ACCESS_CODE,
            "--cert-dir",
            ctx.cert_dir,
            "--json",
            *extra,
        ]
        super().__init__(args, env=ctx.env, log=ctx.work_dir / f"{name}.log")
        self.printers: list[dict[str, Any]] = self.next(120.0)

    def close(self, timeout: float = 10.0) -> None:
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C does: it stops cleanly
        super().close(timeout)


@contextlib.contextmanager
def running(process: LineProcess) -> Iterator[LineProcess]:
    try:
        yield process
    finally:
        process.close()


def run_json(
    args: Sequence[str | Path], *, env: dict[str, str], timeout: float, log: Path
) -> dict[str, Any]:
    """Run a child to the end; its last JSON line on stdout. Raises on failure."""
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(str(a) for a in args)[:300]}\n{done.stderr}")
    for line in reversed(done.stdout.splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict) and "error" not in value:
                if done.returncode != 0:
                    break
                return value
    raise RuntimeError(
        f"{Path(str(args[1])).name} {args[2] if len(args) > 2 else ''} failed "
        f"(exit {done.returncode}): {(done.stderr or done.stdout).strip()[-400:]}"
    )


# --- the machine ----------------------------------------------------------------------------


def _first_line_with(path: str, prefix: str) -> str:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    return ""


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def machine() -> dict[str, Any]:
    mem_kib = _first_line_with("/proc/meminfo", "MemTotal").split()
    commit, dirty = "", False
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        # Read-only (no index refresh either): which commit was measured, and whether the
        # library had uncommitted changes on top of it.
        git = ["git", "--no-optional-locks", "-C", str(ROOT)]
        head = [*git, "rev-parse", "--short", "HEAD"]
        commit = subprocess.run(
            head, capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
        diff = [*git, "diff", "--quiet", "HEAD", "--", "src"]
        dirty = subprocess.run(diff, timeout=5, check=False).returncode == 1
    return {
        "cpu_model": _first_line_with("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem_kib[0]) / 1024 / 1024, 1) if mem_kib else None,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "git_commit": commit,
        "src_changed": dirty,  # uncommitted changes under src/ were measured too
        "versions": {
            name: package_version(name)
            for name in ("bambu-lan", "paho-mqtt", "orjson", "cryptography")
        },
    }


def import_profile(
    args: Sequence[str | Path], *, env: dict[str, str], top: int = 10
) -> dict[str, list[dict[str, Any]]]:
    """Where a process's import time goes (``python -X importtime``), in microseconds:
    ``own`` - the modules with the most time of their own; ``direct`` - the imports made by
    the program itself (depth 0: its own imports, and lazy ones made while it runs, such as a
    library importing a dependency on first use), by their cumulative time."""
    argv = [str(a) for a in args]
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=env,
        text=True,
        capture_output=True,
        check=False,
        timeout=120,
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append(
            {
                "module": name.strip(),
                "self_us": int(parts[0]),
                "cumulative_us": int(parts[1]),
                "depth": depth,
            }
        )
    own = sorted(rows, key=lambda row: row["self_us"], reverse=True)[:top]
    direct = sorted(
        (r for r in rows if r["depth"] == 0), key=lambda r: r["cumulative_us"], reverse=True
    )[:top]
    return {"own": own, "direct": direct}
