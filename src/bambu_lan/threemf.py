"""What a sliced ``.gcode.3mf`` holds, read locally before anything goes to the printer.

A file sliced by Bambu Studio or OrcaSlicer is a zip with one G-code file per sliced plate
(``Metadata/plate_N.gcode``) and ``Metadata/slice_info.config``, an XML file naming, per plate,
the printer model it was sliced for (``printer_model_id``: ``N2S`` is an A1) and the filaments
it uses (type, colour, grams). Nothing here does I/O beyond reading the file.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from bambu_lan.errors import PrintFileError

_PLATE_RE = re.compile(r"^Metadata/plate_(\d+)\.gcode$")
_LAYERS_RE = re.compile(rb";\s*total layer number:\s*(\d+)", re.IGNORECASE)
_HEADER_BYTES = 64 * 1024  # the slicer's header block sits at the top of the G-code
# A slicer writes a few kB of slice_info; a larger one is a zip bomb, never read into memory.
_MAX_SLICE_INFO = 4 * 1024 * 1024

# printer_model_id (slice_info.config, get_version's project name) -> product name.
MODEL_NAMES = {
    "N2S": "A1",
    "N1": "A1 mini",
    "C11": "P1P",
    "C12": "P1S",
    "BL-P001": "X1 Carbon",
    "BL-P002": "X1",
    "C13": "X1E",
    "N7": "P2S",
    "O1D": "H2D",
    "O1S": "H2S",
}


@dataclass(frozen=True, slots=True)
class Filament:
    """One filament a plate uses (``id`` is 1-based, the slicer's filament number)."""

    id: int
    type: str  # PLA, PETG, ...
    color: str  # "#RRGGBB" as the slicer wrote it
    used_g: float | None
    preset: str  # tray_info_idx, e.g. GFA00

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "color": self.color,
            "used_g": self.used_g,
            "preset": self.preset,
        }


@dataclass(frozen=True, slots=True)
class Plate:
    index: int  # 1-based, as in Metadata/plate_<index>.gcode
    model_id: str  # printer_model_id: what it was sliced for ("" when the file does not say)
    filaments: tuple[Filament, ...] = ()
    layers: int | None = None
    prediction_s: int | None = None  # the slicer's time estimate
    weight_g: float | None = None

    @property
    def gcode_path(self) -> str:
        return f"Metadata/plate_{self.index}.gcode"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "model_id": self.model_id,
            "model": MODEL_NAMES.get(self.model_id, self.model_id),
            "layers": self.layers,
            "prediction_s": self.prediction_s,
            "weight_g": self.weight_g,
            "filaments": [f.to_dict() for f in self.filaments],
        }


@dataclass(frozen=True, slots=True)
class SlicedFile:
    """A ``.gcode.3mf`` file's plates, read from its own metadata."""

    path: Path
    size: int
    plates: tuple[Plate, ...] = field(default_factory=tuple)

    def plate(self, index: int) -> Plate:
        for plate in self.plates:
            if plate.index == index:
                return plate
        have = ", ".join(str(p.index) for p in self.plates) or "none"
        raise PrintFileError(
            f"{self.path.name} has no sliced plate {index} (sliced plates: {have})",
            hint=f"pick one with --plate N (N in {have}), or slice plate {index} and export again",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size": self.size,
            "plates": [p.to_dict() for p in self.plates],
        }


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


def _slice_info(archive: zipfile.ZipFile, file_name: str) -> dict[int, dict[str, Any]]:
    """Per plate index: metadata and filaments from Metadata/slice_info.config."""
    try:
        info = archive.getinfo("Metadata/slice_info.config")
    except KeyError:
        return {}
    if info.file_size > _MAX_SLICE_INFO:
        raise PrintFileError(
            f"{file_name}: its Metadata/slice_info.config unpacks to {info.file_size:,} bytes; "
            "no slicer writes that",
            hint="export the sliced file from the slicer again",
        )
    raw = archive.read(info)
    try:
        root = ET.fromstring(raw)  # noqa: S314 (a local file the user chose to print)
    except ET.ParseError:
        return {}
    plates: dict[int, dict[str, Any]] = {}
    for plate in root.iter("plate"):
        meta = {item.get("key", ""): item.get("value", "") for item in plate.findall("metadata")}
        index = _int(meta.get("index"))
        if index is None:
            continue
        filaments = tuple(
            Filament(
                id=_int(f.get("id")) or 0,
                type=f.get("type", ""),
                color=f.get("color", ""),
                used_g=_float(f.get("used_g")),
                preset=f.get("tray_info_idx", ""),
            )
            for f in plate.findall("filament")
        )
        plates[index] = {"meta": meta, "filaments": filaments}
    return plates


def _layers(archive: zipfile.ZipFile, name: str) -> int | None:
    with archive.open(name) as handle:
        head = handle.read(_HEADER_BYTES)
    match = _LAYERS_RE.search(head)
    return int(match.group(1)) if match else None


def read_sliced_file(path: str | Path) -> SlicedFile:
    """Read a ``.gcode.3mf``; ``PrintFileError`` when it is missing or not a sliced 3MF."""
    path = Path(path)
    if not path.is_file():
        raise PrintFileError(
            f"no such file: {path}", hint="give the path of a .gcode.3mf exported by the slicer"
        )
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PrintFileError(
            f"{path.name} is not a 3MF file ({exc})",
            hint="in Bambu Studio or OrcaSlicer: slice, then File > Export > Export plate "
            "sliced file (.gcode.3mf)",
        ) from None
    try:
        with archive:
            return _read_archive(archive, path)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise PrintFileError(
            f"{path.name} is damaged ({exc})",
            hint="export the sliced file from the slicer again (or copy it again)",
        ) from None


def _read_archive(archive: zipfile.ZipFile, path: Path) -> SlicedFile:
    names = archive.namelist()
    indexes = sorted(int(m.group(1)) for n in names if (m := _PLATE_RE.match(n)))
    if not indexes:
        raise PrintFileError(
            f"{path.name} holds no sliced plate (no Metadata/plate_N.gcode): it is a project "
            "file, not a sliced one",
            hint="slice it first, then export with File > Export > Export plate sliced file",
        )
    info = _slice_info(archive, path.name)
    plates = []
    for index in indexes:
        meta = info.get(index, {}).get("meta", {})
        plates.append(
            Plate(
                index=index,
                model_id=meta.get("printer_model_id", ""),
                filaments=info.get(index, {}).get("filaments", ()),
                layers=_layers(archive, f"Metadata/plate_{index}.gcode"),
                prediction_s=_int(meta.get("prediction")),
                weight_g=_float(meta.get("weight")),
            )
        )
    return SlicedFile(path=path, size=path.stat().st_size, plates=tuple(plates))


# The printer refuses names outside this set with 0x0500400A ("file name is not supported").
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._() +\-]+$")


def name_problem(name: str) -> str | None:
    """Why the printer would refuse ``name`` as a print file name, or None."""
    if not name.isascii():
        return "it has non-ASCII characters"
    if not _SAFE_NAME.match(name):
        return "it has characters other than letters, digits, spaces and . _ - + ( )"
    if len(name) > 128:
        return "it is longer than 128 characters"
    return None


def safe_name_suggestion(name: str) -> str:
    """``name`` with what the printer refuses replaced by ``_``."""
    import unicodedata

    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._() +\-]", "_", plain).strip() or "print.gcode.3mf"
    return cleaned[-128:]
