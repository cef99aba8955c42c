"""Insecure mode (no identity check) is said once, whichever way a Printer is made."""

from __future__ import annotations

import itertools
import logging

import pytest

from bambu_lan import Printer, PrinterConfig, Secret
from bambu_lan.trust import TrustConfig

# Each test names its own printer: the warning is said once per process per printer.
_hosts = (f"printer-{n}.invalid" for n in itertools.count())


def insecure_config(host: str, *, insecure: bool = True) -> PrinterConfig:
    return PrinterConfig(
        host=host,
        serial="03919A3B1200123",
        access_code=Secret("12345678"),
        trust=TrustConfig(insecure=insecure),
        name="shop",
    )


def insecure_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and "identity is NOT checked" in r.getMessage()
    ]


def test_from_config_warns_once_per_printer(caplog: pytest.LogCaptureFixture) -> None:
    host = next(_hosts)
    caplog.set_level(logging.WARNING, logger="bambu_lan")
    Printer.from_config(insecure_config(host))
    Printer.from_config(insecure_config(host))  # the same printer again: said already
    (record,) = insecure_records(caplog)
    assert "shop" in record.getMessage() and host in record.getMessage()
    assert "12345678" not in record.getMessage()


def test_the_constructor_warns_once_too(caplog: pytest.LogCaptureFixture) -> None:
    host = next(_hosts)
    caplog.set_level(logging.WARNING, logger="bambu_lan")
    Printer(host, "03919A3B1200123", "12345678", insecure=True)
    Printer.from_config(insecure_config(host, insecure=True))
    assert len(insecure_records(caplog)) == 1


def test_a_checked_identity_is_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bambu_lan")
    Printer.from_config(insecure_config(next(_hosts), insecure=False))
    assert insecure_records(caplog) == []
