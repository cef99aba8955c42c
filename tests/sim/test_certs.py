"""The simulator's identity: shaped like Bambu's chain, reused across restarts, kept private."""

from __future__ import annotations

import asyncio
import socket
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtensionOID, NameOID
from tests.conftest import SimFactory
from tests.sim.support import client_context

from bambu_lan.sim.certs import CertAuthority, der_fingerprint

SERIAL = "039SIM000000000"


def test_ca_looks_like_bbl_ca_without_key_usage(sim_cert_dir: Path) -> None:
    ca = x509.load_pem_x509_certificate((sim_cert_dir / "ca.pem").read_bytes())
    names = {attr.oid: str(attr.value) for attr in ca.subject}
    assert names[NameOID.COUNTRY_NAME] == "CN"
    assert names[NameOID.ORGANIZATION_NAME] == "BBL Technologies Co., Ltd"
    assert names[NameOID.COMMON_NAME].startswith("BBL CA")
    assert "simulator" in names[NameOID.COMMON_NAME]  # never mistaken for the real one
    assert ca.issuer == ca.subject
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    with pytest.raises(x509.ExtensionNotFound):
        ca.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)


def test_leaf_is_cn_serial_rsa2048_sha256_without_extensions(sim_cert_dir: Path) -> None:
    authority = CertAuthority.load_or_create(sim_cert_dir)
    leaf = authority.leaf(SERIAL)
    assert leaf.subject.rfc4514_string() == f"CN={SERIAL}"
    assert leaf.issuer == authority.ca_cert.subject
    assert len(leaf.extensions) == 0  # no SAN, no keyUsage, nothing
    key = leaf.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
    leaf.verify_directly_issued_by(authority.ca_cert)
    assert (sim_cert_dir / "leaves" / f"{SERIAL}.pem").exists()


def test_files_are_reused_and_keys_private(tmp_path: Path) -> None:
    first = CertAuthority.load_or_create(tmp_path / "certs")
    fingerprint = first.fingerprint(SERIAL)
    for name in ("ca.key", "leaf.key"):
        mode = stat.S_IMODE((tmp_path / "certs" / name).stat().st_mode)
        assert mode == 0o600, name
    assert not list((tmp_path / "certs").glob(".*.tmp"))  # atomic writes leave nothing behind

    again = CertAuthority.load_or_create(tmp_path / "certs")
    assert again.fingerprint(SERIAL) == fingerprint
    assert again.ca_fingerprint == first.ca_fingerprint

    renewed = CertAuthority.load_or_create(tmp_path / "certs", new_identity=True)
    assert renewed.ca_fingerprint != first.ca_fingerprint
    assert renewed.fingerprint(SERIAL) != fingerprint


def test_unusable_files_are_replaced(tmp_path: Path) -> None:
    authority = CertAuthority.load_or_create(tmp_path)
    authority.leaf(SERIAL)
    # A leaf from another CA (say, a copied directory) is re-issued, not served.
    (tmp_path / "leaves" / f"{SERIAL}.pem").write_text("garbage")
    fresh = CertAuthority.load_or_create(tmp_path)
    fresh.leaf(SERIAL).verify_directly_issued_by(fresh.ca_cert)
    # A CA key that does not match the CA makes a new identity.
    (tmp_path / "ca.key").write_bytes((tmp_path / "leaf.key").read_bytes())
    replaced = CertAuthority.load_or_create(tmp_path)
    assert replaced.ca_fingerprint != fresh.ca_fingerprint
    replaced.leaf(SERIAL).verify_directly_issued_by(replaced.ca_cert)


def test_bad_serial_is_refused(sim_cert_dir: Path) -> None:
    authority = CertAuthority.load_or_create(sim_cert_dir)
    for bad in ("../evil", "a/b", "", "x" * 65, "has space"):
        with pytest.raises(ValueError, match="serial"):
            authority.leaf(bad)


def test_server_context_is_tls12_only(sim_cert_dir: Path) -> None:
    context = CertAuthority.load_or_create(sim_cert_dir).server_context(SERIAL)
    assert context.minimum_version == context.maximum_version == ssl.TLSVersion.TLSv1_2
    names = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert names == {
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
    }


async def test_handshake_identity_and_strict_verification(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    # The name check against the serial works (OpenSSL falls back to the CN) ...
    _reader, writer = await asyncio.open_connection(
        sim.host, sim.port, ssl=client_context(sim.ca_path), server_hostname=sim.serial
    )
    tls = writer.get_extra_info("ssl_object")
    assert tls.version() == "TLSv1.2"
    assert "GCM" in tls.cipher()[0]
    # ... the fingerprint clients pin is the SHA-256 of the DER they receive ...
    assert der_fingerprint(tls.getpeercert(binary_form=True)) == sim.fingerprint
    writer.close()
    await writer.wait_closed()
    # ... while the address, and X509_STRICT (Python 3.13's default), fail — as on a printer.
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        await asyncio.open_connection(
            sim.host, sim.port, ssl=client_context(sim.ca_path), server_hostname=sim.host
        )
    strict = client_context(sim.ca_path)
    strict.verify_flags |= ssl.VERIFY_X509_STRICT
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(sim.host, sim.port, ssl=strict, server_hostname=sim.serial)


def test_serial_is_readable_from_the_handshake_without_credentials(sim_thread: object) -> None:
    # The discovery fallback of protocol.md §2.2: the leaf CN names the printer.
    sim = sim_thread.target  # type: ignore[attr-defined]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((sim.host, sim.port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == sim.serial
