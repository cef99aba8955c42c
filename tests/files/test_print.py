"""``Printer.print_file`` against the simulated printer: check, upload, start, and every way
it can go wrong (nothing sent before the checks pass; never a half file started)."""

from __future__ import annotations

import asyncio
import os
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from tests.conftest import SimFactory
from tests.files.make_3mf import make_3mf

from bambu_lan import Printer, PrinterOptions
from bambu_lan.errors import (
    CommandRejected,
    DeveloperModeRequired,
    PrintFailed,
    PrintFileError,
    StorageFull,
)
from bambu_lan.print_job import PrintOptions
from bambu_lan.protocol.commands import raw
from bambu_lan.protocol.state import JobState
from bambu_lan.sim import SimulatedPrinter


def printer_for(sim: SimulatedPrinter) -> Printer:
    assert sim.ftps is not None
    return Printer(
        sim.host,
        sim.serial,
        sim.access_code,
        port=sim.port,
        ca_file=sim.ca_path,
        ftps_port=sim.ftps.port,
        options=PrinterOptions(command_timeout=5, confirm_timeout=2),
    )


@pytest.fixture
async def printer(sim: SimulatedPrinter) -> AsyncIterator[Printer]:
    async with printer_for(sim) as connected:
        await connected.wait_for_state()
        yield connected


def project_requests(sim: SimulatedPrinter) -> list[dict[str, object]]:
    out = []
    for logged in sim.model.request_log:
        body = logged.message.get("print")
        if isinstance(body, dict) and body.get("command") in ("project_file", "gcode_file"):
            out.append(body)
    return out


def card_names(sim: SimulatedPrinter) -> list[str]:
    assert sim.card is not None
    return sim.card.names()


async def test_print_uploads_starts_and_reports_the_job(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    source = make_3mf(tmp_path / "cube.gcode.3mf", layers=9, padding=200_000)
    seen: list[int] = []
    started = await printer.print_file(source, progress=lambda done, total: seen.append(done))

    assert started.name == "cube" and started.remote == "/cube.gcode.3mf"
    assert started.state.job.state in (JobState.PREPARE, JobState.RUNNING)
    assert started.uploaded == source.stat().st_size == seen[-1]
    assert set(started.timings) == {"check", "upload", "command"}
    assert "/cube.gcode.3mf" in card_names(sim)
    assert sim.model.state["total_layer_num"] == 9  # read from the 3MF on the card
    (request,) = project_requests(sim)
    assert request["url"] == "file:///sdcard/cube.gcode.3mf"
    assert request["param"] == "Metadata/plate_1.gcode"
    assert request["subtask_name"] == "cube"
    assert request["bed_leveling"] is True and request["timelapse"] is False
    # No tray holds white PLA (trays 0-2: PLA in other colours, 3: PETG): the first PLA tray.
    assert request["use_ams"] is True and request["ams_mapping"] == [0]


async def test_options_reach_the_printer(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    source = make_3mf(
        tmp_path / "two.gcode.3mf",
        plates=(1, 2),
        filaments=(("PLA", "#161616"), ("PETG", "#0A2989")),
    )
    options = PrintOptions(ams_mapping=[2, 3], bed_leveling=False, timelapse=True)
    await printer.print_file(source, plate=2, options=options)
    (request,) = project_requests(sim)
    assert request["param"] == "Metadata/plate_2.gcode"
    assert request["ams_mapping"] == [2, 3] and request["use_ams"] is True
    assert request["bed_leveling"] is False and request["timelapse"] is True


async def test_a_finished_print_leaves_a_timelapse_and_thumbnail(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    await printer.print_file(
        make_3mf(tmp_path / "t.gcode.3mf"), options=PrintOptions(timelapse=True)
    )
    sim.model.finish_now()
    names = card_names(sim)
    videos = [n for n in names if n.startswith("/timelapse/video_") and n.endswith(".avi")]
    thumbs = [n for n in names if n.startswith("/timelapse/thumbnail/") and n.endswith(".jpg")]
    assert len(videos) == 1 and len(thumbs) == 1
    assert Path(videos[0]).stem == Path(thumbs[0]).stem
    async with printer.storage() as storage:
        listed = await storage.names("/timelapse")
    assert videos[0] in listed


async def test_external_spool_without_ams(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    await printer.print_file(
        make_3mf(tmp_path / "s.gcode.3mf"), options=PrintOptions(use_ams=False)
    )
    (request,) = project_requests(sim)
    assert request["use_ams"] is False and request["ams_mapping"] == []


async def test_already_on_the_card_without_upload(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    assert sim.card is not None and sim.ftps is not None
    sim.card.write("/cache/old.gcode.3mf", make_3mf(tmp_path / "old.gcode.3mf").read_bytes())
    started = await printer.print_file("/cache/old.gcode.3mf", upload=False)
    assert started.uploaded == 0 and started.remote == "/cache/old.gcode.3mf"
    assert sim.ftps.stats.uploads == 0


async def test_plain_gcode_uses_gcode_file(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    source = tmp_path / "part.gcode"
    source.write_bytes(b"; total layer number: 3\nG28\n")
    started = await printer.print_file(source)
    assert started.name == "part"
    assert [r["command"] for r in project_requests(sim)] == ["gcode_file"]
    assert project_requests(sim)[0]["param"] == "/sdcard/part.gcode"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda d: make_3mf(d / "p1s.gcode.3mf", model_id="C12"),
            "sliced for the P1S, this printer is a A1",
        ),
        (lambda d: make_3mf(d / "w\u00fcrfel.gcode.3mf"), "non-ASCII"),
        (lambda d: d / "missing.gcode.3mf", "no such file"),
        (lambda d: (d / "x.gcode.3mf").write_text("no zip") and d / "x.gcode.3mf", "not a 3MF"),
        (lambda d: (d / "x.stl").write_text("solid") and d / "x.stl", "neither a sliced"),
        (
            lambda d: make_3mf(d / "red.gcode.3mf", filaments=(("TPU", "#FF0000"),)),
            "is in no AMS tray",
        ),
    ],
)
async def test_bad_files_are_refused_before_anything_is_sent(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path, make: object, message: str
) -> None:
    assert sim.ftps is not None
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(PrintFileError, match=message) as caught:
        await printer.print_file(path)
    assert caught.value.hint
    assert sim.ftps.stats.connections == 0 and project_requests(sim) == []


async def test_plate_out_of_range(sim: SimulatedPrinter, printer: Printer, tmp_path: Path) -> None:
    with pytest.raises(PrintFileError, match="no sliced plate 4"):
        await printer.print_file(make_3mf(tmp_path / "a.gcode.3mf", plates=(1, 2)), plate=4)
    assert project_requests(sim) == []


async def test_bad_ams_maps(sim: SimulatedPrinter, printer: Printer, tmp_path: Path) -> None:
    source = make_3mf(tmp_path / "a.gcode.3mf")
    with pytest.raises(PrintFileError, match="tray 9 is not on this printer"):
        await printer.print_file(source, options=PrintOptions(ams_mapping=[9]))
    with pytest.raises(PrintFileError, match="2 trays but the plate uses 1"):
        await printer.print_file(source, options=PrintOptions(ams_mapping=[0, 1]))
    assert project_requests(sim) == []


async def test_card_full_leaves_nothing_and_starts_nothing(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    small = await sim_factory(card_size=100_000)
    async with printer_for(small) as printer:
        with pytest.raises(StorageFull):
            await printer.print_file(make_3mf(tmp_path / "big.gcode.3mf", padding=500_000))
    assert "/big.gcode.3mf" not in card_names(small) and project_requests(small) == []


async def test_dropped_upload_never_prints_a_half_file(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    assert sim.ftps is not None
    sim.ftps.drop_upload_after(300_000)
    with pytest.raises(Exception, match="connection") as caught:
        await printer.print_file(make_3mf(tmp_path / "d.gcode.3mf", padding=2_000_000))
    assert caught.value.__class__.__name__ == "ConnectError"
    assert "/d.gcode.3mf" not in card_names(sim) and project_requests(sim) == []


async def test_a_different_copy_on_the_card_is_not_printed(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    assert sim.card is not None
    local = make_3mf(tmp_path / "c.gcode.3mf", padding=1000)
    sim.card.write("/c.gcode.3mf", local.read_bytes()[:500])  # a half copy from earlier
    with pytest.raises(PrintFileError, match="incomplete copy"):
        await printer.print_file(local, upload=False)
    assert project_requests(sim) == []


async def test_busy_printer(sim: SimulatedPrinter, printer: Printer, tmp_path: Path) -> None:
    sim.model.start_print(layers=500, layer_seconds=60)
    await asyncio.wait_for(_until_active(printer), 10)
    with pytest.raises(PrintFailed, match="busy") as caught:
        await printer.print_file(make_3mf(tmp_path / "b.gcode.3mf"))
    assert "send stop" in caught.value.hint


async def test_a_job_that_pauses_at_its_start_reports_the_printers_reason(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    # Issue 12's known gap: this ended in a CommandTimeout after start_timeout.
    sim.model.pause_next_start(0x07008006, hms="0700_2000_0002_0001")
    with pytest.raises(PrintFailed) as caught:
        await printer.print_file(make_3mf(tmp_path / "p.gcode.3mf"), start_timeout=20)
    message = str(caught.value)
    assert "p.gcode.3mf paused at its start" in message
    assert "0700_8006" in message and "Unable to feed filament" in message
    assert "0700_2000_0002_0001" in message
    assert "send resume" in caught.value.hint and "send stop" in caught.value.hint
    assert sim.model.gcode_state == "PAUSE"  # left as the printer put it, for the person


async def _until_active(printer: Printer) -> None:
    async for state in printer.states():
        if state.job.state.active:
            return


async def test_developer_mode_off(sim: SimulatedPrinter, printer: Printer, tmp_path: Path) -> None:
    sim.model.set_dev_mode(False)
    with pytest.raises(DeveloperModeRequired) as caught:
        await printer.print_file(make_3mf(tmp_path / "dm.gcode.3mf"))
    assert "Developer Mode" in caught.value.hint
    assert sim.model.gcode_state == "IDLE"


async def test_the_simulator_refuses_missing_files_and_unsupported_names(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    assert sim.card is not None
    with pytest.raises(CommandRejected, match="err_code 83902466"):
        await printer.send(
            raw(
                "print",
                "project_file",
                {"url": "file:///sdcard/nope.gcode.3mf", "param": "Metadata/plate_1.gcode"},
            )
        )
    assert sim.model.state["print_error"] == 0x05004002 and sim.model.gcode_state == "FAILED"
    sim.card.write("/t\u00e9st.gcode.3mf", make_3mf(tmp_path / "x.gcode.3mf").read_bytes())
    with pytest.raises(CommandRejected) as caught:
        await printer.send(
            raw("print", "project_file", {"url": "file:///sdcard/t\u00e9st.gcode.3mf"})
        )
    assert caught.value.err_code == 0x0500400A
    sim.card.write("/one.gcode.3mf", make_3mf(tmp_path / "one.gcode.3mf").read_bytes())
    with pytest.raises(CommandRejected) as caught:
        await printer.send(
            raw(
                "print",
                "project_file",
                {"url": "ftp:///one.gcode.3mf", "param": "Metadata/plate_7.gcode"},
            )
        )
    assert caught.value.err_code == 0x05004002


async def test_the_simulator_takes_the_name_from_the_3mf(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    assert sim.card is not None
    sim.card.write(
        "/m.gcode.3mf", make_3mf(tmp_path / "m.gcode.3mf", title="Benchy", layers=5).read_bytes()
    )
    await printer.send(
        raw(
            "print",
            "project_file",
            {"url": "file:///sdcard/m.gcode.3mf", "param": "Metadata/plate_1.gcode"},
        )
    )
    assert sim.model.state["subtask_name"] == "Benchy" and sim.model.state["total_layer_num"] == 5


def test_options_serialise(tmp_path: Path) -> None:
    from bambu_lan.print_job import project_file_command

    command = project_file_command(
        "/a b.gcode.3mf", PrintOptions(), use_ams=False, ams_mapping=[], model_code="N7"
    )
    payload = command.payload("7")["print"]
    assert payload["url"] == "ftp:///a b.gcode.3mf"  # the newer models take ftp:///
    assert orjson.loads(orjson.dumps(payload)) == payload
    assert os.path.basename(payload["url"]) == "a b.gcode.3mf"


async def test_auto_mapping_prefers_the_same_colour(
    sim: SimulatedPrinter, printer: Printer, tmp_path: Path
) -> None:
    source = make_3mf(tmp_path / "c.gcode.3mf", filaments=(("PLA", "#161616"), ("PETG", "#0A2989")))
    await printer.print_file(source)
    (request,) = project_requests(sim)
    assert request["ams_mapping"] == [2, 3]  # black PLA in tray 2, blue PETG in tray 3


def test_the_simulator_refuses_a_damaged_3mf(
    tmp_path: Path,
) -> None:
    from bambu_lan.sim.ftps_card import PrintFileReader, PrintFileRefused, SimCard

    card = SimCard(tmp_path / "card")
    source = make_3mf(tmp_path / "m.gcode.3mf", title="Benchy")
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        info = archive.getinfo("3D/3dmodel.model")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start : start + 8] = b"\xff" * 8  # the model's compressed bytes, corrupted
    card.write("/bad.gcode.3mf", bytes(data))
    reader = PrintFileReader(card)
    with pytest.raises(PrintFileRefused) as caught:
        reader.open("file:///sdcard/bad.gcode.3mf", "Metadata/plate_1.gcode")
    assert caught.value.code == 0x05004002
