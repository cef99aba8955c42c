"""Topics, serial checks and the model table (protocol.md §3.2, §11)."""

from __future__ import annotations

import pytest

from bambu_lan.protocol.models import (
    MODELS,
    identify_model,
    model_from_code,
    model_from_serial,
)
from bambu_lan.protocol.topics import report_topic, request_topic, serial_problem


def test_topics() -> None:
    assert report_topic("03919A3B1200123") == "device/03919A3B1200123/report"
    assert request_topic("03919A3B1200123") == "device/03919A3B1200123/request"


def test_a_good_serial_has_no_problem() -> None:
    assert serial_problem("03919A3B1200123") is None


@pytest.mark.parametrize(
    ("serial", "words"),
    [
        ("", "empty"),
        (" 03919A3B1200123", "spaces"),
        ("03919a3b1200123", "upper case"),
        ("03919A3B120012", "15 characters"),
        ("03919A3B1200123-", "15 characters"),
        ("03919A3B12001_3", "digits and capital letters"),
    ],
)
def test_serial_problems(serial: str, words: str) -> None:
    problem = serial_problem(serial)
    assert problem is not None
    assert words in problem


def test_lower_case_serial_message_shows_the_upper_case_form() -> None:
    problem = serial_problem("03919a3b1200123")
    assert problem is not None
    assert "03919A3B1200123" in problem
    assert "case-sensitive" in problem


@pytest.mark.parametrize(
    ("code", "name", "prefix"),
    [
        ("N2S", "A1", "039"),
        ("N1", "A1 mini", "030"),
        ("C11", "P1P", "01S"),
        ("C12", "P1S", "01P"),
        ("BL-P001", "X1 Carbon", "00M"),
        ("C13", "X1E", "03W"),
        ("O1D", "H2D", "094"),
        ("O1C2", "H2C", "31B"),
        ("O2D", "H2D Pro", "239"),
    ],
)
def test_model_codes(code: str, name: str, prefix: str) -> None:
    model = model_from_code(code)
    assert model is not None
    assert model.name == name
    assert model.serial_prefix == prefix


def test_bl_a001_is_the_ams_not_the_a1() -> None:
    assert model_from_code("BL-A001") is None


def test_model_from_serial() -> None:
    a1 = model_from_serial("03919A3B1200123")
    assert a1 is not None
    assert (a1.name, a1.has_chamber_sensor, a1.delta_reports, a1.wiki_series) == (
        "A1",
        False,
        True,
        "a1",
    )
    mini = model_from_serial("0309DA3B1200123")
    assert mini is not None
    assert mini.name == "A1 mini"
    x1 = model_from_serial("00M09A350100123")
    assert x1 is not None
    assert x1.has_chamber_sensor
    assert not x1.delta_reports
    assert model_from_serial("ZZZ") is None


def test_identify_model_prefers_product_then_project_then_serial() -> None:
    p1s = identify_model(product_name="Bambu Lab P1S", project_name="N2S", serial="03919A3B1200123")
    assert p1s is not None
    assert p1s.name == "P1S"
    a1 = identify_model(product_name="", project_name="N2S", serial="01P00A000000001")
    assert a1 is not None
    assert a1.name == "A1"
    by_serial = identify_model(serial="01P00A000000001")
    assert by_serial is not None
    assert by_serial.name == "P1S"
    assert identify_model() is None


def test_model_table_has_unique_codes() -> None:
    codes = [m.code for m in MODELS]
    assert len(codes) == len(set(codes))
