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

# Kinds of payload problems, as counted by DecodeStats. Each payload counts once, under the
# reason it was skipped, or under the repair that made it readable.
NOT_UTF8 = "not_utf8"  # repaired: read as latin-1
TRAILING_NUL = "trailing_nul"  # repaired: trailing NUL bytes stripped
NOT_JSON = "not_json"
NOT_OBJECT = "not_object"
EMPTY = "empty"

_WHAT = {
    NOT_UTF8: "read a payload that is not UTF-8 as latin-1",
    TRAILING_NUL: "stripped trailing NUL bytes from a payload",
    NOT_JSON: "skipping a payload that is not JSON",
    NOT_OBJECT: "skipping a JSON payload that is not an object",
    EMPTY: "skipping an empty payload",
}


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
                "%s%s (%d bytes, starts %r); further ones are only counted",
                f"{self.label}: " if self.label else "",
                _WHAT.get(kind) or f"ignoring a value ({kind.replace('_', ' ')})",
                len(sample),
                sample[:40],
            )

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def decode_payload(payload: bytes, stats: DecodeStats | None = None) -> dict[str, Any] | None:
    """The JSON object in ``payload``, or None (counted in ``stats``) when there is none.

    A payload that needed a repair (latin-1, trailing NULs) is returned and counted too.
    """
    # Fast path: the printer's own compact, valid UTF-8 JSON.
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        kind, value = _decode_slow(payload)
        if value is _UNREADABLE:
            if stats is not None:
                stats.record(kind or NOT_JSON, payload)
            return None
        if isinstance(value, dict):
            if stats is not None and kind is not None:
                stats.record(kind, payload)  # repaired: latin-1 or trailing NULs
            return value
    if isinstance(value, dict):
        return value
    if stats is not None:
        stats.record(NOT_OBJECT, payload)
    return None


# _decode_slow's value when there is no JSON value at all (JSON ``null`` is None).
_UNREADABLE: Any = object()


def _decode_slow(payload: bytes) -> tuple[str | None, Any]:
    """(kind, value): the repair made to read ``value``, or the problem when ``value`` is
    _UNREADABLE."""
    data = payload.rstrip(b"\x00 \t\r\n")
    if not data:
        return EMPTY, _UNREADABLE
    kind = TRAILING_NUL if b"\x00" in payload[len(data) :] else None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # ha-bambulab falls back to latin-1: a report with a stray byte is still a report.
        text = data.decode("latin-1")
        kind = NOT_UTF8
    try:
        return kind, orjson.loads(text)
    except orjson.JSONDecodeError:
        return NOT_JSON, _UNREADABLE
