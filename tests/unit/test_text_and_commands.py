"""terminal_safe (text.py); send raw and G-code checked before anything is sent; HMS codes
outside 32 bits are malformed, counted and never formatted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bambu_lan.protocol import commands
from bambu_lan.protocol.decode import DecodeStats
from bambu_lan.protocol.errors_table import hms_code
from bambu_lan.protocol.state import StateBuilder
from bambu_lan.text import UNSAFE_CHARACTERS, terminal_safe

HOSTILE = (
    "\x1b]0;pwned\x07"  # OSC: retitle the window
    "\x1b[31;1mred\x1b[0m"  # SGR colours
    "\x9b2J\x9d0;x\x07"  # C1 CSI / OSC
    "\u202eevil\u202c\u2066iso\u2069\u200f"  # bidi override, isolate, mark
    "a\tb\nc\rd\x00e\x7ff\x08g"
    "\ud83d"  # a lone surrogate (non-UTF-8 bytes decoded with surrogateescape)
)


def _has_unsafe(text: str) -> bool:
    import re

    return re.search(f"[{UNSAFE_CHARACTERS}]", text) is not None


def test_terminal_safe_drops_every_unsafe_character() -> None:
    safe = terminal_safe(HOSTILE)
    assert not _has_unsafe(safe)
    assert "\x1b" not in safe
    assert safe.encode("utf-8")  # no lone surrogate left
    assert "a b c d" in safe  # whitespace controls become spaces: words stay apart
    assert "red" in safe
    assert "evil" in safe
    assert "\ufffd" in safe


@pytest.mark.parametrize("code", [*range(0x20), *range(0x7F, 0xA0)])
def test_every_c0_and_c1_control_goes(code: int) -> None:
    assert not _has_unsafe(terminal_safe(f"x{chr(code)}y"))


@pytest.mark.parametrize("text", ["PLA Basic", "Drücker ✓ 打印机", "a[b]c", "100% <ok> & 'q'"])
def test_printable_text_is_kept_as_is(text: str) -> None:
    assert terminal_safe(text) == text


def test_terminal_safe_takes_any_object() -> None:
    assert terminal_safe(42) == "42"
    assert terminal_safe(ValueError("a\x1bb")) == "ab"


# --- send raw and G-code ------------------------------------------------------------------


@pytest.mark.parametrize("key", ["sequence_id", "command"])
def test_raw_cannot_overwrite_the_generated_keys(key: str) -> None:
    with pytest.raises(ValueError, match="cannot be set"):
        commands.raw("system", "ledctrl", {key: "0"})


def test_payload_keeps_sequence_id_and_command_even_from_params() -> None:
    command = commands.Command("system", "ledctrl", {"sequence_id": "0", "command": "x", "a": 1})
    assert command.payload("77") == {"system": {"sequence_id": "77", "command": "ledctrl", "a": 1}}


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("cls", "name", "params", "words"),
    [
        ("system", "x", {"a": "\ud800"}, "cannot be sent as JSON"),
        ("system", "x", {"a": 2**70}, "cannot be sent as JSON"),
        ("system", "x", _nested(400), "cannot be sent as JSON"),
        ("", "x", {}, "class"),
        ("system", "led ctrl", {}, "command"),
        ("sys\x1btem", "x", {}, "class"),
    ],
)
def test_raw_refuses_what_cannot_be_sent(
    cls: str, name: str, params: dict[str, Any], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        commands.raw(cls, name, params)


def test_raw_accepts_ordinary_json() -> None:
    body = json.loads('{"led_node": "chamber_light", "led_mode": "on", "n": [1, 2]}')
    assert commands.raw("system", "ledctrl", body).payload("5")["system"]["n"] == [1, 2]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("M117 \udcff", "not UTF-8"),
        ("M117 Привет", "outside ASCII"),
        ("G1 X1\x1b", "control characters"),
    ],
)
def test_gcode_refuses_what_printers_cannot_read(line: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        commands.gcode([line])


# --- HMS codes outside 32 bits --------------------------------------------------------------


@pytest.mark.parametrize(
    ("attr", "code"),
    [(-1, 65543), (83887360, -65543), (2**32, 65543), (83887360, 2**40)],
)
def test_hms_outside_32_bits_is_malformed_and_counted(attr: int, code: int) -> None:
    stats = DecodeStats()
    builder = StateBuilder("03919A3B1200123", stats)
    good = {"attr": 83887360, "code": 65543}
    state = builder.build({"hms": [{"attr": attr, "code": code}, good]}, None, True)
    assert [a.short for a in state.hms] == ["0500_0500_0001_0007"]
    assert stats.counts["bad_type:hms"] == 1
    with pytest.raises(ValueError, match="outside 32 bits"):
        hms_code(attr, code)


def test_hms_at_the_32_bit_edge_is_fine() -> None:
    assert hms_code(0xFFFFFFFF, 0xFFFFFFFF) == "HMS_FFFF_FFFF_FFFF_FFFF"
