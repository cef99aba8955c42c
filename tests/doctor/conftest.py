"""Fixtures of the doctor's tests (the simulators come from tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bambu_lan.sim.certs import CertAuthority


@pytest.fixture
def known_printers(tmp_path: Path) -> Path:
    """A pin file of this test only (it does not exist until something pins)."""
    return tmp_path / "known_printers"


@pytest.fixture(scope="session")
def other_cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second simulator identity: another CA, so other certificates for the same serials."""
    cert_dir = tmp_path_factory.mktemp("other-certs")
    CertAuthority.load_or_create(cert_dir)
    return cert_dir
