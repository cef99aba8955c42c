"""``bambu-lan status`` against a simulated A1: one full state, then exit."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.cli.conftest import Cli, Result

from bambu_lan.sim import SimThread, SimulatedPrinter


@pytest.mark.every_profile
def test_status_json_has_typed_fields_raw_connection_and_info(
    cli: Cli, printer_env: SimulatedPrinter, no_secret: Callable[[Result], None]
) -> None:
    result = cli("status", "--json")

    assert result.code == 0, result.err
    data = result.json()
    assert data["serial"] == printer_env.serial
    assert data["job"]["state"] == "IDLE"
    assert data["complete"] is True
    temps = data["temperatures"]
    assert isinstance(temps["nozzle"], float)
    assert isinstance(temps["bed"], float)
    has_chamber = printer_env.profile.has_chamber_sensor  # not on an A1
    assert temps["chamber_sensor"] is has_chamber
    assert isinstance(temps["chamber"], float) if has_chamber else temps["chamber"] is None
    # raw: the merged `print` object, keys as the printer names them.
    for key in ("gcode_state", "nozzle_temper", "bed_temper", "ams", "lights_report"):
        assert key in data["raw"]
    assert data["connection"]["state"] == "connected"
    assert data["connection"]["trust"] == "ca"
    assert data["connection"]["host"] == printer_env.host
    assert data["info"]["model"] == printer_env.profile.product_name.removeprefix("Bambu Lab ")
    assert data["info"]["firmware"]
    assert data["ams"][0]["trays"][0]["type"]
    no_secret(result)


def test_status_json_imports_only_what_it_prints(cli_subprocess_env: dict[str, str]) -> None:
    # The panel's modules (and rich), the certificate parser, the config file reader: none of
    # them is needed to print one state as JSON, and each costs a cold start milliseconds.
    code = (
        "import contextlib, io, json, sys\n"
        "from bambu_lan.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    main(['status', '--json'])\n"
        "assert json.loads(out.getvalue())['complete']\n"
        "heavy = ('bambu_lan.cli.view', 'rich', 'cryptography', 'tomllib', 'difflib')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=cli_subprocess_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_status_json_during_a_print(
    cli: Cli, sim_thread: SimThread[SimulatedPrinter], printer_env: SimulatedPrinter
) -> None:
    sim_thread.call(lambda: printer_env.model.start_print(layers=40, name="cube"))

    data = cli("status", "--json").json()

    assert data["job"]["state"] in ("PREPARE", "RUNNING")
    assert data["job"]["name"] == "cube"
    assert data["job"]["total_layers"] == 40
    assert data["raw"]["subtask_name"] == "cube"


def test_status_panel_and_plain_line(
    cli: Cli, printer_env: SimulatedPrinter, no_secret: Callable[[Result], None]
) -> None:
    panel = cli("status")
    plain = cli("status", "--plain")

    assert panel.code == 0, panel.err
    for words in (printer_env.serial, "IDLE", "nozzle", "no sensor", "slot 1", "PLA"):
        assert words in panel.out
    assert plain.code == 0, plain.err
    assert len(plain.lines) == 1
    assert printer_env.serial in plain.out
    assert "IDLE" in plain.out
    no_secret(panel)
    no_secret(plain)


def test_status_from_a_config_profile(
    cli: Cli, printer_env: SimulatedPrinter, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("BAMBU_HOST", "BAMBU_PORT", "BAMBU_SERIAL", "BAMBU_ACCESS_CODE", "BAMBU_CA_FILE"):
        monkeypatch.delenv(name)
    (isolated_env / "config.toml").write_text(
        f"""
[printers.bench]
host = "{printer_env.host}"
port = {printer_env.port}
serial = "{printer_env.serial}"
access_code = "{printer_env.access_code}"
ca_file = "{printer_env.ca_path}"
""",
        encoding="utf-8",
    )

    result = cli("status", "--json", "--printer", "bench")

    assert result.code == 0, result.err
    assert result.json()["connection"]["name"] == "bench"
    assert printer_env.access_code not in result.out + result.err


def test_status_pins_the_certificate_on_first_use_then_trust_lists_and_forgets_it(
    cli: Cli, printer_env: SimulatedPrinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BAMBU_CA_FILE")  # no CA: trust on first use

    first = cli("status", "--json")
    listed = cli("trust", "list", "--json")
    forgot = cli("trust", "forget", printer_env.serial)
    again = cli("trust", "forget", printer_env.serial)

    assert first.code == 0, first.err
    assert first.json()["connection"]["trust"] == "pin"
    assert listed.json()["printers"] == {printer_env.serial: printer_env.fingerprint}
    assert forgot.code == 0
    assert "forgot" in forgot.out
    assert again.code == 2
    assert again.err.startswith("error: ")
    assert "hint: " in again.err
    assert cli("trust", "list").out.startswith("no pinned printers")


def test_status_panel_shows_alerts_and_print_error_in_words(
    cli: Cli, sim_thread: SimThread[SimulatedPrinter], printer_env: SimulatedPrinter
) -> None:
    model = printer_env.model

    def trouble() -> None:
        model.start_print(layers=300, prepare_seconds=0.0, stage_seconds=0.0)
        model.raise_hms("0300_1000_0002_0001")
        model.run_out_of_filament()

    sim_thread.call(trouble)

    panel = cli("status")
    data = cli("status", "--json").json()

    assert panel.code == 0, panel.err
    assert "0300_1000_0002_0001" in panel.out
    assert "hotend cooling fan" in panel.out
    assert "wiki.bambulab.com" in panel.out
    assert "0300_8015" in panel.out  # print_error, with its text
    assert "external spool has run out" in panel.out
    assert data["job"]["state"] == "PAUSE"
    assert data["hms"][0]["short"] == "0300_1000_0002_0001"
    assert data["print_error"]["hex"] == "0300_8015"


def test_panel_before_the_first_report() -> None:
    from rich.console import Console

    from bambu_lan.cli.view import Snapshot, plain_line, render

    snap = Snapshot(label="03919A3B1200123", state=None, status=None)
    console = Console(width=100, record=True)
    console.print(render(snap))

    assert "waiting for the first full report" in console.export_text()
    assert "waiting for the first report" in plain_line(snap)
