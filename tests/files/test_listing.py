"""Listings and paths, without a network: both NLST styles, LIST lines as printers write them."""

from __future__ import annotations

from datetime import datetime

import pytest

from bambu_lan.errors import FileTransferError
from bambu_lan.protocol.ftp_listing import name_list_paths, parse_list_line, remote_path

NOW = datetime(2026, 3, 10, 12, 0)


def test_list_line_of_a_file_keeps_the_printer_date_as_given() -> None:
    entry = parse_list_line(
        "-rw-r--r--    1 1000     1000      5000000 Mar  9 08:05 benchy.gcode.3mf", "/", NOW
    )
    assert entry is not None
    assert (entry.path, entry.size, entry.is_dir) == ("/benchy.gcode.3mf", 5000000, False)
    assert entry.modified == "Mar 9 08:05"
    assert entry.modified_at == datetime(2026, 3, 9, 8, 5)


def test_list_line_with_a_year_and_spaces_in_the_name() -> None:
    entry = parse_list_line("-rw-r--r-- 1 0 0 12 Dec 31  2023 my part v2.gcode.3mf", "/cache", NOW)
    assert entry is not None
    assert entry.path == "/cache/my part v2.gcode.3mf"
    assert entry.modified_at == datetime(2023, 12, 31)


def test_a_time_only_date_in_the_future_is_last_year() -> None:
    entry = parse_list_line("-rw-r--r-- 1 0 0 1 Dec 30 23:59 late.avi", "/timelapse", NOW)
    assert entry is not None and entry.modified_at == datetime(2025, 12, 30, 23, 59)


def test_folders_links_and_noise() -> None:
    folder = parse_list_line("drwxr-xr-x    2 0 0 4096 Jan  1  1970 timelapse", "/", NOW)
    assert folder is not None and folder.is_dir and folder.path == "/timelapse"
    link = parse_list_line("lrwxrwxrwx 1 0 0 7 Jan 1 2020 sd -> /sdcard", "/", NOW)
    assert link is not None and link.path == "/sd"
    assert parse_list_line("total 24", "/", NOW) is None
    assert parse_list_line("drwxr-xr-x 2 0 0 4096 Jan 1 2020 ..", "/", NOW) is None
    assert parse_list_line("garbage", "/", NOW) is None


def test_x1_list_names_with_the_folder_are_reduced_to_the_name() -> None:
    entry = parse_list_line("-rw-r--r-- 1 0 0 3 Mar 1 10:00 cache/a.3mf", "/cache", NOW)
    assert entry is not None and entry.path == "/cache/a.3mf"


@pytest.mark.parametrize(
    ("names", "folder", "expected"),
    [
        (["a.3mf", "b.avi"], "/cache", ["/cache/a.3mf", "/cache/b.avi"]),  # A1/P1: bare
        (["cache/a.3mf", "cache/b.avi"], "/cache", ["/cache/a.3mf", "/cache/b.avi"]),  # X1
        (["/cache/a.3mf"], "/cache", ["/cache/a.3mf"]),
        (["timelapse", "x.gcode.3mf", ".", ".."], "/", ["/timelapse", "/x.gcode.3mf"]),
    ],
)
def test_name_lists_of_both_styles(names: list[str], folder: str, expected: list[str]) -> None:
    assert name_list_paths(names, folder) == expected


def test_remote_paths_are_absolute_and_normalised() -> None:
    assert remote_path("x.3mf") == "/x.3mf"
    assert remote_path("/cache/../x.3mf") == "/x.3mf"
    assert remote_path("../../etc") == "/etc"
    assert remote_path("") == "/"
    assert remote_path("a", "/cache") == "/cache/a"


@pytest.mark.parametrize("bad", ["a\r\nDELE /b", "x\n", "nul\0"])
def test_remote_paths_that_would_inject_commands_are_refused(bad: str) -> None:
    with pytest.raises(FileTransferError, match="line breaks"):
        remote_path(bad)
