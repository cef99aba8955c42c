"""The import path of a client stays lean: ``Printer`` and ``SyncPrinter`` do not pull in the
command line, the simulator, file transfer, or modules only writing and checking need."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Modules a first state never needs; each was on the path once, or is heavy.
NOT_ON_THE_PATH = (
    "click",
    "rich",
    "cryptography",
    "tomllib",  # reading a config file
    "difflib",  # "did you mean" for a config key
    "bambu_lan.cli",
    "bambu_lan.sim",
    "bambu_lan.doctor",
    "bambu_lan.files",
    "bambu_lan.camera",
    "bambu_lan.serve",
)


@pytest.mark.parametrize("name", ["Printer", "SyncPrinter", "Farm", "PrinterCore"])
def test_a_client_imports_only_what_it_needs(name: str) -> None:
    code = (
        "import json, sys\n"
        f"from bambu_lan import {name}\n"
        f"print(json.dumps([m for m in {NOT_ON_THE_PATH!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []
