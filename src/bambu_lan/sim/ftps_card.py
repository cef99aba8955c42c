"""The simulated printer's storage card: a folder of its own with the A1's layout.

``/`` holds the user's files (LAN prints land there), ``/cache`` cloud jobs, ``/timelapse``
the videos (``/timelapse/thumbnail`` their previews), ``/image`` job previews, ``/logger``
logs (protocol.md §8). A size limit makes "card full" testable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

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
