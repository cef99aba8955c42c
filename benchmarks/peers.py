"""The peer libraries, installed from PyPI into their own virtualenv (``benchmarks/.peers-venv``).

Each is pinned, so that a rerun measures the same code; paho-mqtt is pinned to the version
bambu-lan runs on, so that the MQTT client underneath is the same for everyone. A peer that
cannot be installed or imported is reported with the reason, and the others still run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import BENCH_DIR, PEER_LIBS, package_version, progress

VENV = BENCH_DIR / ".peers-venv"

# library -> (pip requirement, module its users import first)
PEERS: dict[str, tuple[str, str]] = {
    "bambulabs-api": ("bambulabs-api==2.6.6", "bambulabs_api"),
    "bambu-printer-manager": ("bambu-printer-manager==1.0.3", "bpm.bambuprinter"),
    "bambu-mqtt-comms": ("bambu-mqtt-comms==0.1.0", "bambu_mqtt_comms"),
}
assert tuple(PEERS) == PEER_LIBS


def _python() -> Path:
    return VENV / "bin" / "python"


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def ensure(only: list[str] | None = None) -> tuple[dict[str, Path], dict[str, Any]]:
    """Create the venv and install the peers (skipped when already there).

    Returns (library -> python for those that import, library -> {"version"} or {"error"}).
    """
    wanted = [lib for lib in PEERS if only is None or lib in only]
    info: dict[str, Any] = {}
    if not _python().exists():
        progress(f"creating {VENV.relative_to(BENCH_DIR.parent)}")
        done = _run([sys.executable, "-m", "venv", str(VENV)], timeout=300)
        if done.returncode != 0:
            reason = f"cannot create the virtualenv: {done.stderr.strip()[-300:]}"
            return {}, {lib: {"error": reason} for lib in wanted}
    paho = f"paho-mqtt=={package_version('paho-mqtt')}"
    ready: dict[str, Path] = {}
    for lib in wanted:
        requirement, module = PEERS[lib]
        probe = _run([str(_python()), "-c", f"import {module}"], timeout=120)
        if probe.returncode != 0:
            progress(f"installing {requirement} into the peers venv")
            install = _run(
                [
                    str(_python()),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    requirement,
                    paho,
                ],
                timeout=900,
            )
            if install.returncode != 0:
                info[lib] = {
                    "error": f"pip install {requirement} failed: " + install.stderr.strip()[-400:]
                }
                continue
            probe = _run([str(_python()), "-c", f"import {module}"], timeout=120)
            if probe.returncode != 0:
                info[lib] = {
                    "error": f"import {module} failed on Python "
                    f"{sys.version.split()[0]}: {probe.stderr.strip()[-400:]}"
                }
                continue
        versions = _run(
            [
                str(_python()),
                "-c",
                "import json, importlib.metadata as m; "
                f"print(json.dumps([m.version({requirement.split('==')[0]!r}), "
                "m.version('paho-mqtt')]))",
            ],
            timeout=60,
        )
        version, paho_version = json.loads(versions.stdout)
        info[lib] = {"version": version, "paho_mqtt": paho_version}
        ready[lib] = _python()
    return ready, info
