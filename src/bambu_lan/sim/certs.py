"""The simulator's TLS identity: a private CA named like Bambu's, and one leaf per serial.

Shaped like a real A1/P1/X1 chain (protocol.md §2.2): the leaf is signed directly by a root
named like ``C=CN, O=BBL Technologies Co., Ltd, CN=BBL CA`` (ours says it is the simulator's),
the root carries basicConstraints CA:true and, like the real ``BBL CA``, **no keyUsage**, so a
Python 3.13 client must clear ``VERIFY_X509_STRICT`` exactly as it must for a real printer.
The leaf has ``CN=<serial>``, RSA-2048/SHA-256, no SAN and no extensions at all. (A real A1
leaf is an X.509 *version 1* certificate; ``cryptography`` can only write version 3, which is
the one visible difference.)

On disk, in the certificate directory::

    ca.pem              the CA certificate: what clients trust (``--cafile``)
    ca.key              the CA key (mode 0600)
    leaf.key            one RSA key shared by every leaf (mode 0600); RSA key generation
                        takes ~0.1 s, so a thousand simulated printers share one
    leaves/<SERIAL>.pem one leaf certificate per serial

Existing files are reused, so a restarted simulator keeps its identity (and clients that
pinned a fingerprint keep trusting it); ``new_identity=True`` makes a new CA and key.
Files are written atomically, keys with mode 0600, under an advisory lock so that two
processes sharing a directory do not interleave.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import secrets
import ssl
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = [
    "CA_FILE",
    "CA_KEY_FILE",
    "CIPHERS",
    "LEAF_KEY_FILE",
    "LEAVES_DIR",
    "SERIAL_RE",
    "CertAuthority",
    "default_cert_dir",
    "der_fingerprint",
]

log = logging.getLogger(__name__)

CA_FILE: Final = "ca.pem"
CA_KEY_FILE: Final = "ca.key"
LEAF_KEY_FILE: Final = "leaf.key"
LEAVES_DIR: Final = "leaves"
_LOCK_FILE: Final = ".lock"

#: What printers offer (protocol.md §2.1): ECDHE-RSA and plain-RSA AES-GCM, TLS 1.2 only.
CIPHERS: Final = (
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-GCM-SHA256"
)

_CA_NAME: Final = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "BBL Technologies Co., Ltd"),
        x509.NameAttribute(NameOID.COMMON_NAME, "BBL CA (bambu-lan simulator)"),
    ]
)
_CA_YEARS: Final = 10  # the real BBL CA: 2022-04-04 → 2032-04-01
_LEAF_YEARS: Final = 10
_RENEW_MARGIN: Final = dt.timedelta(days=1)  # re-issue what would expire within a day
_KEY_SIZE: Final = 2048

# A serial becomes a file name and an MQTT topic level: keep it to letters and digits
# (real serials are 15 upper-case alphanumerics), plus '-' and '_' for hand-made test names.
SERIAL_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")

# One lock per directory inside this process (flock below guards against other processes;
# the thread lock keeps two threads of one process from racing on the same files).
_THREAD_LOCK: Final = threading.Lock()


def default_cert_dir() -> Path:
    """Where ``bambu-lan sim`` keeps its identity by default: the user's cache directory.

    ``$XDG_CACHE_HOME/bambu-lan/sim`` (``~/.cache/bambu-lan/sim``) on Linux and other Unix,
    ``~/Library/Caches/bambu-lan/sim`` on macOS, ``%LOCALAPPDATA%\\bambu-lan\\sim`` on Windows.
    """
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "bambu-lan" / "sim"


def _check_serial(serial: str) -> None:
    if not SERIAL_RE.fullmatch(serial):
        raise ValueError(
            f"invalid serial {serial!r}: use 1-64 letters, digits, '-' or '_' "
            "(real serials are 15 upper-case letters and digits)"
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The temporary file is created with ``mode`` from the start, so a key is never readable by
    others, not even for a moment.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(path: Path) -> rsa.RSAPrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, rsa.RSAPrivateKey) else None


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _same_public_key(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bool:
    public = cert.public_key()
    return (
        isinstance(public, rsa.RSAPublicKey)
        and public.public_numbers() == key.public_key().public_numbers()
    )


@contextlib.contextmanager
def _dir_lock(cert_dir: Path) -> Iterator[None]:
    """Exclusive advisory lock on the directory (flock where available)."""
    with _THREAD_LOCK:
        try:
            import fcntl
        except ImportError:  # Windows: the thread lock is all we have
            yield
            return
        fd = os.open(cert_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock


class CertAuthority:
    """The CA, the shared leaf key and the leaves of one certificate directory.

    Create it with ``CertAuthority.load_or_create(cert_dir)``. The methods are blocking (file
    I/O and RSA signing); run them in a thread from async code.
    """

    def __init__(
        self,
        cert_dir: Path,
        ca_cert: x509.Certificate,
        ca_key: rsa.RSAPrivateKey,
        leaf_key: rsa.RSAPrivateKey,
    ) -> None:
        """Use ``load_or_create``; this only binds already loaded parts."""
        self.cert_dir = cert_dir
        self.ca_cert = ca_cert
        self._ca_key = ca_key
        self._leaf_key = leaf_key
        self._leaves: dict[str, x509.Certificate] = {}
        self._leaf_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<CertAuthority {str(self.cert_dir)!r} ca_fingerprint={self.ca_fingerprint[:16]}…>"

    # ---- paths ---------------------------------------------------------------------------

    @property
    def ca_path(self) -> Path:
        """The CA certificate (PEM): the file clients trust."""
        return self.cert_dir / CA_FILE

    @property
    def leaf_key_path(self) -> Path:
        """The private key shared by every leaf (PEM, mode 0600)."""
        return self.cert_dir / LEAF_KEY_FILE

    def leaf_path(self, serial: str) -> Path:
        """The leaf certificate file of one serial."""
        _check_serial(serial)
        return self.cert_dir / LEAVES_DIR / f"{serial}.pem"

    @property
    def ca_fingerprint(self) -> str:
        """SHA-256 of the CA certificate (DER), lower-case hex."""
        return self.ca_cert.fingerprint(hashes.SHA256()).hex()

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def load_or_create(cls, cert_dir: Path | str, *, new_identity: bool = False) -> CertAuthority:
        """Load the identity in ``cert_dir``, creating whatever is missing or unusable.

        ``new_identity=True`` replaces the CA, its key and the leaf key (every leaf is then
        re-issued on demand), as if the printer had been replaced.
        """
        cert_dir = Path(cert_dir).expanduser()
        cert_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (cert_dir / LEAVES_DIR).mkdir(exist_ok=True, mode=0o700)
        with _dir_lock(cert_dir):
            ca_cert = ca_key = None
            if not new_identity:
                ca_cert = _load_cert(cert_dir / CA_FILE)
                ca_key = _load_key(cert_dir / CA_KEY_FILE)
            if (
                ca_cert is None
                or ca_key is None
                or not _same_public_key(ca_cert, ca_key)
                or ca_cert.not_valid_after_utc < _now() + _RENEW_MARGIN
            ):
                log.info("creating a new simulator CA in %s", cert_dir)
                ca_key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)
                ca_cert = _make_ca(ca_key)
                _write_atomic(cert_dir / CA_KEY_FILE, _key_pem(ca_key), mode=0o600)
                _write_atomic(
                    cert_dir / CA_FILE, ca_cert.public_bytes(serialization.Encoding.PEM), mode=0o644
                )
                new_identity = True
            leaf_key = None if new_identity else _load_key(cert_dir / LEAF_KEY_FILE)
            if leaf_key is None:
                leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)
                _write_atomic(cert_dir / LEAF_KEY_FILE, _key_pem(leaf_key), mode=0o600)
            if new_identity:
                # Leaves of the old CA are useless now; remove them rather than leave a trap.
                for old in (cert_dir / LEAVES_DIR).glob("*.pem"):
                    with contextlib.suppress(OSError):
                        old.unlink()
        return cls(cert_dir, ca_cert, ca_key, leaf_key)

    # ---- leaves --------------------------------------------------------------------------

    def leaf(self, serial: str) -> x509.Certificate:
        """The leaf certificate of ``serial``: reused from disk when valid, else issued."""
        cached = self._leaves.get(serial)
        if cached is not None:
            return cached
        self.ensure_leaves([serial])
        return self._leaves[serial]

    def ensure_leaves(self, serials: Iterable[str]) -> None:
        """Load or issue the leaves of many serials at once (one lock, one directory pass)."""
        wanted = [s for s in dict.fromkeys(serials) if s not in self._leaves]
        for serial in wanted:
            _check_serial(serial)
        if not wanted:
            return
        with self._leaf_lock, _dir_lock(self.cert_dir):
            for serial in wanted:
                path = self.leaf_path(serial)
                cert = _load_cert(path)
                if cert is None or not self._leaf_is_current(cert, serial):
                    cert = self._issue_leaf(serial)
                    _write_atomic(path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
                self._leaves[serial] = cert

    def fingerprint(self, serial: str) -> str:
        """SHA-256 of the leaf certificate (DER) of ``serial``, lower-case hex.

        This is what a trust-on-first-use client pins (it sees the same bytes on the wire).
        """
        return self.leaf(serial).fingerprint(hashes.SHA256()).hex()

    def server_context(self, serial: str) -> ssl.SSLContext:
        """A server context presenting the leaf of ``serial``: TLS 1.2 only, AES-GCM suites.

        min = max = TLS 1.2, so a client that offers only TLS 1.3 fails the handshake, as it
        does against the real printers that have been measured (protocol.md §2.1, §15). The
        leaf is sent alone, without the CA (old-style chain, like an A1).
        """
        self.leaf(serial)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(CIPHERS)
        # No TLS 1.2 renegotiation (mbedTLS, the printers' TLS stack, leaves it off too).
        context.options |= ssl.OP_NO_RENEGOTIATION
        context.load_cert_chain(self.leaf_path(serial), self.leaf_key_path)
        return context

    def _leaf_is_current(self, cert: x509.Certificate, serial: str) -> bool:
        try:
            cert.verify_directly_issued_by(self.ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return (
            len(names) == 1
            and names[0].value == serial
            and _same_public_key(cert, self._leaf_key)
            and cert.not_valid_after_utc >= _now() + _RENEW_MARGIN
        )

    def _issue_leaf(self, serial: str) -> x509.Certificate:
        now = _now()
        not_after = min(
            now + dt.timedelta(days=365 * _LEAF_YEARS), self.ca_cert.not_valid_after_utc
        )
        # No extensions at all: no SAN (clients must match the CN or pin), no keyUsage, no
        # key identifiers, just like the real A1 leaf (which is even X.509 v1).
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, serial)]))
            .issuer_name(self.ca_cert.subject)
            .public_key(self._leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))  # tolerate a client clock a bit behind
            .not_valid_after(not_after)
            .sign(self._ca_key, hashes.SHA256())
        )


def _make_ca(key: rsa.RSAPrivateKey) -> x509.Certificate:
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    # The extensions of the real BBL CA root: key identifiers and a critical basicConstraints
    # CA:true — and deliberately no keyUsage (what trips Python 3.13's VERIFY_X509_STRICT).
    return (
        x509.CertificateBuilder()
        .subject_name(_CA_NAME)
        .issuer_name(_CA_NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365 * _CA_YEARS))
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def der_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as lower-case hex (what ``getpeercert(True)`` gives)."""
    return hashlib.sha256(der).hexdigest()
