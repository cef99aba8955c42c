"""One copy of the short strings that every printer's report repeats.

A full report parsed by orjson is a tree of about 240 objects, and every string in it is a
new object: ``"0"``, ``""``, ``"PLA"``, colours, ``"AUTO"``... A farm keeps one merged report
per printer, so a thousand printers kept a thousand copies of each. ``share`` rebuilds a
full report with each short string taken from one table for the process: about 8 KB less per
printer (measured with 1,000 simulated A1s). Deltas are left alone: they are small, come
every second, and replace only what changed.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

MAX_LENGTH = 40  # longer strings (file and job names, ids) rarely repeat across printers
MAX_ENTRIES = 8192  # the table is cleared when full: names of jobs must not pile up forever

_table: dict[str, str] = {}


def share(report: dict[str, Any], skip: Container[str] = ()) -> dict[str, Any]:
    """A copy of ``report`` without the keys in ``skip``, its short strings shared."""
    if len(_table) > MAX_ENTRIES:
        _table.clear()
    return {key: _shared(value) for key, value in report.items() if key not in skip}


def _shared(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        if len(value) > MAX_LENGTH:
            return value
        return _table.setdefault(value, value)
    if kind is dict:
        return {key: _shared(item) for key, item in value.items()}
    if kind is list:
        return [_shared(item) for item in value]
    return value
