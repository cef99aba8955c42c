"""``bambu-lan print``: the command line over ``Printer.print_file``, in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.cli.conftest import Cli, Result
from tests.files.make_3mf import make_3mf

from bambu_lan.sim import SimThread, SimulatedPrinter


def test_print_json(
    cli: Cli, storage_env: SimulatedPrinter, tmp_path: Path, no_secret: Callable[[Result], None]
) -> None:
    source = make_3mf(tmp_path / "cube.gcode.3mf", plates=(1, 2))
    result = cli("print", str(source), "--plate", "2", "--no-ams", "--timelapse", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["ok"] is True and data["name"] == "cube" and data["plate"] == 2
    assert data["state"] in ("PREPARE", "RUNNING")
    assert set(data["timings"]) == {"check", "upload", "command"}
    assert storage_env.model.state["subtask_name"] == "cube"
    no_secret(result)


def test_print_text_then_busy(cli: Cli, storage_env: SimulatedPrinter, tmp_path: Path) -> None:
    source = make_3mf(tmp_path / "cube.gcode.3mf")
    first = cli("print", str(source), "--no-bed-leveling")
    assert first.code == 0, first.err
    assert "printing cube (plate 1)" in first.out and "upload" in first.out
    again = cli("print", str(source))
    assert again.code == 2
    assert again.err.startswith("error: ") and "busy" in again.err and "hint: " in again.err


def test_a_pause_at_start_is_one_error_with_the_printers_reason(
    cli: Cli, sim_thread: SimThread[SimulatedPrinter], storage_env: SimulatedPrinter, tmp_path: Path
) -> None:
    sim_thread.call(storage_env.model.pause_next_start)  # the filament does not feed
    result = cli("print", str(make_3mf(tmp_path / "cube.gcode.3mf")))
    assert result.code == 2
    assert result.err.splitlines() == [
        "error: cube.gcode.3mf paused at its start: Unable to feed filament into the extruder "
        "(error 0700_8006)",
        "hint: see the printer's screen; when the cause is cleared, `bambu-lan send resume`, "
        "or `bambu-lan send stop` to drop the job",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--plate", "3"), "no sliced plate 3"),
        (("--ams-map", "9"), "tray 9 is not on this printer"),
        (("--ams-map", "x"), "comma-separated"),
        (("--ams-map", "0", "--no-ams"), "not both"),
        (("--no-upload",), "not on the printer's card"),
    ],
)
def test_errors_exit_2(
    cli: Cli, storage_env: SimulatedPrinter, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    source = make_3mf(tmp_path / "cube.gcode.3mf")
    result = cli("print", str(source), *args)
    assert result.code == 2, result.err
    assert message in result.err and "Traceback" not in result.err


def test_developer_mode_off(
    cli: Cli, sim_thread: SimThread[SimulatedPrinter], storage_env: SimulatedPrinter, tmp_path: Path
) -> None:
    sim_thread.call(storage_env.model.set_dev_mode, False)
    result = cli("print", str(make_3mf(tmp_path / "cube.gcode.3mf")), "--json")
    assert result.code == 2
    assert result.json()["error"]["type"] == "DeveloperModeRequired"
    assert "hint: " in result.err and "Developer Mode" in result.err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: make_3mf(d / "p1s.gcode.3mf", model_id="C12"), "sliced for the P1S"),
        (lambda d: make_3mf(d / "w\u00fcrfel.gcode.3mf"), "non-ASCII"),
        (lambda d: (d / "x.gcode.3mf").write_text("no zip") and d / "x.gcode.3mf", "not a 3MF"),
        (lambda d: d / "missing.gcode.3mf", "no such file"),
    ],
)
def test_bad_files_exit_2_with_a_hint(
    cli: Cli, storage_env: SimulatedPrinter, tmp_path: Path, make: object, message: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    result = cli("print", str(path))
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0], result.err
    assert lines[1].startswith("hint: ")
    assert storage_env.ftps is not None and storage_env.ftps.stats.connections == 0


def test_card_full_exit_2_and_nothing_left(
    cli: Cli, sim_thread: SimThread[SimulatedPrinter], storage_env: SimulatedPrinter, tmp_path: Path
) -> None:
    assert storage_env.card is not None
    storage_env.card.size_limit = 200_000
    result = cli("print", str(make_3mf(tmp_path / "big.gcode.3mf", padding=600_000)))
    assert result.code == 2
    assert "card is full" in result.err and "hint: " in result.err
    assert "/big.gcode.3mf" not in storage_env.card.names()
    assert storage_env.model.gcode_state == "IDLE"


def test_sync_printer_prints(
    sim_thread: SimThread[SimulatedPrinter], storage_env: SimulatedPrinter, tmp_path: Path
) -> None:
    from bambu_lan import SyncPrinter

    sim = storage_env
    assert sim.ftps is not None
    with SyncPrinter(
        sim.host, sim.serial, sim.access_code, port=sim.port, ca_file=sim.ca_path,
        ftps_port=sim.ftps.port,
    ) as printer:  # fmt: skip
        started = printer.print_file(make_3mf(tmp_path / "sync.gcode.3mf"), plate=1)
    assert started.name == "sync" and started.state.job.state.active
