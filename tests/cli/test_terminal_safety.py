"""Printer-provided text never reaches a terminal raw: every string of a report (job and file
names, AMS tray names, light nodes, firmware and model names, HMS and event texts) carries
escape sequences, C1 controls and bidi overrides into the panel, the plain lines and the
events; none of them comes out. JSON output keeps them exact."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from tests.cli.conftest import Cli

from bambu_lan.cli.view import Snapshot, event_line, plain_line, print_once
from bambu_lan.protocol.decode import DecodeStats
from bambu_lan.protocol.events import EventTracker
from bambu_lan.protocol.state import StateBuilder, info_from_version_reply
from bambu_lan.sim import SimThread, SimulatedPrinter
from bambu_lan.sim.printer import PrinterModel
from bambu_lan.sim.profiles import A1
from bambu_lan.text import UNSAFE_CHARACTERS

SERIAL = "03919A3B1200123"
# What a hostile job name does on a terminal: retitle the window (OSC 0 + BEL), recolour,
# clear the screen, C1 CSI/OSC, reverse the text (bidi override), backspace over it.
HOSTILE = "\x1b]0;PWNED\x07\x1b[41;1m\x1b[2J\x9b31m\x9d0;x\x9c\u202eevil\u2066\x08\x7f\x00"
MARKERS = ("\x07", "\x1b]0;", "\x1b[41;1m", "\x1b[2J", "\x9b", "\x9d", "\u202e", "\u2066",
           "\x08", "\x7f", "\x00")  # fmt: skip
UNSAFE = re.compile(f"[{UNSAFE_CHARACTERS}]")


def poison(value: Any, keep: Callable[[str], bool] = lambda _: False) -> Any:
    """``value`` with HOSTILE appended to every string (keys of objects too)."""
    if isinstance(value, str):
        return value if keep(value) else value + HOSTILE
    if isinstance(value, list):
        return [poison(item, keep) for item in value]
    if isinstance(value, dict):
        return {poison(k, keep) if isinstance(k, str) and k.endswith("_node") else k:
                poison(v, keep) for k, v in value.items()}  # fmt: skip
    return value


def model_report() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A full A1 report printing from an AMS tray, with an HMS alert and a print error."""
    model = PrinterModel(A1, SERIAL, time_scale=1.0, seed=3)
    model.start_print(name="job", file="part.gcode.3mf", layers=20)
    model.raise_hms("0300_0100_0001_0007")
    report = model.full_report()
    body: dict[str, Any] = report["print"]
    body["print_error"] = 50348044
    return body, model.version_modules


def hostile_snapshot(*, every_string: bool) -> tuple[Snapshot, list[Any]]:
    body, modules = model_report()
    if every_string:
        body, modules = poison(body), poison(modules)
    else:  # the names people choose, with the rest of the report parsing as usual
        body["subtask_name"] += HOSTILE
        body["gcode_file"] += HOSTILE
        for unit in body["ams"]["ams"]:
            for tray in unit["tray"]:
                for key in ("tray_type", "tray_sub_brands", "tray_id_name"):
                    if key in tray:
                        tray[key] += HOSTILE
        for light in body.get("lights_report", []):
            light["node"] += HOSTILE
    builder = StateBuilder(SERIAL, DecodeStats())
    tracker = EventTracker(SERIAL)
    idle = builder.build({**body, "gcode_state": "IDLE", "hms": []}, None, True)
    state = builder.build(body, None, True)
    tracker.update(idle)
    events = tracker.update(state)  # job started (its name), HMS raised (its text)
    assert events
    info = info_from_version_reply({"module": modules}, SERIAL)
    snap = Snapshot(label="shop" + HOSTILE, state=state, status=None, info=info,
                    events=tuple(events), title="t" + HOSTILE)  # fmt: skip
    return snap, events


def assert_clean(text: str) -> None:
    for marker in MARKERS:
        assert marker not in text, (marker, text)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich writes to a pipe as it would to a colour terminal (escapes and hyperlinks)."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.mark.usefixtures("terminal")
@pytest.mark.parametrize("every_string", [False, True], ids=["names", "every-string"])
def test_panel_on_a_terminal(every_string: bool, capsys: pytest.CaptureFixture[str]) -> None:
    snap, _ = hostile_snapshot(every_string=every_string)
    print_once(snap)  # the view's own console, as `status` draws it

    text = capsys.readouterr().out
    assert "\x1b[" in text  # a terminal's output: rich's own escapes are there
    assert "PWNED" in text  # the text is there, only harmless
    assert_clean(text)


@pytest.mark.parametrize("every_string", [False, True], ids=["names", "every-string"])
def test_panel_without_a_terminal_has_no_control_characters(
    every_string: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    snap, _ = hostile_snapshot(every_string=every_string)
    print_once(snap)  # no terminal: rich adds no escapes, so any would be the printer's

    out = capsys.readouterr().out
    assert "PWNED" in out
    assert UNSAFE.search(out.replace("\n", "")) is None


@pytest.mark.parametrize("every_string", [False, True], ids=["names", "every-string"])
def test_plain_lines_and_events(every_string: bool) -> None:
    snap, events = hostile_snapshot(every_string=every_string)
    lines = [plain_line(snap), *(event_line(e) for e in events)]

    assert "PWNED" in lines[0]
    for line in lines:
        assert UNSAFE.search(line) is None, line


@pytest.mark.usefixtures("terminal")
def test_rich_markup_in_a_name_is_shown_not_obeyed(capsys: pytest.CaptureFixture[str]) -> None:
    body, _modules = model_report()
    body["ams"]["ams"][0]["tray"][0]["tray_type"] = "[link=https://evil.example]PLA[/link]"
    body["lights_report"][0]["node"] = "[blink]chamber[/blink]"
    state = StateBuilder(SERIAL, DecodeStats()).build(body, None, True)
    print_once(Snapshot(label="x", state=state, status=None))

    text = capsys.readouterr().out
    assert "[link=https://evil.example]" in text
    assert "[blink]" in text
    assert re.search(r"\x1b\]8;[^\x1b]*evil", text) is None  # no hyperlink was made


# --- through the real CLI and the simulator ------------------------------------------------


def test_watch_plain_through_the_simulator(
    sim_thread: SimThread[SimulatedPrinter],
    printer_env: SimulatedPrinter,
    cli_subprocess_env: dict[str, str],
) -> None:
    # A real process: its first line says it is watching, then a print with a hostile
    # name and file starts (the job_started event line quotes them).
    process = subprocess.Popen(
        [sys.executable, "-c", "from bambu_lan.cli.main import main; main()", "watch", "--plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_subprocess_env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline()]
        sim_thread.call(
            lambda: printer_env.model.start_print(
                name="job" + HOSTILE, file="part" + HOSTILE + ".gcode.3mf", layers=500
            )
        )
        while "job_started" not in lines[-1]:
            lines.append(process.stdout.readline())
            assert lines[-1], "the watch ended early"
        lines.append(process.stdout.readline())  # the state line after the event
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    text = "".join(lines)
    assert "PWNED" in text
    assert UNSAFE.search(text.replace("\n", "")) is None, text
    assert_clean(err)


def test_json_keeps_the_printers_text_exact(
    cli: Cli, sim_thread: SimThread[SimulatedPrinter], printer_env: SimulatedPrinter
) -> None:
    name = "job" + HOSTILE
    sim_thread.call(lambda: printer_env.model.start_print(name=name, layers=500))
    result = cli("status", "--json")

    assert result.code == 0, result.err
    assert orjson.loads(result.out)["job"]["name"] == name
    assert "\x1b" not in result.out  # escaped by JSON, as \u001b


def _poison_version(sim_thread: SimThread[SimulatedPrinter], sim: SimulatedPrinter) -> None:
    def poison_modules() -> None:
        for module in sim.model.data.version_modules:
            for key in ("sw_ver", "hw_ver", "project_name"):
                if isinstance(module.get(key), str):
                    module[key] += HOSTILE

    sim_thread.call(poison_modules)


@pytest.mark.parametrize("on_terminal", [False, True], ids=["pipe", "terminal"])
def test_doctor_table(
    cli: Cli,
    sim_thread: SimThread[SimulatedPrinter],
    printer_env: SimulatedPrinter,
    monkeypatch: pytest.MonkeyPatch,
    on_terminal: bool,
) -> None:
    _poison_version(sim_thread, printer_env)
    if on_terminal:
        monkeypatch.setenv("FORCE_COLOR", "1")
        monkeypatch.setenv("COLUMNS", "200")

    result = cli("doctor", "--timeout", "3")

    assert result.code == 0, result.out + result.err
    assert "PWNED" in result.out  # the firmware version is shown, harmless
    assert_clean(result.out + result.err)
    if not on_terminal:
        assert UNSAFE.search(result.out.replace("\n", "")) is None


def test_doctor_json_keeps_the_printers_text_exact(
    cli: Cli, sim_thread: SimThread[SimulatedPrinter], printer_env: SimulatedPrinter
) -> None:
    _poison_version(sim_thread, printer_env)

    result = cli("doctor", "--json", "--timeout", "3")

    assert result.code == 0, result.err
    assert orjson.loads(result.out)["target"]["firmware"].endswith(HOSTILE)


def test_error_messages_quoting_the_printer(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    # A refusal reason comes from the printer and ends up in the error line.
    from bambu_lan.errors import CommandRejected

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise CommandRejected("no" + HOSTILE, 1, command="print.pause")

    monkeypatch.setattr("bambu_lan.cli.send_cmd.execute", refuse)
    result = cli("send", "pause", "--host", "127.0.0.1", "--serial", SERIAL)

    assert result.code == 2
    assert "PWNED" in result.err
    assert UNSAFE.search(result.err.replace("\n", "")) is None
