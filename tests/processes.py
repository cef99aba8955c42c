"""Servers the tests start (mosquitto, vsftpd) end with the test run, even a killed one.

``process.terminate()`` in a fixture's teardown never runs when pytest itself is killed (a CI
timeout, a Ctrl-C twice, ``kill -9``); the servers then outlive it and hold their ports.
``dies_with_the_tests(argv)`` runs ``argv`` under util-linux's ``setpriv --pdeathsig TERM``:
the kernel sends it SIGTERM when the thread that started it ends. So start servers from the
test process's main thread (fixtures run there), never from a worker thread.
"""

from __future__ import annotations

import shutil


def dies_with_the_tests(argv: list[str]) -> list[str]:
    """``argv``, run so that it ends when the test process does (as is where there is no
    ``setpriv``: not Linux)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv
