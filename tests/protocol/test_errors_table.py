"""HMS and print_error decoding (protocol.md §6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bambu_lan.protocol.errors_table import (
    ERR_VERIFY_FAILED,
    ERR_VERIFY_MALFORMED,
    TASK_CANCELED,
    decode_hms,
    decode_print_error,
    hms_code,
    parse_hms_code,
)


def test_developer_mode_hms_code() -> None:
    alert = decode_hms(83887360, 65543, "a1")
    assert alert.code == "HMS_0500_0500_0001_0007"
    assert alert.short == "0500_0500_0001_0007"
    assert (alert.attr, alert.code_int) == (0x05000500, 0x00010007)
    assert alert.severity == "fatal"  # level 1
    assert alert.module == "mainboard"
    assert "Developer Mode" in alert.text
    assert alert.wiki_url == (
        "https://wiki.bambulab.com/en/a1/troubleshooting/hmscode/0500_0500_0001_0007"
    )


def test_protocol_example_heatbed() -> None:
    alert = decode_hms(50331904, 65543)
    assert alert.code == "HMS_0300_0100_0001_0007"
    assert alert.module == "motion controller"
    assert "heatbed" in alert.text
    assert "/en/x1/" in alert.wiki_url  # default series


@pytest.mark.parametrize(
    ("level", "severity"),
    [(1, "fatal"), (2, "serious"), (3, "common"), (4, "info"), (0, "unknown"), (9, "unknown")],
)
def test_severity_is_the_high_half_of_code(level: int, severity: str) -> None:
    assert decode_hms(0x07002000, (level << 16) | 1).severity == severity


def test_unknown_module_and_code_still_get_a_code_and_a_link() -> None:
    alert = decode_hms(0x34120000, 0x00030001, "h2d")
    assert alert.code == "HMS_3412_0000_0003_0001"
    assert alert.module == "module 0x34"
    assert alert.text == ""
    assert alert.wiki_url.endswith("/h2d/troubleshooting/hmscode/3412_0000_0003_0001")


def test_codes_are_upper_case_and_zero_padded() -> None:
    assert hms_code(0x0C000300, 0x0003000B) == "HMS_0C00_0300_0003_000B"
    assert hms_code(1, 2) == "HMS_0000_0001_0000_0002"


@pytest.mark.parametrize(
    "text",
    [
        "HMS_0500_0500_0001_0007",
        "0500_0500_0001_0007",
        "hms_0500_0500_0001_0007",
        "0500-0500-0001-0007",
    ],
)
def test_parse_hms_code(text: str) -> None:
    assert parse_hms_code(text) == (83887360, 65543)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_parse_hms_code_round_trips(attr: int, code: int) -> None:
    canonical = hms_code(attr, code)
    assert parse_hms_code(canonical) == (attr, code)
    assert parse_hms_code(canonical[4:]) == (attr, code)
    assert decode_hms(attr, code).code == canonical


@pytest.mark.parametrize(
    "text",
    [
        "",
        "HMS_0500_0500_0001",
        "0500_0500_0001_007",
        "0500_0500_0001_00070",
        "0500_0500_0001_XYZW",
        "0500_0500_0001_0x07",
        "0500_0500_0001_+007",
        "0500_0500_0001_ 007",
        "0500050000010007",
    ],
)
def test_parse_hms_code_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="HMS code"):
        parse_hms_code(text)


@pytest.mark.parametrize(
    ("value", "hex_", "words"),
    [
        (50348044, "0300_400C", "canceled"),
        (50364417, "0300_8001", "paused by the user"),
        (50364437, "0300_8015", "external spool"),
        (117473286, "0700_8006", "feed filament"),
        (83935249, "0500_C011", "SD card"),
        (ERR_VERIFY_FAILED, "0502_4007", "Developer Mode"),
    ],
)
def test_print_errors(value: int, hex_: str, words: str) -> None:
    error = decode_print_error(value)
    assert error is not None
    assert error.value == value
    assert error.hex == hex_
    assert words in error.text


def test_print_error_zero_is_none_and_unknown_codes_keep_their_hex() -> None:
    assert decode_print_error(0) is None
    error = decode_print_error(0x0C00ABCD)
    assert error is not None
    assert (error.hex, error.text) == ("0C00_ABCD", "")


def test_constants_match_the_protocol_notes() -> None:
    assert TASK_CANCELED == 50348044
    assert hex(TASK_CANCELED) == "0x300400c"
    assert ERR_VERIFY_FAILED == 0x05024007
    assert ERR_VERIFY_MALFORMED == 0x05024009
