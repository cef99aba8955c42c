"""The subset of G-code the simulated printer understands (``print.gcode_line``, §5.4).

One interpreter per word, found in a table: temperatures (M104/M109, M140/M190), fans
(M106/M107) and homing (G28). Everything else is accepted and ignored, as the real printer
does with commands that have no visible effect in the report. ``;`` starts a comment.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from bambu_lan.sim import report
from bambu_lan.sim.model.state import FAN_OUTPUTS, ModelState

_NOZZLE_LIMITS: Final = (0, 300)
_BED_LIMITS: Final = (0, 120)

_Interpreter = Callable[[ModelState, dict[str, str]], None]
_WORDS: dict[str, _Interpreter] = {}


def _word(*words: str) -> Callable[[_Interpreter], _Interpreter]:
    """Register an interpreter for G-code ``words`` (``"M104"``) in the table."""

    def register(interpreter: _Interpreter) -> _Interpreter:
        for word in words:
            _WORDS[word] = interpreter
        return interpreter

    return register


def run_gcode(state: ModelState, text: str) -> None:
    """Apply every line of ``text`` that has a visible effect to ``state``."""
    for line in text.splitlines():
        words = line.split(";", 1)[0].upper().split()
        if not words:
            continue
        interpret = _WORDS.get(words[0])
        if interpret is not None:
            interpret(state, {word[0]: word[1:] for word in words[1:]})


def _number(args: dict[str, str], letter: str) -> float | None:
    text = args.get(letter)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@_word("M104", "M109")
def _nozzle_target(state: ModelState, args: dict[str, str]) -> None:
    celsius = _number(args, "S")
    if celsius is not None:
        low, high = _NOZZLE_LIMITS
        state.set("nozzle_target_temper", round(min(max(celsius, low), high)))


@_word("M140", "M190")
def _bed_target(state: ModelState, args: dict[str, str]) -> None:
    celsius = _number(args, "S")
    if celsius is not None:
        low, high = _BED_LIMITS
        state.set("bed_target_temper", round(min(max(celsius, low), high)))


@_word("M106")
def _fan(state: ModelState, args: dict[str, str]) -> None:
    fan = _number(args, "P")
    speed = _number(args, "S")
    index = 1 if fan is None else int(fan)
    if speed is None or index not in FAN_OUTPUTS:
        return
    if index != 1 and not report.has_aux_fans(state.profile):
        return  # the A1 family has no aux or chamber fan
    state.set_fan(index, round(min(max(speed, 0.0), 255.0)))


@_word("M107")
def _fan_off(state: ModelState, args: dict[str, str]) -> None:
    state.set_fan(1, 0)


@_word("G28")
def _home(state: ModelState, args: dict[str, str]) -> None:
    axes = {"X": report.HOME_X, "Y": report.HOME_Y, "Z": report.HOME_Z}
    mask = 0
    for letter, bit in axes.items():
        if letter in args:
            mask |= bit
    state.set("home_flag", state.report["home_flag"] | (mask or report.HOME_XYZ))
