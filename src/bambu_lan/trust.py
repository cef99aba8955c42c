"""Who is on the other end: TLS 1.2 contexts that check the printer's identity (design.md rule 2).

The check runs inside the TLS handshake, so a printer we do not trust never receives the access
code: paho writes CONNECT (which carries the password) only after the handshake returns.

Three ways to trust, in order:

1. a CA bundle (``--ca-file`` or a ``bambu_certs/`` directory): the chain must verify and the
   certificate's CN must be the serial;
2. trust on first use: the leaf's SHA-256 fingerprint is pinned per serial in a known-printers
   file (like SSH's ``known_hosts``); a different certificate later is refused;
3. ``insecure``: no check at all, only when asked for, with a warning.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import field
from datetime import datetime
from pathlib import Path
from typing import Any

from bambu_lan.errors import ConfigError, TrustError
from bambu_lan.local_files import write_atomically
from bambu_lan.packet_socket import PacketSocket
from bambu_lan.protocol.records import Record, record

log = logging.getLogger("bambu_lan.trust")

# The three files Bambu users are told to keep in a bambu_certs/ folder.
BAMBU_CERT_FILES = ("bambu.cert", "bambu_p2s_250626.cert", "bambu_h2c_251122.cert")
_CERT_SUFFIXES = (".cert", ".pem", ".crt")
# bambuddy's cipher string: some hardened OpenSSL builds drop the RSA-GCM suites printers use.
CIPHERS = "DEFAULT:AES256-GCM-SHA384:AES128-GCM-SHA256"
# OpenSSL's verify codes for a certificate outside its validity dates.
X509_V_ERR_CERT_NOT_YET_VALID = 9
X509_V_ERR_CERT_HAS_EXPIRED = 10


def default_known_printers_path() -> Path:
    env = os.environ.get("BAMBU_KNOWN_PRINTERS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bambu-lan" / "known_printers"


@record(slots=True)  # a frozen dataclass, cheaper to import (records.py)
class TrustConfig(Record):
    """How to decide that a printer is the one we mean."""

    ca_file: Path | None = None
    ca_dir: Path | None = None  # a bambu_certs/ folder: every .cert/.pem/.crt in it
    known_printers: Path | None = None  # None: the default file in the user config dir
    insecure: bool = False

    @property
    def mode(self) -> str:
        if self.insecure:
            return "insecure"
        if self.ca_file or self.ca_dir:
            return "ca"
        return "pin"

    def ca_files(self) -> list[Path]:
        """The CA files to trust: ``ca_file``, and every file in ``ca_dir`` that parses as a
        PEM certificate. A folder's other files are skipped (and named once in a warning);
        a folder with none that parses, or a ``ca_file`` that does not parse, is an error."""
        files: list[Path] = []
        if self.ca_file is not None:
            if self.ca_file.is_dir():
                raise ConfigError(
                    f"the CA file {self.ca_file} is a folder",
                    hint="pass a folder of CA files with --ca-dir (config: ca_dir), or the "
                    "path of one PEM file with --ca-file",
                )
            if not self.ca_file.is_file():
                raise ConfigError(
                    f"CA file not found: {self.ca_file}",
                    hint="pass the path of a PEM file, e.g. bambu_certs/bambu.cert",
                )
            problem = ca_file_problem(self.ca_file)
            if problem:
                raise ConfigError(
                    f"the CA file {self.ca_file} is not usable: {problem}",
                    hint="pass a PEM certificate (-----BEGIN CERTIFICATE-----), e.g. Bambu's "
                    "bambu.cert, or the simulator's ca.pem",
                )
            files.append(self.ca_file)
        if self.ca_dir is not None:
            usable, skipped = scan_ca_dir(self.ca_dir)
            if not usable:  # the error names the skipped files: no warning besides
                names = ", ".join(p.name for p in skipped)
                raise ConfigError(
                    f"no usable CA certificate in {self.ca_dir}"
                    + (f" (not PEM certificates: {names})" if names else ""),
                    hint="put " + ", ".join(BAMBU_CERT_FILES) + " there (PEM files: "
                    "-----BEGIN CERTIFICATE-----)",
                )
            if skipped:
                _warn_once(
                    ("skipped", self.ca_dir, tuple(skipped)),
                    "%s: skipped %d file(s) that are not PEM certificates: %s",
                    self.ca_dir,
                    len(skipped),
                    "; ".join(f"{p.name} ({why})" for p, why in skipped.items()),
                )
            files.extend(usable)
        return files

    def check(self) -> None:
        """Refuse contradictory or unusable settings before any connection is made."""
        if self.insecure and (self.ca_file or self.ca_dir):
            given = "--ca-file" if self.ca_file else "--ca-dir"
            raise ConfigError(
                f"--insecure and {given} contradict each other: --insecure would drop the CA "
                "and check nothing",
                hint=f"drop --insecure to check the printer against the CA (or drop {given}; "
                "config keys: insecure, ca_file, ca_dir)",
            )
        if self.mode == "ca":
            self.ca_files()
        elif self.mode == "pin":
            KnownPrinters(self.known_printers_path()).all()

    def known_printers_path(self) -> Path:
        return self.known_printers or default_known_printers_path()


@record(slots=True)  # a frozen dataclass, cheaper to import (records.py)
class PeerCertificate(Record):
    """The certificate a printer presented, for checks and for the doctor."""

    der: bytes = field(repr=False)
    fingerprint: str  # SHA-256 of the DER, lower-case hex
    subject_cn: str
    issuer_cn: str
    not_before: datetime
    not_after: datetime
    version: int  # X.509 version: 1 or 3
    serial_number: int

    @classmethod
    def from_der(cls, der: bytes) -> PeerCertificate:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        cert = x509.load_der_x509_certificate(der)

        def cn(name: x509.Name) -> str:
            attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
            return str(attrs[0].value) if attrs else ""

        return cls(
            der=der,
            fingerprint=fingerprint(der),
            subject_cn=cn(cert.subject),
            issuer_cn=cn(cert.issuer),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            version=cert.version.value + 1,
            serial_number=cert.serial_number,
        )


_warned: set[object] = set()
_warned_lock = threading.Lock()


def _first_time(key: object) -> bool:
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
        return True


def _warn_once(key: object, message: str, *args: object) -> None:
    """A warning logged once per process for ``key`` (reconnects must not repeat it)."""
    if _first_time(key):
        log.warning(message, *args)


def warn_insecure(
    label: str, serial: str, host: str, *, show: Callable[[], None] | None = None
) -> None:
    """Say that insecure mode does not check this printer's identity: a warning logged once
    per process per printer (a second ``Printer`` for it, or a reconnect, does not repeat it).

    ``show``: the caller's own notice (the CLI's banner), shown every time; the log then
    stays quiet about this printer, so that nobody is told twice."""
    first = _first_time(("insecure", serial, host))
    if show is not None:
        show()
    elif first:
        log.warning(
            "%s: insecure mode: the printer's identity is NOT checked; the access code goes "
            "to whoever answers at %s",
            label,
            host,
        )


def warn_if_exposed(path: Path, what: str) -> None:
    """Warn (once) when ``path`` can be read or written by other users, like ssh does."""
    if os.name != "posix":
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o066:
        _warn_once(
            ("exposed", path, mode),
            "%s %s can be read by other users (mode %s); run: chmod 600 %s",
            what,
            path,
            oct(mode & 0o777)[2:],
            path,
        )


def ca_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot serve as a CA file, or None when OpenSSL loads it. Remembered
    while the file is unchanged: a printer checks its CA when made and again when it
    connects, and a farm has many printers on one CA."""
    try:
        stat = path.stat()
    except OSError as exc:
        return exc.strerror or str(exc)
    return _ca_file_problem(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _ca_file_problem(path: str, size: int, mtime_ns: int) -> str | None:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        return (
            "no PEM certificate in it" if "NO_CERTIFICATE" in str(exc) else exc.reason or str(exc)
        )
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def scan_ca_dir(folder: Path) -> tuple[list[Path], dict[Path, str]]:
    """The files of a bambu_certs/ folder: those that load as CA certificates, and the
    others with the reason (a web page saved as ``bambu.cert`` is a classic)."""
    if not folder.is_dir():
        raise ConfigError(
            f"CA directory not found: {folder}",
            hint="a bambu_certs/ folder holding " + ", ".join(BAMBU_CERT_FILES),
        )
    try:
        candidates = sorted(
            p for p in folder.iterdir() if p.suffix in _CERT_SUFFIXES and p.is_file()
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot read the CA directory {folder}: {exc.strerror or exc}",
            hint="check its permissions",
        ) from None
    if not candidates:
        raise ConfigError(
            f"no certificate files (.cert, .pem, .crt) in {folder}",
            hint="put " + ", ".join(BAMBU_CERT_FILES) + " there",
        )
    usable: list[Path] = []
    skipped: dict[Path, str] = {}
    for path in candidates:
        problem = ca_file_problem(path)
        if problem:
            skipped[path] = problem
        else:
            usable.append(path)
    return usable, skipped


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def pretty_fingerprint(fp: str) -> str:
    """``SHA256:ab:cd:…`` shortened for messages."""
    pairs = [fp[i : i + 2] for i in range(0, len(fp), 2)]
    return "SHA256:" + ":".join(pairs[:8]) + "…"


class KnownPrinters:
    """The pin file: one ``SERIAL FINGERPRINT`` line per printer. Safe for threads."""

    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        pins: dict[str, str] = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return pins
        except IsADirectoryError:
            raise ConfigError(
                f"the known-printers file {self.path} is a folder",
                hint="point BAMBU_KNOWN_PRINTERS (or --known-printers) at a file",
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"cannot read the known-printers file {self.path}: {exc.strerror or exc}",
                hint="check its permissions, or set BAMBU_KNOWN_PRINTERS to another file",
            ) from None
        warn_if_exposed(self.path, "the known-printers file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = data[: exc.start].count(b"\n") + 1
            raise ConfigError(
                f"the known-printers file {self.path} is not UTF-8 text (line {bad_line}): "
                "damaged or not a bambu-lan pin file",
                hint=f"remove that line or the file ({self.path}); the printers it named are "
                "pinned again on their next connection",
            ) from None
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and not line.lstrip().startswith("#"):
                pins[parts[0]] = parts[1].lower()
        return pins

    def get(self, serial: str) -> str | None:
        with self._lock:
            return self._read().get(serial)

    def all(self) -> dict[str, str]:
        with self._lock:
            return self._read()

    def pin(self, serial: str, fp: str) -> None:
        self._update(serial, fp)

    def forget(self, serial: str) -> bool:
        with self._lock:
            pins = self._read()
            if serial not in pins:
                return False
        self._update(serial, None)
        return True

    def _update(self, serial: str, fp: str | None) -> None:
        with self._lock:
            pins = self._read()
            if fp is None:
                pins.pop(serial, None)
            else:
                pins[serial] = fp.lower()  # as _read returns it
            lines = ["# bambu-lan known printers: serial, SHA-256 of the printer's certificate"]
            lines += [f"{s} {f}" for s, f in sorted(pins.items())]
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(self.path, "\n".join(lines) + "\n")
            except OSError as exc:
                raise ConfigError(
                    f"cannot write the known-printers file {self.path}: {exc}",
                    hint="check the disk space and permissions, or set BAMBU_KNOWN_PRINTERS",
                ) from None


class HandshakeCheck:
    """The identity check of one connection attempt; remembers what it saw for the caller."""

    def __init__(
        self, serial: str, trust: TrustConfig, host: str = "", *, pin_on_first_use: bool = True
    ) -> None:
        self.serial = serial
        self.pin_on_first_use = pin_on_first_use  # the doctor looks, but never pins
        self.trust = trust
        self.host = host
        self.der: bytes | None = None
        self.fingerprint: str | None = None
        self._peer: PeerCertificate | None = None
        self.failure: TrustError | None = None
        self.pinned_now = False
        self.cipher: tuple[str, str, int] | None = None
        self.tls_version: str | None = None

    @property
    def peer(self) -> PeerCertificate | None:
        """The presented certificate in detail (parsed on first use: cryptography's import
        costs ~25 ms, so the connect path avoids it)."""
        if self._peer is None and self.der is not None:
            self._peer = PeerCertificate.from_der(self.der)
        return self._peer

    def verify(self, sock: ssl.SSLSocket) -> None:
        """Called right after the handshake; raises TrustError to abort before CONNECT."""
        der = sock.getpeercert(binary_form=True)
        self.cipher = sock.cipher()
        self.tls_version = sock.version()
        if der is None:
            self._fail("the printer presented no certificate")
        assert der is not None
        self.der, self._peer = der, None
        self.fingerprint = fingerprint(der)
        mode = self.trust.mode
        if mode == "insecure":
            return
        if mode == "ca":
            # OpenSSL verified the chain and parsed the certificate: only the name is left.
            self._check_name(_verified_subject_cn(sock))
            return
        known = KnownPrinters(self.trust.known_printers_path())
        pinned = known.get(self.serial)
        if pinned == self.fingerprint:
            return  # the very certificate whose name was checked when it was pinned
        assert self.peer is not None
        self._check_name(self.peer.subject_cn)
        if pinned is None:
            if not self.pin_on_first_use:
                return
            known.pin(self.serial, self.fingerprint)
            self.pinned_now = True
            log.warning(
                "trusting %s on first use: pinned certificate %s in %s",
                self.serial,
                pretty_fingerprint(self.fingerprint),
                known.path,
            )
            return
        where = f" at {self.host}" if self.host else ""
        self._fail(
            f"the certificate of {self.serial}{where} changed since it was pinned "
            f"(now {pretty_fingerprint(self.fingerprint)}, pinned "
            f"{pretty_fingerprint(pinned)}); no credentials were sent",
            hint=(
                "if the printer was reset or replaced, forget the old pin with "
                f"`bambu-lan trust forget {self.serial}` (or edit {known.path}); "
                "otherwise something else answers at this address"
            ),
        )

    def _check_name(self, subject_cn: str) -> None:
        if subject_cn != self.serial:
            where = f" at {self.host}" if self.host else ""
            self._fail(
                f"the printer{where} presents serial {subject_cn or '(none)'}, "
                f"not {self.serial}: wrong IP address or wrong serial; no credentials were sent",
                hint="check the IP and the serial on the printer's screen (Settings > Device)",
            )

    def verification_failed(self, exc: ssl.SSLCertVerificationError) -> TrustError:
        """A TrustError for a chain that OpenSSL refused (CA mode)."""
        if exc.verify_code in (X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED):
            when = (
                "has expired"
                if exc.verify_code == X509_V_ERR_CERT_HAS_EXPIRED
                else ("is not valid yet")
            )
            now = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
            return TrustError(
                f"the printer's certificate {when} by this computer's clock ({now}); "
                "no credentials were sent",
                hint="check the date and time on the printer (it sets its clock from the "
                "network: a printer without internet may have lost it) and on this computer",
            )
        files = ", ".join(str(p) for p in self.trust.ca_files())
        return TrustError(
            f"the printer's certificate is not signed by the given CA ({files}): "
            f"{exc.verify_message}; no credentials were sent",
            hint="use Bambu's CA files (bambu_certs/) for a real printer, or the simulator's "
            "ca.pem for the simulator",
        )

    def _fail(self, message: str, hint: str | None = None) -> None:
        self.failure = TrustError(message, hint=hint)
        raise self.failure


def _verified_subject_cn(sock: ssl.SSLSocket) -> str:
    """The CN of a certificate OpenSSL has verified (getpeercert() parses only those)."""
    cert = sock.getpeercert() or {}
    for rdn in cert.get("subject", ()):
        for attribute in rdn:
            if attribute[0] == "commonName":
                return str(attribute[1])
    return ""


def load_ca_files(ctx: ssl.SSLContext, files: Iterable[Path]) -> None:
    """Trust ``files`` in ``ctx``; a file that is not a PEM certificate is a ConfigError."""
    for path in files:
        try:
            ctx.load_verify_locations(cafile=str(path))
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"cannot load CA file {path}: {exc}",
                hint="pass a PEM certificate (-----BEGIN CERTIFICATE-----), e.g. Bambu's "
                "bambu.cert, or the simulator's ca.pem",
            ) from None


def tls12_context(ca_files: Iterable[Path] = ()) -> ssl.SSLContext:
    """The printers' TLS settings: TLS 1.2 exactly; the chain verified against ``ca_files``
    when given, else not verified (the caller pins or checks the certificate itself)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    # Bambu's CAs lack the key-usage extension that Python 3.13's strict mode requires.
    ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
    ctx.set_ciphers(CIPHERS)
    # The printer's certificate is named after its serial, not its IP (no IP SAN), and paho
    # passes the IP as server_hostname: the name is compared to the serial in HandshakeCheck.
    ctx.check_hostname = False
    files = list(ca_files)
    if files:
        ctx.verify_mode = ssl.CERT_REQUIRED
        load_ca_files(ctx, files)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_context(check: HandshakeCheck) -> ssl.SSLContext:
    """A client context for one connection attempt: TLS 1.2 exactly, identity checked in the
    handshake by ``check``."""
    trust = check.trust
    ctx = tls12_context(trust.ca_files() if trust.mode == "ca" else ())

    class CheckedSSLSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            _checked_handshake(self, check, block)

    ctx.sslsocket_class = CheckedSSLSocket
    return ctx


def _checked_handshake(sock: ssl.SSLSocket, check: HandshakeCheck, block: bool) -> None:
    try:
        ssl.SSLSocket.do_handshake(sock, block)
        check.verify(sock)
    except ssl.SSLCertVerificationError as exc:
        check.failure = check.verification_failed(exc)
        sock.close()  # refused: hang up now, not when the socket is collected
        raise check.failure from None
    except TrustError:
        sock.close()
        raise


# One context per trust setting for every connection of the process: an SSL context that has
# loaded a CA costs about 40 KB, which a farm of a thousand printers felt. The connection's
# own check is found through the thread that runs its (blocking) handshake.
_current = threading.local()
_shared: dict[tuple[object, ...], ssl.SSLContext] = {}
_shared_lock = threading.Lock()


class _ThreadCheckedSSLSocket(PacketSocket):
    def do_handshake(self, block: bool = False) -> None:
        check: HandshakeCheck | None = getattr(_current, "check", None)
        if check is None:
            self.close()
            raise TrustError("a TLS handshake outside checking(): refused before any credential")
        on_socket = getattr(_current, "on_socket", None)
        if on_socket is not None:
            on_socket(self)
        _checked_handshake(self, check, block)


@contextlib.contextmanager
def checking(
    check: HandshakeCheck, on_socket: Callable[[ssl.SSLSocket], None] | None = None
) -> Iterator[None]:
    """Handshakes on this thread (with a ``shared_client_context``) are checked by ``check``;
    ``on_socket`` sees each socket as its handshake starts (so it can be interrupted)."""
    _current.check, _current.on_socket = check, on_socket
    try:
        yield
    finally:
        _current.check = _current.on_socket = None


def shared_client_context(trust: TrustConfig) -> ssl.SSLContext:
    """``client_context`` for many connections: one context per trust setting (and CA files
    as they are now), the check of each handshake set by ``checking()`` on its thread."""
    files = tuple(trust.ca_files()) if trust.mode == "ca" else ()
    key = (trust.mode, *((str(f), f.stat().st_mtime_ns) for f in files))
    with _shared_lock:
        ctx = _shared.get(key)
        if ctx is None:
            ctx = _shared[key] = tls12_context(files)
            ctx.sslsocket_class = _ThreadCheckedSSLSocket
    return ctx


def describe_context(ctx: ssl.SSLContext) -> dict[str, Any]:
    """For debugging and the doctor: the settings that matter."""
    return {
        "minimum_version": ctx.minimum_version.name,
        "maximum_version": ctx.maximum_version.name,
        "verify_mode": ctx.verify_mode.name,
        "check_hostname": ctx.check_hostname,
    }
