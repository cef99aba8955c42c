"""Bytes from the report topic to a JSON object, leniently (protocol.md §3.3).

Printers and other clients on the same topic send odd payloads: a trailing NUL (some Orca
builds), latin-1 text, pretty-printed JSON (X1), or plain garbage. None of it may stop a
monitor: a bad payload is counted, logged once per kind, and skipped.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import orjson

log = logging.getLogger("bambu_lan.protocol")

# Kinds of payload problems, as counted by DecodeStats.
NOT_UTF8 = "not_utf8"
NOT_JSON = "not_json"
NOT_OBJECT = "not_object"
EMPTY = "empty"


class DecodeStats:
    """Counts payload problems per kind; logs the first of each kind only."""

    __slots__ = ("counts", "label")

    def __init__(self, label: str = "") -> None:
        self.counts: Counter[str] = Counter()
        self.label = label

    def record(self, kind: str, sample: bytes) -> None:
        self.counts[kind] += 1
        if self.counts[kind] == 1:
            log.warning(
                "%sskipping a %s payload (%d bytes, starts %r); further ones are only counted",
                f"{self.label}: " if self.label else "",
                kind.replace("_", " "),
                len(sample),
                sample[:40],
            )

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def decode_payload(payload: bytes, stats: DecodeStats | None = None) -> dict[str, Any] | None:
    """The JSON object in ``payload``, or None (counted in ``stats``) when there is none."""
    # Fast path: the printer's own compact, valid UTF-8 JSON.
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        value = _decode_slow(payload, stats)
        if value is None:
            return None
    if isinstance(value, dict):
        return value
    if stats is not None:
        stats.record(NOT_OBJECT, payload)
    return None


def _decode_slow(payload: bytes, stats: DecodeStats | None) -> Any:
    data = payload.rstrip(b"\x00 \t\r\n")
    if not data:
        if stats is not None:
            stats.record(EMPTY, payload)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # ha-bambulab falls back to latin-1: a report with a stray byte is still a report.
        text = data.decode("latin-1")
        if stats is not None:
            stats.record(NOT_UTF8, payload)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        if stats is not None:
            stats.record(NOT_JSON, payload)
        return None
