"""Reading sliced 3MF files locally: plates, the model they were sliced for, filaments."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from tests.files.make_3mf import make_3mf

from bambu_lan.errors import PrintFileError
from bambu_lan.threemf import name_problem, read_sliced_file, safe_name_suggestion


def test_plates_model_filaments_and_layers(tmp_path: Path) -> None:
    path = make_3mf(
        tmp_path / "cube.gcode.3mf",
        plates=(1, 3),
        model_id="N2S",
        filaments=(("PLA", "#FFFFFF"), ("PETG", "#0A2989")),
        layers=42,
    )
    sliced = read_sliced_file(path)
    assert [p.index for p in sliced.plates] == [1, 3]
    plate = sliced.plate(3)
    assert plate.model_id == "N2S" and plate.layers == 42
    assert [(f.id, f.type, f.color) for f in plate.filaments] == [
        (1, "PLA", "#FFFFFF"),
        (2, "PETG", "#0A2989"),
    ]
    assert plate.gcode_path == "Metadata/plate_3.gcode"
    assert sliced.to_dict()["plates"][0]["model"] == "A1"


def test_a_plate_that_is_not_there(tmp_path: Path) -> None:
    sliced = read_sliced_file(make_3mf(tmp_path / "a.gcode.3mf", plates=(1, 2)))
    expected = r"no sliced plate 5 \(sliced plates: 1, 2\)"
    with pytest.raises(PrintFileError, match=expected) as caught:
        sliced.plate(5)
    assert "--plate" in caught.value.hint


def test_not_a_3mf_and_a_project_without_gcode(tmp_path: Path) -> None:
    text = tmp_path / "notes.gcode.3mf"
    text.write_text("hello")
    with pytest.raises(PrintFileError, match="not a 3MF file"):
        read_sliced_file(text)
    project = tmp_path / "project.3mf"
    with zipfile.ZipFile(project, "w") as archive:
        archive.writestr("3D/3dmodel.model", "<model/>")
    with pytest.raises(PrintFileError, match="no sliced plate") as caught:
        read_sliced_file(project)
    assert "Export plate sliced file" in caught.value.hint
    with pytest.raises(PrintFileError, match="no such file"):
        read_sliced_file(tmp_path / "missing.gcode.3mf")


def test_a_file_without_slice_info_still_has_plates(tmp_path: Path) -> None:
    path = tmp_path / "bare.gcode.3mf"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Metadata/plate_2.gcode", b"G28\n")
    plate = read_sliced_file(path).plate(2)
    assert plate.model_id == "" and plate.filaments == () and plate.layers is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("cube.gcode.3mf", None),
        ("Cube v2 (final)-1_b.gcode.3mf", None),
        ("würfel.gcode.3mf", "non-ASCII"),
        ("a;b.gcode.3mf", "characters other than"),
        ("x" * 200 + ".3mf", "longer than 128"),
    ],
)
def test_names_the_printer_accepts(name: str, problem: str | None) -> None:
    found = name_problem(name)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_safe_name_suggestion() -> None:
    assert safe_name_suggestion("würfel ä.gcode.3mf") == "wurfel a.gcode.3mf"
    assert name_problem(safe_name_suggestion("テスト;.gcode.3mf")) is None


def test_a_huge_slice_info_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gcode.3mf"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Metadata/plate_1.gcode", b"; total layer number: 3\n")
        with archive.open("Metadata/slice_info.config", "w") as member:
            for _ in range(64):  # 64 MB of zeros: a few kB on disk
                member.write(bytes(1024 * 1024))
    with pytest.raises(PrintFileError, match=r"slice_info\.config"):
        read_sliced_file(path)


def test_a_damaged_member_is_a_clear_error(tmp_path: Path) -> None:
    path = make_3mf(tmp_path / "cube.gcode.3mf")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("Metadata/slice_info.config")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start : start + 8] = b"\xff" * 8  # corrupt the compressed bytes
    path.write_bytes(bytes(data))
    with pytest.raises(PrintFileError, match="damaged"):
        read_sliced_file(path)
