"""Printer-provided text made safe for a log line or a terminal."""

from __future__ import annotations

from bambu_lan.text import terminal_safe


def safe(text: object, limit: int = 200) -> str:
    """Control characters (escape sequences, newlines, bidi overrides) removed, by the one
    terminal-safety rule of bambu_lan.text; long text shortened."""
    value = terminal_safe(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"
