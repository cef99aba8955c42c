"""Printer-provided text made safe for a log line or a terminal."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe(text: object, limit: int = 200) -> str:
    """Control characters (escape sequences, newlines, bidi overrides) shown as ``?``."""
    value = _CONTROL.sub("?", str(text))
    return value if len(value) <= limit else value[: limit - 1] + "…"
