"""The library takes connection input through the same checks as the CLI (Printer, the pin
file, CA folders)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from bambu_lan.errors import ConfigError
from bambu_lan.printer import Printer
from bambu_lan.trust import KnownPrinters, TrustConfig

SERIAL = "03919A3B1200123"
CODE = "Zq7Kx9Wm"


def test_printer_normalises_the_host(tmp_path: Path) -> None:
    pins = tmp_path / "pins"
    assert Printer(" [::1] ", SERIAL, CODE, known_printers=pins).config.host == "::1"
    assert Printer("\t10.0.0.5 ", SERIAL, CODE, known_printers=pins).config.host == "10.0.0.5"


@pytest.mark.parametrize(
    ("host", "words"),
    [("10.0.0.5:8883", "includes a port"), ("mqtts://10.0.0.5", "is a URL"), ("a..b", "host")],
)
def test_printer_refuses_what_the_cli_refuses(host: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        Printer(host, SERIAL, CODE)
    assert info.value.hint
    assert CODE not in str(info.value) + info.value.hint


def test_printer_refuses_insecure_with_a_ca(sim_cert_dir: Path) -> None:
    with pytest.raises(ConfigError, match="contradict"):
        Printer("10.0.0.5", SERIAL, CODE, insecure=True, ca_file=sim_cert_dir / "ca.pem")


def test_printer_refuses_a_damaged_pin_file_before_connecting(tmp_path: Path) -> None:
    pins = tmp_path / "pins"
    pins.write_bytes(b"03919A3B1200123 \xff\n")
    pins.chmod(0o600)
    with pytest.raises(ConfigError, match="not UTF-8"):
        Printer("10.0.0.5", SERIAL, CODE, known_printers=pins)


def test_a_ca_folder_loads_what_parses_and_names_the_rest(
    tmp_path: Path, sim_cert_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "bambu_certs"
    folder.mkdir()
    shutil.copy(sim_cert_dir / "ca.pem", folder / "bambu.cert")
    (folder / "bambu_p2s_250626.cert").write_text("<html>saved page</html>", encoding="utf-8")
    (folder / "notes.txt").write_text("ignored: not a certificate suffix", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bambu_lan.trust"):
        files = TrustConfig(ca_dir=folder).ca_files()
        TrustConfig(ca_dir=folder).ca_files()  # named once, not on every reconnect
    assert files == [folder / "bambu.cert"]
    assert caplog.text.count("bambu_p2s_250626.cert (no PEM certificate in it)") == 1


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_a_pin_file_others_can_read_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pins = tmp_path / "known_printers"
    known = KnownPrinters(pins)
    known.pin(SERIAL, "ab" * 32)
    assert pins.stat().st_mode & 0o077 == 0  # written private
    with caplog.at_level(logging.WARNING, logger="bambu_lan.trust"):
        known.all()
    assert "other users" not in caplog.text
    pins.chmod(0o664)
    with caplog.at_level(logging.WARNING, logger="bambu_lan.trust"):
        known.all()
    assert "known-printers file" in caplog.text
    assert f"chmod 600 {pins}" in caplog.text
