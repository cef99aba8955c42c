"""The watch panel and plain lines for every model with a public capture: every nozzle, the
chamber, every AMS unit and tray, every external spool and the loaded one, nothing missing or
misplaced. The expected values are the hand-read ones of test_captures.py."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from bambu_lan.cli.view import Snapshot, plain_line, render

from .test_captures import EXPECTED, run

NAMES = sorted(EXPECTED)


def panel_lines(name: str) -> tuple[list[str], str]:
    fixture, state, pipe = run(name)
    console = Console(width=120, record=True, color_system=None, file=io.StringIO())
    snap = Snapshot(label=fixture["serial"], state=state, status=None, info=pipe.builder.info)
    console.print(render(snap))
    text = console.export_text()
    lines = [line.strip("│ ").rstrip() for line in text.splitlines()]
    return lines, plain_line(snap)


def find(lines: list[str], start: int, *needles: str) -> int:
    """Index of the first line from ``start`` holding every needle, in that order."""
    for index in range(start, len(lines)):
        line, at = lines[index], 0
        for needle in needles:
            at = line.find(needle, at)
            if at < 0:
                break
            at += len(needle)
        else:
            return index
    raise AssertionError(f"no line after {start} with {needles!r}:\n" + "\n".join(lines))


def temp(current: float, target: float) -> str:
    return f"{current:.1f} → {target:.0f} °C" if target else f"{current:.1f} °C"


@pytest.mark.parametrize("name", NAMES)
def test_panel_shows_every_field(name: str) -> None:
    want = EXPECTED[name]
    lines, _ = panel_lines(name)
    assert want.model in lines[0]
    two = len(want.nozzles) > 1
    for index, current, target, diameter, kind, active in want.nozzles:
        label = ("right nozzle", "left nozzle")[index] if two else "nozzle"
        at = find(
            lines, 0, label, temp(current, target), f"{diameter:g} mm", kind.replace("_", " ")
        )
        assert ("◀ active" in lines[at]) is (active and two)
    find(lines, 0, "bed", temp(*want.bed))
    if want.chamber is None:
        find(lines, 0, "chamber", "no sensor")
    else:
        find(lines, 0, "chamber", f"{want.chamber:.1f}")
    part, aux, chamber, heatbreak = want.fans
    find(lines, 0, f"part {part}%", f"aux {aux}%", f"chamber {chamber}%", f"heatbreak {heatbreak}%")
    at = 0
    loaded_rows = []
    for ams_id, kind, level, percent, _temp, drying, trays in want.ams:
        number = ams_id - 127 if ams_id >= 128 else ams_id % 16 + 1
        header = [f"{kind} {number}"]
        if level is not None:
            header.append(f"{level}/5")
        if percent is not None:
            header.append(f"{percent}%")
        if drying:
            header.append("drying")
        at = find(lines, at, *header)
        for slot, (tray_id, tray_type, color, empty) in enumerate(trays):
            row = "spool" if len(trays) == 1 else f"slot {slot + 1}"
            at = find(
                lines,
                at + 1,
                row,
                "empty" if empty else tray_type,
                "" if empty else f"#{color[:6]}",
            )
            if "◀ loaded" in lines[at]:
                loaded_rows.append(tray_id)
    for tray_id, tray_type, empty in want.external:
        label = "external spool" + (f" {tray_id}" if len(want.external) > 1 else "")
        at = find(lines, at + 1, label, "empty" if empty else tray_type)
        if "◀ loaded" in lines[at]:
            loaded_rows.append(tray_id)
    assert loaded_rows == ([want.active_tray] if want.active_tray is not None else [])
    assert sum("◀ loaded" in line for line in lines) == len(loaded_rows)


@pytest.mark.parametrize("name", NAMES)
def test_plain_line_shows_nozzles_chamber_and_the_loaded_filament(name: str) -> None:
    want = EXPECTED[name]
    _, line = panel_lines(name)
    if len(want.nozzles) > 1:
        for index, current, target, *_rest, active in want.nozzles:
            label = ("right nozzle", "left nozzle")[index]
            assert f"{label} {temp(current, target)}" + (" (active)" if active else "") in line
    else:
        (nozzle,) = want.nozzles
        assert f"nozzle {temp(nozzle[1], nozzle[2])}" in line
    assert ("| chamber " in line) is (want.chamber is not None)
    if want.active_tray is None:
        assert "filament nothing loaded" in line
        return
    in_ams = [t for unit in want.ams for t in unit[6] if t[0] == want.active_tray]
    if in_ams:
        (tray,) = in_ams
        assert f"{tray[1]} #{tray[2][:6]}" in line.partition("filament ")[2]
    else:
        (spool,) = [s for s in want.external if s[0] == want.active_tray]
        label = "external spool" + (f" {spool[0]}" if len(want.external) > 1 else "")
        assert f"filament {label}: {spool[1]}" in line
