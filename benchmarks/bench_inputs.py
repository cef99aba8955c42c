"""6. What checking the input costs: the config schema and terminal-safe text.

Every command reads and checks the whole config file before it connects, and the live view
makes every printer string terminal-safe on each frame, so both sit on the ``status`` path
and in the panel. Measured in a child process (bytecode compiled, as installed):

* import time of ``bambu_lan.config`` (the schema is hand-written: no schema library is
  imported; msgspec or pydantic would add their own import time to every command) and of
  ``bambu_lan.text``, from ``python -X importtime``, fresh processes;
* reading + checking a config file with 1 and with 100 printers; ``resolve_printer`` for one
  profile with a CA file (schema, values, CA file loaded by OpenSSL);
* ``terminal_safe`` on a clean and on a hostile string, and ``terminal_safe_copy`` of a whole
  snapshot (a full A1 report with AMS and HMS): the panel's cost per frame.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from common import OUR_PYTHON, Context, progress, summary

CHILD = r"""
import json, sys, time, tempfile, pathlib, shutil
from bambu_lan.config import load_config_file, resolve_printer
from bambu_lan.text import terminal_safe, terminal_safe_copy
from bambu_lan.protocol.decode import DecodeStats
from bambu_lan.protocol.state import StateBuilder
from bambu_lan.sim.printer import PrinterModel
from bambu_lan.sim.profiles import A1

reps = int(sys.argv[1])
ca = sys.argv[2]
work = pathlib.Path(tempfile.mkdtemp())

def timed(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); out.append(time.perf_counter() - t0)
    return out

def profile(i):
    return (f'[printers.p{i}]\nhost = "192.168.1.{i % 250 + 1}"\nserial = "03919A3B12{i:05d}"\n'
            f'access_code = "12345678"\nport = 8883\ninsecure = false\n')

result = {}
for count in (1, 100):
    path = work / f"c{count}.toml"
    path.write_text("".join(profile(i) for i in range(count)))
    path.chmod(0o600)
    result[f"load_config_{count}"] = timed(lambda: load_config_file(path), reps)
one = work / "one.toml"
one.write_text(profile(0) + f'ca_file = "{ca}"\n')
one.chmod(0o600)
result["resolve_printer"] = timed(lambda: resolve_printer(printer="p0", config_file=one), reps)
clean, hostile = "Benchy_PLA_0.2mm.gcode.3mf", "\x1b]0;x\x07job\u202eevil\x9b2J"
n = 10000
for name, text in (("terminal_safe_clean", clean), ("terminal_safe_hostile", hostile)):
    per_batch = timed(lambda: [terminal_safe(text) for _ in range(n)], 5)
    result[name] = [t / n for t in per_batch]
model = PrinterModel(A1, "03919A3B1200123", seed=1)
model.start_print(name="job", layers=10)
model.raise_hms("0300_0100_0001_0007")
body = model.full_report()["print"]
state = StateBuilder("03919A3B1200123", DecodeStats()).build(body, None, True)
result["terminal_safe_copy_state"] = timed(lambda: terminal_safe_copy(state), max(reps, 200))
shutil.rmtree(work)
print(json.dumps(result))
"""


def import_times(module: str, env: dict[str, str], runs: int) -> dict[str, Any]:
    """Cumulative import time of ``module`` in fresh processes (seconds)."""
    values = []
    for _ in range(runs):
        done = subprocess.run(
            [str(OUR_PYTHON), "-X", "importtime", "-c", f"import {module}"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        for line in done.stderr.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[2].strip() == module:
                values.append(int(parts[1]) / 1e6)
    return summary(values)


def run(ctx: Context) -> dict[str, Any]:
    reps = 5 if ctx.quick else 200
    runs = 2 if ctx.quick else 15
    progress(f"inputs: config check and terminal-safe text, {reps} repetitions")
    ca = ctx.cert_dir / "ca.pem"
    if not ca.is_file():
        from bambu_lan.sim.certs import CertAuthority

        CertAuthority.load_or_create(ctx.cert_dir)
    done = subprocess.run(
        [str(OUR_PYTHON), "-c", CHILD, str(reps), str(ca)],
        env=ctx.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    raw: dict[str, list[float]] = json.loads(done.stdout)
    out: dict[str, Any] = {name: summary(values) for name, values in raw.items()}
    out["import bambu_lan.config"] = import_times("bambu_lan.config", ctx.env, runs)
    out["import bambu_lan.text"] = import_times("bambu_lan.text", ctx.env, runs)
    progress(
        f"  config with 100 printers: {out['load_config_100']['median'] * 1000:.2f} ms; "
        f"snapshot made terminal-safe: {out['terminal_safe_copy_state']['median'] * 1e6:.0f} µs"
    )
    return out
