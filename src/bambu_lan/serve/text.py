"""Printer- or broker-provided text made safe for a log line (the journal is read in a
terminal), and kept short."""

from __future__ import annotations

from bambu_lan.text import terminal_safe


def safe(text: object, limit: int = 200) -> str:
    """``terminal_safe`` text, cut to ``limit`` characters."""
    value = terminal_safe(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"
