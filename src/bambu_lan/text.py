"""Text from a printer (or any other stranger) made safe for a terminal: the one place.

Anyone who can send a print job chooses its name, and a printer reports names, HMS texts and
error strings it was given. Written raw to a terminal, an ESC sequence in such a string can
retitle the window, recolour the screen, move the cursor or hide text; a bidi override can
make text read differently from what it is. So every printer-provided string passes through
``terminal_safe`` before it reaches a terminal (the live panel, the plain lines, the doctor's
table, error messages). JSON output is not touched: it escapes control characters itself and
must stay exact.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

__all__ = ["UNSAFE_CHARACTERS", "terminal_safe", "terminal_safe_copy"]

_T = TypeVar("_T")

# C0 controls (incl. ESC, BEL, BS, CR), DEL, C1 controls (incl. CSI 0x9B and OSC 0x9D, which
# some terminals honour on their own), the bidi embeddings, overrides and isolates, the
# zero-width marks that steer them, the line/paragraph separators, and lone surrogates (which
# cannot even be encoded for the terminal).
UNSAFE_CHARACTERS = (
    "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff"
)
_UNSAFE = re.compile(f"[{UNSAFE_CHARACTERS}]")
# Whitespace controls become one space, so that "a\tb" does not read "ab".
_SPACES = frozenset("\t\n\r\x0b\x0c\x85\u2028\u2029")


def _replace(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SPACES:
        return " "
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"
    return ""


def terminal_safe(text: object) -> str:
    """``text`` (converted with ``str``) without control characters or bidi controls.

    Whitespace controls (tab, newline, ...) become a space, lone surrogates become U+FFFD,
    everything else unsafe is dropped. Printable text, including any other non-ASCII, is
    kept as it is.
    """
    value = text if isinstance(text, str) else str(text)
    if value.isascii() and value.isprintable():  # the common case: nothing to do
        return value
    return _UNSAFE.sub(_replace, value)


def terminal_safe_copy(value: _T) -> _T:
    """``value`` with every string inside it made terminal-safe: dataclasses (frozen ones
    too), tuples, lists and mappings are copied where something changed, everything else is
    returned as it is (enums included). For views that render a whole snapshot: new fields
    are covered without a change here."""
    return _copy(value, 0)  # type: ignore[no-any-return]


_MAX_DEPTH = 40  # printer data is shallow; deeper (hostile) nesting is left to the caller


def _copy(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is str:
        return terminal_safe(value)
    if depth > _MAX_DEPTH or value is None or kind in (int, float, bool) or isinstance(value, Enum):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            old = getattr(value, f.name)
            new = _copy(old, depth + 1)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, tuple | list):
        items = [_copy(item, depth + 1) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return kind(items) if kind in (tuple, list) else tuple(items)
    if isinstance(value, Mapping):
        pairs = [(_copy(k, depth + 1), _copy(v, depth + 1)) for k, v in value.items()]
        if all(
            k is old_k and v is old_v
            for (k, v), (old_k, old_v) in zip(pairs, value.items(), strict=True)
        ):
            return value
        return dict(pairs)
    return value
