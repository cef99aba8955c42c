"""The simulated printer's storage card: a folder of its own with the A1's layout.

``/`` holds the user's files (LAN prints land there), ``/cache`` cloud jobs, ``/timelapse``
the videos (``/timelapse/thumbnail`` their previews), ``/image`` job previews, ``/logger``
logs (protocol.md §8). A size limit makes "card full" testable.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

CARD_FOLDERS = ("cache", "timelapse", "timelapse/thumbnail", "image", "logger")


class CardFull(Exception):
    """A write would pass the card's size limit."""


class SimCard:
    """A card in ``folder`` (a fresh temporary folder, removed by ``close``, when None)."""

    def __init__(self, folder: Path | str | None = None, *, size_limit: int | None = None) -> None:
        self._owned = folder is None
        self.root = (
            Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="bambu-card-"))
        )
        self.root.mkdir(parents=True, exist_ok=True)
        for name in CARD_FOLDERS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self.size_limit = size_limit  # bytes of files on the card; None: unlimited

    def __repr__(self) -> str:
        return f"<SimCard {str(self.root)!r} limit={self.size_limit}>"

    def close(self) -> None:
        """Remove the card's folder if it was made for it."""
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)

    def local(self, path: str | PurePosixPath) -> Path:
        """The file behind an absolute card path (``..`` cannot leave the card)."""
        parts = [p for p in PurePosixPath("/", path).parts[1:] if p not in ("", ".")]
        kept: list[str] = []
        for part in parts:
            if part == "..":
                if kept:
                    kept.pop()
            else:
                kept.append(part)
        return self.root.joinpath(*kept) if kept else self.root

    def used(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                with contextlib.suppress(OSError):
                    total += (Path(dirpath) / name).stat().st_size
        return total

    def free(self) -> int | None:
        """Free bytes under the limit (None: unlimited)."""
        if self.size_limit is None:
            return None
        return max(0, self.size_limit - self.used())

    # -- what the printer itself reads and writes --

    def exists(self, path: str) -> bool:
        return self.local(path).is_file()

    def read(self, path: str) -> bytes:
        return self.local(path).read_bytes()

    def write(self, path: str, data: bytes) -> None:
        """Write a whole file as the printer would (timelapses, previews); may raise CardFull."""
        free = self.free()
        if free is not None and len(data) > free:
            raise CardFull(path)
        target = self.local(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def names(self) -> list[str]:
        """Every file on the card as an absolute card path."""
        out: list[str] = []
        for dirpath, _dirs, files in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root)
            out.extend(str(PurePosixPath("/", rel.as_posix(), name)) for name in files)
        return sorted(p.replace("/./", "/") for p in out)


# --- what the printer reads from the card when asked to print --------------------------------

# print_error codes a printer sets when it cannot start a file (protocol.md §5.3, §6.2).
ERROR_FILE_NOT_FOUND = 0x05004002  # "Unsupported print file path or name"
ERROR_NAME_UNSUPPORTED = 0x0500400A  # "The file name is not supported"

_LAYERS_RE = re.compile(rb";\s*total layer number:\s*(\d+)", re.IGNORECASE)
_TITLE_RE = re.compile(rb'<metadata name="Title">([^<]*)</metadata>')
_URL_PREFIXES = (
    "file:///mnt/sdcard/",
    "file:///sdcard/",
    "file://",
    "ftp://",
    "/mnt/sdcard/",
    "/sdcard/",
)


@dataclass(frozen=True, slots=True)
class CardPrintFile:
    """A print file found on the card: what the printer learns from it."""

    path: str  # card path, "/x.gcode.3mf"
    name: str  # the job name the file itself gives ("" when it gives none)
    plate: int | None
    layers: int | None


class PrintFileRefused(Exception):
    """The printer cannot start this file; ``code`` is the print_error it shows."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def card_path_of(location: str) -> str:
    """``file:///sdcard/a/x.3mf``, ``ftp:///x.3mf``, ``/sdcard/x.gcode`` -> a card path."""
    text = unquote(location.strip())
    for prefix in _URL_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return "/" + text.lstrip("/")


class PrintFileReader:
    """Opens print files on a card the way the printer's firmware would, by itself (no code
    shared with the client: a bug in one must not hide in the other)."""

    def __init__(self, card: SimCard) -> None:
        self.card = card

    def open(self, location: str, plate_param: str | None) -> CardPrintFile | None:
        """The file ``location`` names; None when it is not on the card. Raises
        ``PrintFileRefused`` for a name the printer refuses or a plate the file lacks."""
        path = card_path_of(location)
        if not PurePosixPath(path).name.isascii():
            raise PrintFileRefused(ERROR_NAME_UNSUPPORTED, "the file name is not supported")
        local = self.card.local(path)
        if not local.is_file():
            return None
        if path.lower().endswith(".gcode"):
            with local.open("rb") as handle:
                head = handle.read(64 * 1024)
            return CardPrintFile(path, "", None, _layers(head))
        plate = _plate_number(plate_param)
        try:
            with zipfile.ZipFile(local) as archive:
                gcode = f"Metadata/plate_{plate}.gcode"
                if gcode not in archive.namelist():
                    raise PrintFileRefused(ERROR_FILE_NOT_FOUND, f"no {gcode} in the file")
                with archive.open(gcode) as handle:
                    layers = _layers(handle.read(64 * 1024))
                title = b""
                if "3D/3dmodel.model" in archive.namelist():
                    with archive.open("3D/3dmodel.model") as model:  # a mesh: maybe 100s of MB
                        match = _TITLE_RE.search(model.read(64 * 1024))
                    title = match.group(1) if match else b""
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
            raise PrintFileRefused(ERROR_FILE_NOT_FOUND, "not a 3MF file") from None
        return CardPrintFile(path, title.decode("utf-8", "replace").strip(), plate, layers)

    def record_finished(
        self, job_name: str, *, timelapse: bool, when: float | None = None
    ) -> list[str]:
        """What a finished print leaves on the card: with timelapse on, the video and its
        thumbnail (A1/P1: .avi + /timelapse/thumbnail/*.jpg). Returns the paths written."""
        if not timelapse:
            return []
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(when))
        video = f"/timelapse/video_{stamp}.avi"
        thumb = f"/timelapse/thumbnail/video_{stamp}.jpg"
        try:
            self.card.write(video, _FAKE_AVI + job_name.encode("ascii", "replace")[:64])
            self.card.write(thumb, _FAKE_JPEG)
        except CardFull:
            return []
        return [video, thumb]


def _plate_number(param: str | None) -> int:
    match = re.search(r"plate_(\d+)\.gcode", param or "")
    return int(match.group(1)) if match else 1


def _layers(head: bytes) -> int | None:
    match = _LAYERS_RE.search(head)
    return int(match.group(1)) if match else None


# Tiny but well-formed enough to be recognised by `file`: a RIFF/AVI header, a JPEG.
_FAKE_AVI = b"RIFF\x24\x00\x00\x00AVI LIST\x04\x00\x00\x00hdrl"
_FAKE_JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
