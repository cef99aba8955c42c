"""Library warnings: nothing on stderr for a library user who set up no logging (the
library's NullHandler), one terminal-safe ``warning:`` line each in the CLI."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from bambu_lan.cli.log_lines import stop_warning_lines, told_by_command, warning_lines


def test_a_bare_library_user_sees_no_library_warning_on_stderr() -> None:
    code = (
        "import bambu_lan, logging\n"
        "logging.getLogger('bambu_lan.trust').warning('pinned a certificate')\n"
        "logging.getLogger('elsewhere').warning('the application speaks')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    # The application's own warning still reaches the last-resort handler; ours does not.
    assert done.stderr == "the application speaks\n"


def test_the_cli_shows_a_library_warning_as_one_safe_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = logging.getLogger("bambu_lan.files")
    with warning_lines():
        log.warning("printer said %s", "ok\x1b[2J\nsecond line")
        log.info("only with --debug")
        logging.getLogger("other").warning("not the library's")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("a report could not be handled")
    log.warning("after the command")

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("warning: printer said ok")
    assert "\x1b" not in lines[0] and "second line" in lines[0]
    assert lines[1] == "warning: a report could not be handled"  # no traceback


def test_what_a_command_tells_itself_is_not_repeated(capsys: pytest.CaptureFixture[str]) -> None:
    with warning_lines():
        with told_by_command("bambu_lan.camera"):
            logging.getLogger("bambu_lan.camera").warning("reconnecting")
            logging.getLogger("bambu_lan.cameras").warning("a sibling, shown")
        logging.getLogger("bambu_lan.camera").warning("shown again")
    assert capsys.readouterr().err.splitlines() == [
        "warning: a sibling, shown",
        "warning: shown again",
    ]


def test_a_command_with_its_own_logging_takes_over(capsys: pytest.CaptureFixture[str]) -> None:
    with warning_lines():
        stop_warning_lines()
        logging.getLogger("bambu_lan.serve").warning("shown by serve's own handler")
    assert capsys.readouterr().err == ""
