"""Trust material on disk: CA files into TLS contexts, the known-printers pin file, certificate
details (trust.py); and the identity check those feed, in a real TLS handshake."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bambu_lan.errors import ConfigError, TrustError
from bambu_lan.trust import (
    BAMBU_CERT_FILES,
    HandshakeCheck,
    KnownPrinters,
    PeerCertificate,
    TrustConfig,
    client_context,
    default_known_printers_path,
    describe_context,
    fingerprint,
    pretty_fingerprint,
)

#: Bambu's CA files live next to the repository, never inside it.
BAMBU_CERTS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "bambu_certs"
SERIAL = "03919A3B1200123"


@pytest.fixture(scope="module")
def bambu_certs() -> Path:
    if not all((BAMBU_CERTS / name).is_file() for name in BAMBU_CERT_FILES):
        pytest.skip(
            f"Bambu's CA files ({', '.join(BAMBU_CERT_FILES)}) are not in {BAMBU_CERTS} "
            "(they are kept outside the repository and not copied into it)"
        )
    return BAMBU_CERTS


def pem_count(*paths: Path) -> int:
    return sum(p.read_text(encoding="ascii").count("-----BEGIN CERTIFICATE-----") for p in paths)


# --- generated certificates -----------------------------------------------------------------


class Issued:
    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert = cert
        self.key = key

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
        cert_path.write_bytes(self.pem)
        key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path


def issue(cn: str, issuer: Issued | None = None, *, ca: bool = False, serial: int = 0) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    signer = issuer.key if issuer else key
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@pytest.fixture(scope="module")
def test_ca() -> Issued:
    return issue("bambu-lan test CA", ca=True)


@pytest.fixture(scope="module")
def leaf(test_ca: Issued) -> Issued:
    return issue(SERIAL, test_ca, serial=0x1234ABCD)


# --- CA files into contexts -----------------------------------------------------------------


def test_bambu_ca_dir_loads_into_a_ca_mode_context(bambu_certs: Path) -> None:
    trust = TrustConfig(ca_dir=bambu_certs)
    assert trust.mode == "ca"
    assert [p.name for p in trust.ca_files()] == sorted(BAMBU_CERT_FILES)
    ctx = client_context(HandshakeCheck(SERIAL, trust))
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    loaded: list[Any] = ctx.get_ca_certs()  # subject: ((("commonName", "..."),), ...)
    assert len(loaded) == pem_count(*trust.ca_files())
    names = {value for c in loaded for ((key, value),) in c["subject"] if key == "commonName"}
    assert "BBL CA2 RSA" in names
    assert describe_context(ctx) == {
        "minimum_version": "TLSv1_2",
        "maximum_version": "TLSv1_2",
        "verify_mode": "CERT_REQUIRED",
        "check_hostname": False,
    }
    assert not ctx.verify_flags & ssl.VERIFY_X509_STRICT


@pytest.mark.parametrize("name", BAMBU_CERT_FILES)
def test_each_bambu_ca_file_loads_on_its_own(bambu_certs: Path, name: str) -> None:
    trust = TrustConfig(ca_file=bambu_certs / name)
    assert trust.ca_files() == [bambu_certs / name]
    ctx = client_context(HandshakeCheck(SERIAL, trust))
    assert len(ctx.get_ca_certs()) == pem_count(bambu_certs / name)


def test_ca_file_and_ca_dir_together(bambu_certs: Path, tmp_path: Path, test_ca: Issued) -> None:
    extra, _ = test_ca.write(tmp_path, "sim_ca")
    trust = TrustConfig(ca_file=extra, ca_dir=bambu_certs)
    assert trust.ca_files()[0] == extra
    ctx = client_context(HandshakeCheck(SERIAL, trust))
    assert len(ctx.get_ca_certs()) == pem_count(*trust.ca_files())


def test_pin_and_insecure_modes_load_no_ca() -> None:
    for trust in (TrustConfig(), TrustConfig(insecure=True)):
        ctx = client_context(HandshakeCheck(SERIAL, trust))
        assert ctx.verify_mode is ssl.CERT_NONE
        assert ctx.get_ca_certs() == []
        assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
        assert ctx.maximum_version is ssl.TLSVersion.TLSv1_2


def test_missing_ca_file_is_a_config_error_with_a_hint(tmp_path: Path) -> None:
    trust = TrustConfig(ca_file=tmp_path / "nope.cert")
    with pytest.raises(ConfigError, match="CA file not found") as info:
        client_context(HandshakeCheck(SERIAL, trust))
    assert "bambu.cert" in info.value.hint


def test_missing_ca_dir_is_a_config_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CA directory not found") as info:
        TrustConfig(ca_dir=tmp_path / "bambu_certs").ca_files()
    for name in BAMBU_CERT_FILES:
        assert name in info.value.hint


def test_ca_dir_without_certificates(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("certs go here", encoding="utf-8")
    with pytest.raises(ConfigError, match="no certificate files") as info:
        TrustConfig(ca_dir=tmp_path).ca_files()
    assert "bambu.cert" in info.value.hint


def test_ca_dir_skips_other_files_and_folders(tmp_path: Path, test_ca: Issued) -> None:
    test_ca.write(tmp_path, "a")
    (tmp_path / "b.crt").write_bytes(test_ca.pem)
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    (tmp_path / "old.pem").mkdir()  # a folder that happens to look like a file
    files = TrustConfig(ca_dir=tmp_path).ca_files()
    assert [p.name for p in files] == ["a.pem", "b.crt"]
    client_context(HandshakeCheck(SERIAL, TrustConfig(ca_dir=tmp_path)))


def test_a_ca_file_that_is_not_a_certificate(tmp_path: Path) -> None:
    bad = tmp_path / "bambu.cert"
    bad.write_text("not a certificate", encoding="utf-8")
    with pytest.raises(ConfigError, match="not usable: no PEM certificate") as info:
        client_context(HandshakeCheck(SERIAL, TrustConfig(ca_file=bad)))
    assert "PEM" in info.value.hint


def test_a_ca_file_is_checked_again_once_it_changes(tmp_path: Path, test_ca: Issued) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(test_ca.pem)
    trust = TrustConfig(ca_file=ca)
    trust.check()
    trust.check()  # the same file: remembered
    ca.write_text("not a certificate any more", encoding="utf-8")
    with pytest.raises(ConfigError, match="not usable: no PEM certificate"):
        trust.check()
    ca.write_bytes(test_ca.pem)
    trust.check()


# --- the known-printers file ----------------------------------------------------------------


FP_A = hashlib.sha256(b"a").hexdigest()
FP_B = hashlib.sha256(b"b").hexdigest()


def test_pin_get_forget_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "known_printers"
    known = KnownPrinters(path)
    assert known.get(SERIAL) is None
    assert known.all() == {}
    known.pin(SERIAL, FP_A)
    assert path.is_file()  # parent folders made
    assert known.get(SERIAL) == FP_A
    known.pin("01P00A000000002", FP_B)
    assert known.all() == {SERIAL: FP_A, "01P00A000000002": FP_B}
    # Another instance (another process) reads the same pins.
    assert KnownPrinters(path).get("01P00A000000002") == FP_B
    known.pin(SERIAL, FP_B)  # re-pin replaces
    assert known.get(SERIAL) == FP_B
    assert known.forget(SERIAL) is True
    assert known.get(SERIAL) is None
    assert known.forget(SERIAL) is False
    assert known.all() == {"01P00A000000002": FP_B}


def test_pin_file_format_has_a_comment_and_one_line_per_printer(tmp_path: Path) -> None:
    path = tmp_path / "known_printers"
    known = KnownPrinters(path)
    known.pin("01P00A000000002", FP_B)
    known.pin(SERIAL, FP_A)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#")
    assert lines[1:] == sorted([f"{SERIAL} {FP_A}", f"01P00A000000002 {FP_B}"])


def test_hand_edited_file_comments_blanks_and_case(tmp_path: Path) -> None:
    path = tmp_path / "known_printers"
    path.write_text(
        f"# my printers\n\n   # indented comment {SERIAL} {FP_B}\n{SERIAL} {FP_A.upper()}  # A1\n"
        "garbage-line\n",
        encoding="utf-8",
    )
    known = KnownPrinters(path)
    assert known.all() == {SERIAL: FP_A}
    known.pin("01P00A000000002", FP_B)
    assert known.all() == {SERIAL: FP_A, "01P00A000000002": FP_B}


def test_pins_are_stored_lower_case(tmp_path: Path) -> None:
    known = KnownPrinters(tmp_path / "known_printers")
    known.pin(SERIAL, FP_A.upper())
    assert FP_A in (tmp_path / "known_printers").read_text(encoding="utf-8")
    assert known.get(SERIAL) == FP_A


def test_rewrite_is_atomic_and_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "known_printers"
    known = KnownPrinters(path)
    known.pin(SERIAL, FP_A)
    before = path.read_bytes()
    inode = path.stat().st_ino
    known.pin("01P00A000000002", FP_B)
    assert path.stat().st_ino != inode  # a new file moved into place, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["known_printers"]

    def fail(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(ConfigError, match="cannot write the known-printers file") as info:
        known.pin("00M09A350100123", FP_B)
    assert "BAMBU_KNOWN_PRINTERS" in info.value.hint
    monkeypatch.undo()
    # The old file is whole, and the half-done temporary file is gone.
    assert path.read_bytes() != before
    assert KnownPrinters(path).all() == {SERIAL: FP_A, "01P00A000000002": FP_B}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["known_printers"]


def test_unreadable_pin_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"known-printers file .* is a folder"):
        KnownPrinters(tmp_path).get(SERIAL)  # a directory


def test_concurrent_pins_all_land(tmp_path: Path) -> None:
    path = tmp_path / "known_printers"
    serials = [f"03919A3B1200{i:03d}" for i in range(40)]
    threads = [threading.Thread(target=KnownPrinters(path).pin, args=(s, FP_A)) for s in serials]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert KnownPrinters(path).all() == dict.fromkeys(serials, FP_A)


def test_default_known_printers_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BAMBU_KNOWN_PRINTERS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_known_printers_path() == tmp_path / "bambu-lan" / "known_printers"
    assert TrustConfig().known_printers_path() == tmp_path / "bambu-lan" / "known_printers"
    monkeypatch.setenv("BAMBU_KNOWN_PRINTERS", str(tmp_path / "pins"))
    assert default_known_printers_path() == tmp_path / "pins"
    assert TrustConfig(known_printers=tmp_path / "x").known_printers_path() == tmp_path / "x"


# --- certificate details --------------------------------------------------------------------


def test_peer_certificate_from_der(leaf: Issued, test_ca: Issued) -> None:
    peer = PeerCertificate.from_der(leaf.der)
    assert peer.subject_cn == SERIAL
    assert peer.issuer_cn == "bambu-lan test CA"
    assert peer.version == 3
    assert peer.serial_number == 0x1234ABCD
    assert peer.fingerprint == hashlib.sha256(leaf.der).hexdigest() == fingerprint(leaf.der)
    assert peer.not_before == leaf.cert.not_valid_before_utc
    assert peer.not_after == leaf.cert.not_valid_after_utc
    assert peer.not_before < peer.not_after
    assert "der" not in repr(peer)
    ca = PeerCertificate.from_der(test_ca.der)
    assert ca.subject_cn == ca.issuer_cn == "bambu-lan test CA"
    assert ca.fingerprint != peer.fingerprint


def test_peer_certificate_without_a_common_name(test_ca: Issued) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nobody")]))
        .issuer_name(test_ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(test_ca.key, hashes.SHA256())
    )
    peer = PeerCertificate.from_der(cert.public_bytes(serialization.Encoding.DER))
    assert peer.subject_cn == ""
    assert peer.issuer_cn == "bambu-lan test CA"


def test_pretty_fingerprint() -> None:
    assert (
        pretty_fingerprint(FP_A)
        == "SHA256:" + ":".join(FP_A[i : i + 2] for i in range(0, 16, 2)) + "…"
    )


# --- the check in a real handshake ----------------------------------------------------------


def handshake(trust: TrustConfig, served: Issued, tmp_path: Path, serial: str = SERIAL) -> Any:
    """Connect ``client_context`` to a TLS server presenting ``served``; returns the check."""
    cert_path, key_path = served.write(tmp_path, f"served-{os.urandom(4).hex()}")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)
    check = HandshakeCheck(serial, trust, host="127.0.0.1")
    client_sock, server_sock = socket.socketpair()
    client_sock.settimeout(10)
    server_sock.settimeout(10)

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(server_sock, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_context(check).wrap_socket(client_sock, server_hostname="127.0.0.1") as tls:
            assert tls.version() == "TLSv1.2"
    finally:
        client_sock.close()
        thread.join(10)
        server_sock.close()
    return check


def test_pin_on_first_use_then_refuse_a_different_certificate(
    tmp_path: Path, test_ca: Issued, leaf: Issued
) -> None:
    pins = tmp_path / "known_printers"
    trust = TrustConfig(known_printers=pins)
    first = handshake(trust, leaf, tmp_path)
    assert first.pinned_now
    assert first.peer is not None
    assert first.peer.subject_cn == SERIAL
    assert first.tls_version == "TLSv1.2"
    assert KnownPrinters(pins).get(SERIAL) == fingerprint(leaf.der)
    again = handshake(trust, leaf, tmp_path)
    assert not again.pinned_now
    impostor = issue(SERIAL, test_ca)
    with pytest.raises(TrustError, match="changed since it was pinned") as info:
        handshake(trust, impostor, tmp_path)
    assert f"trust forget {SERIAL}" in info.value.hint
    assert KnownPrinters(pins).get(SERIAL) == fingerprint(leaf.der)


def test_wrong_serial_is_refused_before_anything_is_pinned(tmp_path: Path, leaf: Issued) -> None:
    pins = tmp_path / "known_printers"
    with pytest.raises(TrustError, match="presents serial 03919A3B1200123, not 01P00A000000002"):
        handshake(TrustConfig(known_printers=pins), leaf, tmp_path, serial="01P00A000000002")
    assert KnownPrinters(pins).all() == {}


def test_ca_mode_accepts_the_right_ca_and_refuses_another(
    tmp_path: Path, test_ca: Issued, leaf: Issued
) -> None:
    ca_file, _ = test_ca.write(tmp_path, "ca")
    check = handshake(TrustConfig(ca_file=ca_file), leaf, tmp_path)
    assert check.peer is not None
    assert check.failure is None
    other_ca = issue("another CA", ca=True)
    other_file, _ = other_ca.write(tmp_path, "other_ca")
    with pytest.raises(TrustError, match="not signed by the given CA"):
        handshake(TrustConfig(ca_file=other_file), leaf, tmp_path)


def test_insecure_mode_accepts_anything(tmp_path: Path, leaf: Issued) -> None:
    pins = tmp_path / "known_printers"
    check = handshake(
        TrustConfig(insecure=True, known_printers=pins), leaf, tmp_path, serial="01P00A000000002"
    )
    assert check.peer is not None
    assert not pins.exists()
