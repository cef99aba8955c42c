"""``bambu-lan send``: exit code 0 only when the printer accepted the command."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.cli.conftest import Cli, Result

from bambu_lan.sim import SimThread, SimulatedPrinter


@pytest.fixture
def dev_mode_off(sim_thread: SimThread[SimulatedPrinter], printer_env: SimulatedPrinter) -> None:
    sim_thread.call(printer_env.model.set_dev_mode, False)


@pytest.fixture
def printing(sim_thread: SimThread[SimulatedPrinter], printer_env: SimulatedPrinter) -> None:
    """A long print under way (it will not finish during the test)."""
    sim_thread.call(lambda: printer_env.model.start_print(layers=500, layer_seconds=60))


@pytest.mark.usefixtures("dev_mode_off")
def test_light_works_without_developer_mode(
    cli: Cli,
    sim_thread: SimThread[SimulatedPrinter],
    printer_env: SimulatedPrinter,
    no_secret: Callable[[Result], None],
) -> None:
    on = cli("send", "light", "on", "--json")
    off = cli("send", "light", "off")

    assert on.code == 0, on.err
    data = on.json()
    assert data["ok"] is True
    assert data["command"] == "system.ledctrl"
    assert data["confirmed"] is True
    assert data["reply"]["result"] == "success"
    assert off.code == 0, off.err
    assert "system.ledctrl accepted" in off.out
    lights = sim_thread.call(lambda: list(printer_env.model.state["lights_report"]))
    assert lights[0]["mode"] == "off"
    no_secret(on)
    no_secret(off)


@pytest.mark.usefixtures("dev_mode_off", "printing")
def test_pause_without_developer_mode_says_so(
    cli: Cli, no_secret: Callable[[Result], None]
) -> None:
    result = cli("send", "pause")

    assert result.code == 2
    assert result.out == ""
    error, hint = result.err.splitlines()[:2]
    assert error.startswith("error: print.pause refused")
    assert "Developer Mode" in error
    assert hint.startswith("hint: ")
    assert "Developer Mode" in hint
    assert "Traceback" not in result.err
    no_secret(result)


@pytest.mark.usefixtures("dev_mode_off", "printing")
def test_pause_without_developer_mode_as_json(
    cli: Cli, no_secret: Callable[[Result], None]
) -> None:
    result = cli("send", "pause", "--json")

    assert result.code == 2
    data = result.json()
    assert data["ok"] is False
    assert data["error"]["type"] == "DeveloperModeRequired"
    assert "Developer Mode" in data["error"]["message"]
    assert "Developer Mode" in data["error"]["hint"]
    no_secret(result)


@pytest.mark.usefixtures("printing")
def test_job_control_with_developer_mode(
    cli: Cli, sim_thread: SimThread[SimulatedPrinter], printer_env: SimulatedPrinter
) -> None:
    def gcode_state() -> str:
        return sim_thread.call(lambda: printer_env.model.gcode_state)

    paused = cli("send", "pause", "--json")
    assert paused.code == 0, paused.err
    assert paused.json()["confirmed"] is True
    assert gcode_state() == "PAUSE"

    resumed = cli("send", "resume")
    assert resumed.code == 0, resumed.err
    assert gcode_state() in ("RUNNING", "PREPARE")

    sport = cli("send", "speed", "sport", "--json")
    assert sport.code == 0, sport.err
    assert sport.json()["command"] == "print.print_speed"
    assert sim_thread.call(lambda: printer_env.model.state["spd_lvl"]) == 3

    stopped = cli("send", "stop", "--json")
    assert stopped.code == 0, stopped.err
    assert gcode_state() == "FAILED"


@pytest.mark.usefixtures("printer_env")
def test_gcode_and_raw(cli: Cli) -> None:
    gcode = cli("send", "gcode", "M104 S200", "M140 S55", "--json")
    raw = cli(
        "send", "raw", "system", "ledctrl",
        '{"led_node": "chamber_light", "led_mode": "on", "led_on_time": 500,'
        ' "led_off_time": 500, "loop_times": 0, "interval_time": 0}',
        "--json",
    )  # fmt: skip

    assert gcode.code == 0, gcode.err
    assert gcode.json()["reply"]["param"] == "M104 S200\nM140 S55\n"
    assert raw.code == 0, raw.err
    assert raw.json()["reply"]["result"] == "success"


@pytest.mark.usefixtures("printer_env")
def test_a_refused_command_exits_non_zero(cli: Cli) -> None:
    # The simulated printer has no job to pause: it answers result=failed.
    result = cli("send", "pause", "--json")

    assert result.code == 2
    assert result.json()["error"]["type"] == "CommandRejected"
    assert "no print job" in result.json()["error"]["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("send", "speed", "warp"), "use 1-4"),
        (("send", "raw", "system", "ledctrl", "{nope"), "not valid JSON"),
        (("send", "raw", "system", "ledctrl", "[1]"), "must be a JSON object"),
        (("send", "light", "dim"), "'dim' is not one of"),
    ],
)
def test_bad_arguments_are_usage_errors(cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)

    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err
