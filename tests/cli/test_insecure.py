"""``--insecure`` is said once: the CLI's banner, not the banner and the library's warning
(which a real process would print too, through logging's last-resort handler)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bambu_lan.sim import SimulatedPrinter

BAMBU_LAN = str(Path(sys.executable).parent / "bambu-lan")  # the console script


def test_insecure_is_one_banner_and_no_second_warning(
    printer_env: SimulatedPrinter, cli_subprocess_env: dict[str, str]
) -> None:
    env = {k: v for k, v in cli_subprocess_env.items() if k != "BAMBU_CA_FILE"}  # no CA
    result = subprocess.run(
        [BAMBU_LAN, "status", "--json", "--insecure"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("identity is NOT checked") == 1, result.stderr
    assert result.stderr.startswith("WARNING: --insecure")
    assert printer_env.access_code not in result.stderr
