"""A server started by a test run that is killed does not outlive it (tests/processes.py)."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import sys

import pytest
from tests.processes import dies_with_the_tests


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux (pidfd_open)")
def test_a_killed_test_run_takes_its_servers_with_it() -> None:
    if shutil.which("setpriv") is None:
        assert os.environ.get("CI") != "true", "setpriv (util-linux) is missing on CI"
        pytest.skip("setpriv (util-linux) is not installed")
    # Stands in for mosquitto; says "ready" once running, past setpriv's prctl (a kill before
    # that would leave it behind: a race at start that a real server does not hit).
    server = dies_with_the_tests(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(300)"]
    )
    run = (
        "import subprocess, sys, time\n"
        f"server = subprocess.Popen({server!r})\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    test_run = subprocess.Popen([sys.executable, "-c", run], stdout=subprocess.PIPE, text=True)
    assert test_run.stdout is not None
    pid = int(test_run.stdout.readline())
    assert test_run.stdout.readline() == "ready\n"  # the server's own line, through the pipe
    gone = os.pidfd_open(pid)  # readable once the server has ended
    try:
        test_run.kill()  # as a CI timeout would: no teardown runs
        test_run.wait(timeout=30)
        readable, _, _ = select.select([gone], [], [], 60)
        assert readable, "the server outlived the killed test run"
    finally:
        os.close(gone)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)  # only ever needed when the test failed
