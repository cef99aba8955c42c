"""Topic names and serial-number checks (protocol.md §3.2)."""

from __future__ import annotations

import re

USERNAME = "bblp"
DEFAULT_PORT = 8883

# 15 characters as printed on the printer: digits and upper-case letters.
_SERIAL_RE = re.compile(r"^[0-9A-Z]{15}$")


def report_topic(serial: str) -> str:
    """Where the printer publishes status pushes and command replies."""
    return f"device/{serial}/report"


def request_topic(serial: str) -> str:
    """Where clients publish commands."""
    return f"device/{serial}/request"


def serial_problem(serial: str) -> str | None:
    """Why ``serial`` cannot be a Bambu serial number, or None when it looks right.

    Topic matching is case-sensitive: a lower-case serial connects, subscribes, and then
    receives nothing, so it is worth refusing up front.
    """
    if not serial:
        return "the serial number is empty"
    if serial != serial.strip():
        return "the serial number has spaces around it"
    if serial.upper() != serial:
        return (
            f"the serial number must be upper case ({serial.upper()}); topics are "
            "case-sensitive, so a lower-case serial connects and then receives nothing"
        )
    if len(serial) != 15:
        return f"a Bambu serial number has 15 characters, this one has {len(serial)}"
    if not _SERIAL_RE.match(serial):
        return "a Bambu serial number has only digits and capital letters"
    return None
