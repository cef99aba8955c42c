"""The developer's BAMBU_* environment never reaches a CLI test (``isolated_env``).

Each variable below, leaked into a test, makes it fail: an unreadable access code file
next to BAMBU_ACCESS_CODE is "both given", and a port that is not a number is refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import ENV_VARS

ROOT = Path(__file__).resolve().parents[2]

#: Settings a developer may well have in their shell, each one poison for these tests.
HOSTILE = {
    "BAMBU_FTPS_PORT": "not-a-port",
    "BAMBU_CAMERA_PORT": "not-a-port",
    "BAMBU_PORT": "not-a-port",
    "BAMBU_ACCESS_CODE_FILE": "/nonexistent/bambu-code",
    "BAMBU_PRINTER": "no-such-printer",
    "BAMBU_CA_DIR": "/nonexistent/bambu-certs",
    "BAMBU_SOMETHING_NEW": "x",  # a variable of a later version: cleared too
}

#: CLI tests that take their settings from a config profile, where a leaked variable wins.
TESTS = (
    "tests/cli/test_cli_status.py::test_status_from_a_config_profile",
    "tests/files/test_files_cli.py::test_ftps_port_from_the_config_file",
)


def test_every_variable_the_code_reads_is_cleared() -> None:
    read: set[str] = set()
    for path in (ROOT / "src" / "bambu_lan").rglob("*.py"):
        read.update(re.findall(r"\bBAMBU_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    read.discard("BAMBU_CERT_FILES")  # a constant's name (the CA file names), not a variable
    assert read, "no BAMBU_ variable found: the scan is broken"
    assert read <= set(ENV_VARS), f"not cleared by isolated_env: {sorted(read - set(ENV_VARS))}"


def test_a_hostile_shell_environment_changes_no_cli_test() -> None:
    env = {**os.environ, **HOSTILE}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *TESTS,
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"{len(TESTS)} passed" in result.stdout
