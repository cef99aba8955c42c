"""FTP listings and paths, as the printers write them (protocol.md §8). Pure: no I/O.

``LIST`` lines are Unix ``ls -l`` style with "Mon DD HH:MM" or "Mon DD YYYY" dates (printer
clocks are unreliable: the date is kept as written, and read as local time); ``NLST`` names are
bare on A1/P1 printers and carry the folder on X1 ones.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bambu_lan.errors import FileTransferError
from bambu_lan.text import terminal_safe


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """One file or folder on the printer's storage."""

    path: str  # absolute, e.g. "/timelapse/video_2024-01-01.avi"
    size: int | None  # bytes; None when the listing did not say
    is_dir: bool
    modified: str = ""  # the date exactly as the printer wrote it ("Nov 29 12:00")
    modified_at: datetime | None = None  # that date read as local time (printer clocks drift)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "size": self.size,
            "is_dir": self.is_dir,
            "modified": self.modified,
            "modified_at": self.modified_at.isoformat() if self.modified_at else None,
        }


def remote_path(path: str, cwd: str = "/") -> str:
    """An absolute, normalised remote path; refuses what an FTP command line cannot carry."""
    if any(c in path for c in "\r\n\0"):
        raise FileTransferError(
            f"invalid remote path {path!r}: line breaks are not allowed",
            hint="use a plain file name such as /part.gcode.3mf",
        )
    joined = posixpath.join(cwd, path) if path else cwd
    normal = posixpath.normpath(joined)
    return "/" + normal.lstrip("/") if normal != "/" else "/"


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_LIST_RE = re.compile(
    r"^(?P<mode>[-dlbcps][-rwxsStT]{9})\S*\s+\d+\s+\S+\s+\S+\s+(?P<size>\d+)\s+"
    r"(?P<date>(?P<mon>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+(?P<when>\d{1,2}:\d{2}|\d{4}))\s"
    r"(?P<name>.+)$"
)


def _list_date(mon: str, day: str, when: str, now: datetime) -> datetime | None:
    """``ls -l`` dates: "HH:MM" means within the last ~6 months (year implied), else a year."""
    month = _MONTHS.get(mon.lower())
    if month is None:
        return None
    try:
        if ":" in when:
            hour, minute = (int(x) for x in when.split(":"))
            stamp = datetime(now.year, month, int(day), hour, minute)
            if (stamp - now).days > 31:  # "Dec 30" seen in January is last year's
                stamp = stamp.replace(year=now.year - 1)
            return stamp
        return datetime(int(when), month, int(day))
    except ValueError:
        return None


def parse_list_line(line: str, folder: str, now: datetime | None = None) -> RemoteEntry | None:
    """One line of a Unix-style ``LIST`` reply, or None for "total N" and unknown shapes."""
    match = _LIST_RE.match(line.rstrip("\r\n"))
    if match is None:
        return None
    name = match["name"]
    if match["mode"][0] == "l" and " -> " in name:
        name = name.split(" -> ", 1)[0]
    name = posixpath.basename(name.rstrip("/")) or name  # X1 style: "cache/x.3mf"
    if name in (".", ".."):
        return None
    when = _list_date(match["mon"], match["day"], match["when"], now or datetime.now())
    return RemoteEntry(
        path=remote_path(name, folder),
        size=int(match["size"]),
        is_dir=match["mode"][0] == "d",
        modified=" ".join(match["date"].split()),
        modified_at=when,
    )


def name_list_paths(names: list[str], folder: str) -> list[str]:
    """``NLST`` names as absolute paths: X1 printers send "cache/x.3mf", A1/P1 send "x.3mf"."""
    out: list[str] = []
    base = folder.strip("/")
    for raw in names:
        name = raw.strip().rstrip("/")
        if not name or name in (".", ".."):
            continue
        if name.startswith("/"):
            out.append(remote_path(name))
        elif base and (name == base or name.startswith(base + "/")):
            out.append(remote_path(name))  # already carries the folder
        else:
            out.append(remote_path(posixpath.basename(name), folder))
    return out


def printable(text: str, limit: int = 200) -> str:
    """Server text for a message or a terminal: ``terminal_safe``, length capped."""
    clean = terminal_safe(text.strip())
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"
