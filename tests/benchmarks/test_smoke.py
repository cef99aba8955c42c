"""The benchmarks still run: every section of ``benchmarks/run.py --quick``, without peers.

Only that they run and produce their files: budgets are measured by the benchmarks, never
asserted by timed tests (design.md). A few seconds; the simulators listen on 127.0.0.0/8.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "first_state", "handling", "farm", "recovery", "cold_start", "inputs", "ftps", "camera",
    "serve", "web",
)  # fmt: skip


def test_every_benchmark_runs_in_quick_mode(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--no-peers",
         "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "benchmarks-quick.json").read_text())
    assert list(results["sections"]) == list(SECTIONS)
    for name, section in results["sections"].items():
        assert "error" not in section, f"{name}: {section.get('traceback', section['error'])}"
    sections = results["sections"]
    assert sections["inputs"]["load_config_100"]["n"] >= 1
    assert sections["camera"]["serve"]["upstream_connections"] == 1
    serve = sections["serve"]["sizes_measured"]["3"]
    assert serve["failures"] == 0 and serve["runs"][0]["online"] == 3
    assert serve["runs"][0]["lag_ms"]["n"] >= 1 and serve["figures"]["lag_p99_ms"]["median"] >= 0
    first = sections["first_state"]["a1_connack_delay"]["libraries"]
    assert {"paho", "bambu-lan", "bambu-lan-sync"} <= set(first)
    assert all("total_seconds" in entry for entry in first.values())
    assert sections["handling"]["libraries"]["bambu-lan"]["deltas_per_cpu_second"]["n"] >= 1
    web = sections["web"]
    assert web["paint"]["cards"] == web["paint"]["printers"] and web["traffic"]["events_per_s"] > 0
    farm = sections["farm"]["libraries"]["bambu-lan"]["3"]
    assert farm["full_states"] == 3
    assert farm["messages_per_second"] > 0
    recovery = sections["recovery"]["libraries"]["bambu-lan"]
    assert "median" in recovery["drop"]["full"]
    assert "median" in recovery["silence"]["noticed"]
    assert sections["cold_start"]["bambu-lan --help"]["n"] >= 1
    ftps = sections["ftps"]
    assert ftps["simulator"]["clients"]["bambu-lan"]["failures"] == 0
    assert "median" in ftps["simulator"]["clients"]["bambu-lan"]["seconds"]
    assert "growth" in ftps["memory"] and "median" in ftps["print"]["phases"]["command"]
    page = (tmp_path / "benchmarks-quick.md").read_text()
    for heading in (
        "## Budgets",
        "## 1. First full state",
        "## 5. Command-line cold start",
        "## 7. The printer's storage (FTPS)",
    ):
        assert heading in page
