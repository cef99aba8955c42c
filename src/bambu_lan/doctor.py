"""``bambu-lan doctor`` as a library: why a printer connection fails, and how to fix it.

``diagnose(cfg)`` walks the path a client takes, one step at a time, and stops at the first
required step that fails, naming one cause and one fix in plain words::

    diagnosis = await diagnose(cfg, check_control=True)
    print(diagnosis.verdict)          # one line
    for step in diagnosis.steps:      # ordered: input, network, TLS, MQTT, control, quirks
        print(step.status, step.title, step.evidence)

The steps:

1. **Input**: the address, the serial's shape (15 characters, upper case: a lower-case serial
   connects and then receives nothing), the access code's shape, the trust settings.
2. **Network**: TCP to the MQTT port; refused, no answer and unreachable are told apart.
   Optionally FTPS (990) and the camera (6000).
3. **TLS**: a TLS 1.2 handshake (cipher, certificate), a TLS 1.3-only attempt (refused or no
   answer: protocol.md §15), the certificate's CN against the serial, the chain against the
   given CA, the pinned fingerprint. The doctor never pins anything.
4. **MQTT**: CONNACK (5: access code; closed before CONNACK: session limit; 3: starting up;
   none in time), subscribe, first report (none: a silent printer), pushall → full report,
   get_version → model and firmware.
5. **Control** (``check_control``): one harmless signed-class command tells whether Developer
   Mode is on.
6. **Quirks** (``probe_quirks``, spends sessions): what this printer does with an early
   subscribe, a wildcard subscribe, TLS 1.3, default TLS settings and a reused client id.

The access code is never formatted into a step, the verdict or the JSON; as a second lock,
every text a step records also passes through ``redact``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import errno
import ipaddress
import platform
import re
import shlex
import socket
import ssl
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, NoReturn

import orjson

from bambu_lan.config import PrinterConfig, access_code_problem, redact
from bambu_lan.errors import (
    AuthError,
    BambuError,
    ConfigError,
    ConnectError,
    NotConnected,
    TrustError,
)
from bambu_lan.protocol import commands as cmd
from bambu_lan.protocol.commands import VERIFY_FAILED_REASON, Command, SequenceIds
from bambu_lan.protocol.decode import DecodeStats, decode_payload
from bambu_lan.protocol.errors_table import ERR_VERIFY_FAILED, ERR_VERIFY_MALFORMED
from bambu_lan.protocol.merge import is_full_report
from bambu_lan.protocol.state import info_from_version_reply
from bambu_lan.protocol.topics import USERNAME, report_topic, serial_problem
from bambu_lan.session import ClosedBeforeConnack, ServerUnavailable, SessionOptions, _Link
from bambu_lan.trust import (
    KnownPrinters,
    PeerCertificate,
    TrustConfig,
    fingerprint,
    load_ca_files,
    pretty_fingerprint,
    tls12_context,
)

__all__ = [
    "CAUSES",
    "EXTRA_PORTS",
    "Diagnosis",
    "DoctorTimeouts",
    "Status",
    "Step",
    "config_failure",
    "diagnose",
    "mosquitto_sub_command",
]

# Well-known services next to MQTT (protocol.md §1), for ``ports=``.
EXTRA_PORTS: Final = (990, 6000)
PORT_NAMES: Final = {990: "FTPS", 6000: "Camera", 322: "RTSPS camera", 8883: "MQTT"}

# HMS raised by a refused unsigned command (protocol.md §10.4), as (attr, code).
_DEV_MODE_HMS: Final = (0x05000500, 0x00010007)
# print.fun bit meaning "signatures required" on X1/H2/P2S (protocol.md §10.5).
_FUN_SIGNATURE_REQUIRED: Final = 0x20000000


class Status(enum.StrEnum):
    PASS = "pass"  # noqa: S105 (a status, not a password)
    FAIL = "fail"
    WARN = "warn"  # something to know; never fails the diagnosis
    SKIP = "skip"  # not run, with the reason in the evidence


# Cause id -> short title. A failing step names exactly one of these.
CAUSES: Final[Mapping[str, str]] = {
    "config_invalid": "Unusable settings",
    "host_missing": "No printer address",
    "host_invalid": "Invalid printer address",
    "host_unknown": "Host name does not resolve",
    "port_invalid": "Invalid port",
    "serial_invalid": "Invalid serial number",
    "access_code_invalid": "Invalid access code",
    "trust_config": "Unusable CA file or directory",
    "port_closed": "MQTT port closed (connection refused)",
    "no_answer": "No answer from the printer's address",
    "host_unreachable": "Printer's address unreachable",
    "network_error": "Network error",
    "tls_no_answer": "No answer to the TLS handshake",
    "not_tls": "Not a TLS service",
    "tls_refused": "TLS 1.2 handshake refused",
    "serial_mismatch": "Wrong IP address or wrong serial",
    "untrusted_certificate": "Certificate not signed by the given CA",
    "certificate_changed": "Certificate changed since it was pinned",
    "trust_failed": "Printer identity check failed",
    "wrong_access_code": "Wrong access code",
    "session_limit": "Too many MQTT sessions (closed before CONNACK)",
    "printer_starting": "Printer still starting up (CONNACK 3)",
    "no_connack": "No CONNACK",
    "connack_refused": "MQTT connection refused",
    "connect_failed": "Connection failed",
    "subscribe_refused": "Subscription refused",
    "connection_dropped": "Connection dropped",
    "silent_printer": "Silent printer (connected, but no data)",
    "no_full_report": "No full report",
    "developer_mode_off": "Developer Mode off",
    "control_refused": "Control command refused",
    "control_no_reply": "No answer to a control command",
}


_CONTROL_SETTLE: Final = 5.0


@dataclass(frozen=True, slots=True)
class DoctorTimeouts:
    """How long each step waits, in seconds. Short by default; tests make them shorter."""

    resolve: float = 3.0  # host name lookup
    tcp: float = 3.0
    tls: float = 5.0
    tls13: float = 3.0  # a printer that never answers TLS 1.3 costs this long (P2S)
    connack: float = 10.0  # the A1 can take ~5 s on a cold session
    subscribe: float = 5.0
    first_report: float = 10.0  # idle A1s push every ~2 s; pushall is sent at once
    reply: float = 10.0  # full report, get_version, the control probe
    quirk: float = 5.0  # each answer in a quirk probe
    # Not a timeout: how long after CONNACK to wait before the control probe. Probing right
    # after connecting destabilised some brokers (protocol.md §10.5).
    control_settle: float = _CONTROL_SETTLE

    @classmethod
    def uniform(cls, seconds: float) -> DoctorTimeouts:
        """Every wait set to ``seconds`` (``--timeout``); the control settle time at most."""
        if not seconds > 0:
            raise ValueError("the timeout must be greater than 0")
        names = [f.name for f in dataclasses.fields(cls) if f.name != "control_settle"]
        return cls(**dict.fromkeys(names, seconds), control_settle=min(_CONTROL_SETTLE, seconds))


@dataclass(slots=True)
class Step:
    """One check: what was seen (``evidence``) and, when it failed, the cause and the fix."""

    id: str
    title: str
    status: Status
    evidence: str = ""
    cause: str | None = None  # a key of CAUSES, on failure
    fix: str = ""
    required: bool = True  # a failure of an optional step is shown as a warning
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "required": self.required,
            "evidence": self.evidence,
            "cause": self.cause,
            "fix": self.fix or None,
            "seconds": round(self.seconds, 3),
            "data": self.data,
        }


@dataclass(slots=True)
class Diagnosis:
    """The result: ordered steps, one verdict, and the cause of the first failure (if any)."""

    target: dict[str, Any]
    steps: list[Step]
    notes: list[str]
    mosquitto_sub: str
    seconds: float = 0.0

    @property
    def failure(self) -> Step | None:
        """The first failed required step: the cause of the problem."""
        return next((s for s in self.steps if s.failed and s.required), None)

    @property
    def ok(self) -> bool:
        """True only when every required step ran and passed (warnings are fine)."""
        return all(
            s.status in (Status.PASS, Status.WARN) or (s.status is Status.SKIP and not s.required)
            for s in self.steps
        )

    @property
    def cause(self) -> str | None:
        failure = self.failure
        return failure.cause if failure is not None else None

    @property
    def fix(self) -> str:
        failure = self.failure
        return failure.fix if failure is not None else ""

    @property
    def warnings(self) -> list[Step]:
        return [s for s in self.steps if s.status is Status.WARN]

    @property
    def verdict(self) -> str:
        """One line: healthy, or the cause with what was seen."""
        failure = self.failure
        if failure is not None:
            title = CAUSES.get(failure.cause or "", failure.title)
            return f"FAIL: {title}. {failure.title}: {failure.evidence}"
        if not self.ok:  # nothing failed, yet a required step could not be run
            skipped = next(s for s in self.steps if s.status is Status.SKIP and s.required)
            return f"INCOMPLETE: {skipped.title}: {skipped.evidence}"
        where = (
            f"{self.target.get('serial')} at {self.target.get('host')}:{self.target.get('port')}"
        )
        about = self.target.get("model")
        firmware = self.target.get("firmware")
        what = f" ({about}, firmware {firmware})" if about and firmware else ""
        warned = len(self.warnings)
        tail = f"; {warned} warning{'s' if warned != 1 else ''}" if warned else ""
        return f"OK: {where}{what} connects and reports{tail}."

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def to_dict(self) -> dict[str, Any]:
        """For ``--json`` and bug reports; the access code is never in it."""
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "cause": self.cause,
            "cause_title": CAUSES.get(self.cause) if self.cause else None,
            "fix": self.fix or None,
            "target": self.target,
            "steps": [s.to_dict() for s in self.steps],
            "notes": self.notes,
            "mosquitto_sub": self.mosquitto_sub,
            "seconds": round(self.seconds, 3),
            "environment": _environment(),
        }


def _environment() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    def package(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    return {
        "bambu_lan": package("bambu-lan"),
        "paho_mqtt": package("paho-mqtt"),
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "platform": platform.platform(terse=True),
    }


# --- the mosquitto_sub equivalent -------------------------------------------------------------

MASK: Final = "********"


def mosquitto_sub_command(cfg: PrinterConfig) -> str:
    """The ``mosquitto_sub`` line that does what a client does, access code masked."""
    ca = "bambu_certs/bambu.cert"  # mosquitto_sub cannot pin: it needs a CA file
    if cfg.trust.ca_file is not None:
        ca = str(cfg.trust.ca_file)
    elif cfg.trust.ca_dir is not None:
        ca = str(cfg.trust.ca_dir / "bambu.cert")
    args = [
        "mosquitto_sub",
        "-h", cfg.host or "PRINTER_IP",
        "-p", str(cfg.port),
        "--cafile", ca,
        # Only skips the name check: the certificate names the serial, not the IP.
        "--insecure",
        "--tls-version", "tlsv1.2",
        "-u", USERNAME,
        "-P", MASK,
        "-t", report_topic(cfg.serial or "SERIAL"),
        "-i", f"bambu-lan-check-{uuid.uuid4().hex[:8]}",
        "-v",
    ]  # fmt: skip
    return shlex.join(args)


# --- raw TLS and MQTT, for probes that must be deliberately wrong ------------------------------


TlsOutcome = Literal["ok", "refused", "closed", "no_answer", "not_tls", "verify_failed", "error"]


@dataclass(slots=True)
class _TlsResult:
    outcome: TlsOutcome
    detail: str = ""
    version: str | None = None
    cipher: tuple[str, str, int] | None = None
    der: bytes | None = None
    verify_message: str = ""


def _tls13_only_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _default_context() -> ssl.SSLContext:
    """What a client gets without pinning a version (identity is not the question here)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _classify_ssl_error(exc: BaseException) -> tuple[TlsOutcome, str]:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "verify_failed", exc.verify_message or str(exc)
    if isinstance(exc, TimeoutError):
        return "no_answer", "no answer (timed out)"
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return "closed", "the printer closed the connection during the handshake"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "closed", "the printer reset the connection during the handshake"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or str(exc)).upper()
        text = exc.reason or str(exc)
        if any(k in reason for k in ("WRONG_VERSION_NUMBER", "RECORD_LAYER", "PACKET_LENGTH")):
            return "not_tls", f"the answer is not TLS ({text})"
        if "ALERT" in reason or "UNSUPPORTED_PROTOCOL" in reason or "NO_PROTOCOLS" in reason:
            return "refused", f"refused with a TLS alert ({text})"
        return "error", text
    if isinstance(exc, OSError):
        return "error", exc.strerror or str(exc)
    return "error", str(exc)


def _tls_handshake(host: str, port: int, ctx: ssl.SSLContext, timeout: float) -> _TlsResult:
    """One TCP connection and one TLS handshake (blocking; run in a thread). No credentials."""
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        return _TlsResult("error", "TCP connect timed out")
    except OSError as exc:
        return _TlsResult("error", f"TCP connect failed: {exc.strerror or exc}")
    try:
        with ctx.wrap_socket(raw, server_hostname=None) as tls:
            return _TlsResult(
                "ok",
                version=tls.version(),
                cipher=tls.cipher(),
                der=tls.getpeercert(binary_form=True),
            )
    except Exception as exc:
        outcome, detail = _classify_ssl_error(exc)
        verify = exc.verify_message if isinstance(exc, ssl.SSLCertVerificationError) else ""
        return _TlsResult(outcome, detail, verify_message=verify or "")
    finally:
        raw.close()


class _ProbeError(Exception):
    """A quirk probe could not get as far as the question it asks."""


class _RawMqtt:
    """A minimal blocking MQTT 3.1.1 client over TLS 1.2 for the quirk probes: it sends exactly
    the bytes it is told to, so it can be wrong on purpose. The printer's certificate must be
    the one already checked (``expected_fingerprint``) before any credentials leave."""

    def __init__(self, host: str, port: int, expected_fingerprint: str, timeout: float) -> None:
        self.timeout = timeout
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            self.sock = tls12_context().wrap_socket(raw, server_hostname=None)
        except Exception:
            raw.close()
            raise
        der = self.sock.getpeercert(binary_form=True) or b""
        if fingerprint(der) != expected_fingerprint:
            self.close()
            raise _ProbeError("the certificate differs from the checked one; nothing was sent")
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_packet(self) -> tuple[int, bytes] | None:
        """(packet type, body) or None when the printer closed the connection."""
        try:
            header = self._read(1)
            if header is None:
                return None
            length, multiplier = 0, 1
            for _ in range(4):
                byte = self._read(1)
                if byte is None:
                    return None
                length += (byte[0] & 0x7F) * multiplier
                if not byte[0] & 0x80:
                    break
                multiplier *= 128
            body = self._read(length) if length else b""
            if body is None:
                return None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return None
        return header[0] >> 4, body

    def read_until(self, *types: int) -> tuple[int, bytes] | None:
        """The next packet of one of ``types`` (others, e.g. PUBLISH, skipped); None: closed."""
        while True:
            packet = self.read_packet()
            if packet is None or packet[0] in types:
                return packet

    def _read(self, count: int) -> bytes | None:
        while len(self._buffer) < count:
            chunk = self.sock.recv(max(4096, count))
            if not chunk:
                return None
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def close(self, *, disconnect: bool = False) -> None:
        with contextlib.suppress(OSError):
            if disconnect:
                self.sock.sendall(_DISCONNECT)  # frees the session slot at once (A1: ~4)
        with contextlib.suppress(OSError):
            self.sock.close()


_CONNACK, _SUBACK, _PINGRESP = 2, 9, 13
_PINGREQ: Final = b"\xc0\x00"
_DISCONNECT: Final = b"\xe0\x00"


def _mqtt_string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def _mqtt_packet(first_byte: int, body: bytes) -> bytes:
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([first_byte]) + bytes(encoded) + body


def _connect_packet(client_id: str, password: str, keepalive: int = 30) -> bytes:
    flags = 0x80 | 0x40 | 0x02  # user name, password, clean session
    body = _mqtt_string(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
    body += _mqtt_string(client_id.encode()) + _mqtt_string(USERNAME.encode())
    body += _mqtt_string(password.encode())
    return _mqtt_packet(0x10, body)


def _subscribe_packet(packet_id: int, topic_filter: str) -> bytes:
    return _mqtt_packet(
        0x82, struct.pack("!H", packet_id) + _mqtt_string(topic_filter.encode()) + b"\x00"
    )


# --- the diagnosis ---------------------------------------------------------------------------


class _Inbox:
    """Report payloads of the doctor's session, decoded, with waiting on a predicate."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.payloads = 0
        self.first_at: float | None = None
        self.stats = DecodeStats("doctor")
        self._changed = asyncio.Event()

    def add(self, payload: bytes) -> None:
        self.payloads += 1
        if self.first_at is None:
            self.first_at = time.monotonic()
        message = decode_payload(payload, self.stats)
        if message is not None:
            self.messages.append(message)
        self._changed.set()

    async def wait(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float,
        closed: asyncio.Future[str],
        *,
        start: int = 0,
    ) -> dict[str, Any] | None:
        """The first message from index ``start`` on that satisfies ``predicate``; None when
        none came within ``timeout`` or the connection closed."""
        seen = start
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    for message in self.messages[seen:]:
                        if predicate(message):
                            return message
                    seen = len(self.messages)
                    if closed.done():
                        return None
                    self._changed.clear()
                    changed = asyncio.ensure_future(self._changed.wait())
                    try:
                        await asyncio.wait((changed, closed), return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        changed.cancel()
        return None

    async def wait_any_payload(self, timeout: float, closed: asyncio.Future[str]) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.payloads == 0 and not closed.done():
                    self._changed.clear()
                    changed = asyncio.ensure_future(self._changed.wait())
                    try:
                        await asyncio.wait((changed, closed), return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        changed.cancel()
        return self.payloads > 0


def _optional(step_id: str) -> bool:
    """Steps that inform but never fail a diagnosis."""
    return step_id.startswith(("quirk.", "net.port_")) or step_id == "tls.tls13"


class _Blocked(Exception):
    """A required step failed: the rest of the plan is skipped."""


_LABEL_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")


def _valid_host_name(host: str) -> bool:
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_LABEL_RE.fullmatch(label) for label in labels)


class _Doctor:
    """One diagnosis: runs the phases in order and keeps the steps they record."""

    def __init__(
        self,
        cfg: PrinterConfig,
        *,
        check_control: bool,
        probe_quirks: bool,
        ports: Sequence[int],
        timeouts: DoctorTimeouts,
        on_step: Callable[[Step], None] | None,
    ) -> None:
        self.cfg = cfg
        self.check_control = check_control
        self.probe_quirks = probe_quirks
        self.extra_ports = [p for p in dict.fromkeys(ports) if p != cfg.port]
        self.t = timeouts
        self.on_step = on_step
        self.code = cfg.access_code.reveal()
        self.steps: dict[str, Step] = {}
        self.blocker: Step | None = None
        self.notes: list[str] = []
        self.target: dict[str, Any] = {
            "host": cfg.host,
            "port": cfg.port,
            "serial": cfg.serial,
            "name": cfg.name or None,
            "trust": cfg.trust.mode,
            "access_code": MASK if self.code else "",
        }
        self.addresses: list[str] = []
        self.peer: PeerCertificate | None = None
        self.tls13: _TlsResult | None = None
        self.plan = self._plan()

    # -- bookkeeping --

    def _plan(self) -> list[tuple[str, str]]:
        port = self.cfg.port
        plan = [
            ("input.host", "Printer address"),
            ("input.serial", "Serial number"),
            ("input.access_code", "Access code"),
            ("input.trust", "Trust settings"),
            ("net.tcp", f"TCP port {port}"),
        ]
        plan += [
            (f"net.port_{p}", f"{PORT_NAMES.get(p, 'Port')} (TCP {p})") for p in self.extra_ports
        ]
        plan += [
            ("tls.handshake", "TLS 1.2 handshake"),
            ("tls.tls13", "TLS 1.3"),
            ("tls.certificate", "Certificate"),
            ("tls.serial", "Certificate names the serial"),
        ]
        if self.cfg.trust.mode == "ca":
            plan.append(("tls.chain", "Certificate chain"))
        plan += [
            ("tls.pin", "Pinned fingerprint"),
            ("mqtt.connack", "MQTT login (CONNACK)"),
            ("mqtt.subscribe", "Subscribe to reports"),
            ("mqtt.first_report", "First report"),
            ("mqtt.full_report", "Full report (pushall)"),
            ("mqtt.version", "Model and firmware (get_version)"),
        ]
        if self.check_control:
            plan.append(("control.developer_mode", "Control (Developer Mode)"))
        if self.probe_quirks:
            plan += [
                ("quirk.early_subscribe", "Quirk: subscribe before CONNACK"),
                ("quirk.wildcard_subscribe", "Quirk: wildcard subscribe"),
                ("quirk.tls13", "Quirk: TLS 1.3"),
                ("quirk.default_tls", "Quirk: default TLS settings"),
                ("quirk.reused_client_id", "Quirk: reused client id"),
            ]
        return plan

    def _title(self, step_id: str) -> str:
        return dict(self.plan).get(step_id, step_id)

    def _safe(self, text: str) -> str:
        # A belt to the braces of never formatting the code: codes too short to be secret
        # would only mangle the text.
        return redact(text, self.code) if len(self.code) >= 4 else text

    def record(
        self,
        step_id: str,
        status: Status,
        evidence: str,
        *,
        cause: str | None = None,
        fix: str = "",
        required: bool = True,
        started: float | None = None,
        data: dict[str, Any] | None = None,
    ) -> Step:
        if status is Status.FAIL and required:
            assert cause in CAUSES, cause
        step = Step(
            id=step_id,
            title=self._title(step_id),
            status=status,
            evidence=self._safe(evidence),
            cause=cause if status is Status.FAIL else None,
            fix=self._safe(fix),
            required=required,
            seconds=time.monotonic() - started if started is not None else 0.0,
            data=data or {},
        )
        self.steps[step_id] = step
        if self.on_step is not None:
            self.on_step(step)
        return step

    def fail(self, step_id: str, evidence: str, cause: str, fix: str, **kw: Any) -> NoReturn:
        """Record a failed required step and stop the diagnosis there."""
        step = self.record(step_id, Status.FAIL, evidence, cause=cause, fix=fix, **kw)
        if self.blocker is None:
            self.blocker = step
        raise _Blocked

    def result(self, started: float) -> Diagnosis:
        steps: list[Step] = []
        for step_id, title in self.plan:
            step = self.steps.get(step_id)
            if step is None:
                reason = f"not run: {self.blocker.title} failed" if self.blocker else "not run"
                step = Step(
                    id=step_id,
                    title=title,
                    status=Status.SKIP,
                    evidence=reason,
                    required=not _optional(step_id),
                )
            steps.append(step)
        if self.cfg.trust.mode != "ca":
            self.notes.append(
                "mosquitto_sub cannot pin a fingerprint: give it the CA file (Bambu's "
                "bambu_certs/bambu.cert for a real printer, ca.pem for the simulator)."
            )
        if not self.check_control and self.blocker is None:
            self.notes.append(
                "Control was not checked: add --check-control to learn whether Developer Mode "
                "is on (it sends one harmless command)."
            )
        return Diagnosis(
            target=self.target,
            steps=steps,
            notes=[self._safe(n) for n in self.notes],
            mosquitto_sub=mosquitto_sub_command(self.cfg),
            seconds=time.monotonic() - started,
        )

    # -- the walk --

    async def run(self) -> Diagnosis:
        started = time.monotonic()
        with contextlib.suppress(_Blocked):
            await self.check_input()
            await self.check_network()
            await self.check_tls()
            await self.check_mqtt()
            if self.probe_quirks:
                await self.check_quirks()
        return self.result(started)

    # 1. input

    async def check_input(self) -> None:
        failed: list[Step] = []
        for check in (self._input_host, self._input_serial, self._input_code, self._input_trust):
            step = await check()
            if step.failed:
                failed.append(step)
        if failed:
            self.blocker = failed[0]
            raise _Blocked

    async def _input_host(self) -> Step:
        started = time.monotonic()
        host, port = self.cfg.host.strip(), self.cfg.port
        fix_where = "the printer shows its IP address in Settings > WLAN (A1) or Network (P1/X1)"
        if not host:
            return self.record(
                "input.host", Status.FAIL, "no address given", cause="host_missing",
                fix=f"pass --host IP or set BAMBU_HOST; {fix_where}", started=started,
            )  # fmt: skip
        if not 0 < port < 65536:
            return self.record(
                "input.host", Status.FAIL, f"port {port} is out of range", cause="port_invalid",
                fix="leave --port out: printers listen on 8883", started=started,
            )  # fmt: skip
        if "://" in host or host.count(":") == 1 or "/" in host or " " in host:
            return self.record(
                "input.host", Status.FAIL, f"{host!r} is not a plain IP address or host name",
                cause="host_invalid",
                fix="give the address alone, e.g. --host 192.168.1.50 (the port goes in --port)",
                started=started,
            )  # fmt: skip
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            self.addresses = [str(address)]
            note = f"IPv{address.version}"
            if address.is_loopback:
                note += ", loopback (a simulator on this machine?)"
            return self.record(
                "input.host", Status.PASS, f"{host} ({note})", started=started,
                data={"addresses": self.addresses},
            )  # fmt: skip
        if re.fullmatch(r"[0-9.]+", host) or not _valid_host_name(host):
            return self.record(
                "input.host", Status.FAIL, f"{host!r} is not a valid IP address or host name",
                cause="host_invalid", fix=f"check the address: {fix_where}", started=started,
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.t.resolve):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (TimeoutError, OSError) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
            return self.record(
                "input.host", Status.FAIL, f"the host name {host!r} does not resolve ({why})",
                cause="host_unknown",
                fix=f"use the printer's IP address instead of a name; {fix_where}",
                started=started,
            )  # fmt: skip
        self.addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        return self.record(
            "input.host", Status.PASS, f"{host} resolves to {', '.join(self.addresses)}",
            started=started, data={"addresses": self.addresses},
        )  # fmt: skip

    async def _input_serial(self) -> Step:
        serial = self.cfg.serial
        problem = serial_problem(serial)
        if problem:
            return self.record(
                "input.serial", Status.FAIL, problem, cause="serial_invalid",
                fix="copy the serial from the printer's screen (Settings > Device) or its "
                "label: 15 characters, digits and capital letters",
            )  # fmt: skip
        return self.record("input.serial", Status.PASS, f"{serial} (15 characters, upper case)")

    async def _input_code(self) -> Step:
        problem = access_code_problem(self.code)
        if problem:
            return self.record(
                "input.access_code", Status.FAIL, problem, cause="access_code_invalid",
                fix="read the access code on the printer's screen (A1: Settings > WLAN; P1/X1: "
                "Settings > Network, LAN-only mode) and pass --access-code or BAMBU_ACCESS_CODE",
            )  # fmt: skip
        return self.record("input.access_code", Status.PASS, "8 characters (not shown)")

    async def _input_trust(self) -> Step:
        trust = self.cfg.trust
        mode = trust.mode
        if mode == "insecure":
            return self.record(
                "input.trust", Status.WARN,
                "--insecure: the printer's identity is not checked; the access code goes to "
                "whoever answers at this address",
                fix="drop --insecure (the certificate is then pinned on first use) or pass "
                "--ca-file/--ca-dir", required=False,
            )  # fmt: skip
        if mode == "pin":
            path = trust.known_printers_path()
            return self.record(
                "input.trust", Status.PASS,
                f"no CA given: the certificate is pinned on first use in {path}",
            )  # fmt: skip
        try:
            files = trust.ca_files()
            load_ca_files(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), files)
        except ConfigError as exc:
            return self.record(
                "input.trust", Status.FAIL, str(exc), cause="trust_config",
                fix=exc.hint or "pass a PEM file with --ca-file, or a bambu_certs/ folder with "
                "--ca-dir; for the simulator, its ca.pem",
            )  # fmt: skip
        names = ", ".join(str(p) for p in files)
        return self.record("input.trust", Status.PASS, f"CA: {names}")

    # 2. network

    async def check_network(self) -> None:
        tcp = await self._tcp_step("net.tcp", self.cfg.port, required=True)
        for port in self.extra_ports:
            await self._tcp_step(f"net.port_{port}", port, required=False)
        if tcp.failed:
            self.blocker = tcp
            raise _Blocked

    async def _tcp_step(self, step_id: str, port: int, *, required: bool) -> Step:
        started = time.monotonic()
        host = self.cfg.host
        where = f"{host}:{port}"
        try:
            async with asyncio.timeout(self.t.tcp):
                _reader, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            evidence, cause = f"no answer from {where} within {self.t.tcp:g} s", "no_answer"
            fix = (
                "check the IP on the printer's screen (Settings > WLAN), that the printer is on "
                "and on the same network as this computer (not a guest Wi-Fi or another VLAN), "
                "and that no firewall drops the traffic"
            )
        except ConnectionRefusedError:
            evidence, cause = (
                f"{where} refused the connection (nothing listens there)",
                "port_closed",
            )
            fix = (
                "a device answers at this address but not on this port: turn on LAN-only mode "
                "on the printer (some firmware closes 8883 in cloud mode), check that the IP is "
                "the printer's (Settings > WLAN) and that --port is 8883"
            )
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
                evidence = f"no route to {host} ({exc.strerror})"
                cause = "host_unreachable"
                fix = (
                    "this computer cannot reach that address: is the printer on and is the IP "
                    "right (Settings > WLAN)? Same network, no VPN in the way?"
                )
            else:
                evidence, cause = (
                    f"cannot connect to {where}: {exc.strerror or exc}",
                    "network_error",
                )
                fix = "check the address and this computer's network connection"
        else:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return self.record(
                step_id, Status.PASS, f"{where} accepts TCP connections",
                required=required, started=started,
            )  # fmt: skip
        if not required:
            return self.record(
                step_id, Status.WARN, evidence, required=False, started=started,
                fix="only needed for files (FTPS) or the camera; MQTT does not use it",
            )  # fmt: skip
        return self.record(step_id, Status.FAIL, evidence, cause=cause, fix=fix, started=started)

    # 3. TLS

    async def check_tls(self) -> None:
        cfg, t = self.cfg, self.t
        started = time.monotonic()
        hs = await asyncio.to_thread(_tls_handshake, cfg.host, cfg.port, tls12_context(), t.tls)
        if hs.outcome != "ok" or hs.der is None:
            cause, fix = {
                "no_answer": (
                    "tls_no_answer",
                    "the port accepts TCP but does not answer TLS: is this a Bambu printer's "
                    "MQTT port (8883)? A printer that is overloaded or starting up may do "
                    "this too: wait a minute, restart it if it persists",
                ),
                "not_tls": (
                    "not_tls",
                    "another service answers on this port: printers speak MQTT over TLS on "
                    "8883 (check --port and the IP)",
                ),
            }.get(
                hs.outcome,
                (
                    "tls_refused",
                    "the printer speaks TLS 1.2 with AES-GCM suites; check that the IP is the "
                    "printer's, and that this system's OpenSSL allows TLS 1.2 and "
                    "AES256-GCM-SHA384 (some hardened builds drop them)",
                ),
            )
            self.fail(
                "tls.handshake", f"TLS 1.2 with {cfg.host}:{cfg.port}: {hs.detail}",
                cause, fix, started=started, data={"outcome": hs.outcome},
            )  # fmt: skip
        assert hs.der is not None
        cipher = hs.cipher[0] if hs.cipher else "?"
        self.record(
            "tls.handshake", Status.PASS, f"{hs.version}, cipher {cipher}", started=started,
            data={"version": hs.version, "cipher": cipher},
        )  # fmt: skip
        self.peer = peer = PeerCertificate.from_der(hs.der)

        await self._tls13_step()
        self._certificate_step(peer)
        self._serial_step(peer)
        if cfg.trust.mode == "ca":
            await self._chain_step()
        self._pin_step(peer)

    async def _tls13_step(self) -> None:
        started = time.monotonic()
        if not ssl.HAS_TLSv1_3:
            self.record(
                "tls.tls13", Status.SKIP, "this system's OpenSSL has no TLS 1.3", required=False
            )
            return
        cfg = self.cfg
        self.tls13 = r = await asyncio.to_thread(
            _tls_handshake, cfg.host, cfg.port, _tls13_only_context(), self.t.tls13
        )
        pin = "clients must pin TLS 1.2 (bambu-lan does)"
        if r.outcome in ("refused", "closed"):
            evidence = f"refused ({r.detail}): the printer accepts only TLS 1.2; {pin}"
            behaviour = "refused"
        elif r.outcome == "no_answer":
            evidence = (
                f"no answer within {self.t.tls13:g} s: the printer never answers a TLS 1.3 "
                f"ClientHello, so a client offering 1.3 hangs; {pin}"
            )
            behaviour = "no answer"
        elif r.outcome == "ok":
            evidence = f"accepted ({r.version}); bambu-lan still pins TLS 1.2, as printers need"
            behaviour = "accepted"
        else:
            evidence, behaviour = f"inconclusive: {r.detail}", "inconclusive"
        status = Status.WARN if behaviour == "inconclusive" else Status.PASS
        self.record(
            "tls.tls13", status, evidence, required=False, started=started,
            data={"behaviour": behaviour},
        )  # fmt: skip

    def _certificate_step(self, peer: PeerCertificate) -> None:
        now = datetime.now(UTC)
        evidence = (
            f"CN={peer.subject_cn or '(none)'}, issuer CN={peer.issuer_cn or '(none)'}, "
            f"valid {peer.not_before:%Y-%m-%d} to {peer.not_after:%Y-%m-%d}, "
            f"X.509 v{peer.version}, {pretty_fingerprint(peer.fingerprint)}"
        )
        data = {
            "subject_cn": peer.subject_cn,
            "issuer_cn": peer.issuer_cn,
            "not_before": peer.not_before.isoformat(),
            "not_after": peer.not_after.isoformat(),
            "version": peer.version,
            "fingerprint_sha256": peer.fingerprint,
        }
        if not peer.not_before <= now <= peer.not_after:
            when = "expired" if now > peer.not_after else "not valid yet"
            self.record(
                "tls.certificate", Status.WARN, f"{evidence}; {when} by this computer's clock",
                fix="check this computer's date and time; with a CA file, OpenSSL refuses "
                "certificates outside their validity", required=False, data=data,
            )  # fmt: skip
            return
        self.record("tls.certificate", Status.PASS, evidence, data=data)

    def _serial_step(self, peer: PeerCertificate) -> None:
        serial, cn = self.cfg.serial, peer.subject_cn
        if cn == serial:
            self.record("tls.serial", Status.PASS, f"CN {cn} is the configured serial")
            return
        host = self.cfg.host
        if serial_problem(cn):
            evidence = (
                f"the device at {host} presents CN={cn or '(none)'}, which is not a Bambu "
                f"serial: this is probably not a Bambu printer"
            )
        else:
            evidence = f"the printer at {host} is {cn}, not {serial}"
        self.fail(
            "tls.serial", evidence, "serial_mismatch",
            "either the IP belongs to another printer or the serial is mistyped: check both on "
            "the printer's screen (Settings > Device for the serial, Settings > WLAN for the "
            "IP). No credentials were sent.",
            data={"presented": cn, "configured": serial},
        )  # fmt: skip

    async def _chain_step(self) -> None:
        started = time.monotonic()
        cfg = self.cfg
        files = cfg.trust.ca_files()
        names = ", ".join(str(p) for p in files)
        r = await asyncio.to_thread(
            _tls_handshake, cfg.host, cfg.port, tls12_context(files), self.t.tls
        )
        if r.outcome == "ok":
            self.record("tls.chain", Status.PASS, f"verifies against {names}", started=started)
            return
        if r.outcome == "verify_failed":
            self.fail(
                "tls.chain", f"not signed by {names}: {r.verify_message or r.detail}",
                "untrusted_certificate",
                "for a real printer use Bambu's CA files (bambu_certs/: bambu.cert and the "
                "newer bambu_*.cert); for the simulator its ca.pem; if those are right, "
                "something else answers at this address. No credentials were sent.",
                started=started,
            )  # fmt: skip
        self.fail(
            "tls.chain", f"second handshake failed: {r.detail}", "tls_refused",
            "run the doctor again; if it persists the printer may be overloaded",
            started=started,
        )  # fmt: skip

    def _pin_step(self, peer: PeerCertificate) -> None:
        trust = self.cfg.trust
        path = trust.known_printers_path()
        data: dict[str, Any] = {"file": str(path), "fingerprint_sha256": peer.fingerprint}
        now = pretty_fingerprint(peer.fingerprint)
        try:
            pinned = KnownPrinters(path).get(self.cfg.serial)
        except ConfigError as exc:
            self.record(
                "tls.pin", Status.WARN, str(exc), fix=exc.hint or "check the file's permissions",
                required=False, data=data,
            )  # fmt: skip
            return
        data["pinned"] = pinned
        if trust.mode == "insecure":
            self.record(
                "tls.pin", Status.WARN, "--insecure: no identity check at all",
                fix="drop --insecure", required=False, data=data,
            )  # fmt: skip
            return
        if pinned is None:
            data["status"] = "not pinned"
            if trust.mode == "ca":
                evidence = f"not pinned (not needed: trusted through the CA); now {now}"
            else:
                evidence = (
                    f"not pinned yet: the first connection of bambu-lan will pin {now} in "
                    f"{path} (the doctor pins nothing)"
                )
            self.record("tls.pin", Status.PASS, evidence, data=data)
            return
        if pinned == peer.fingerprint:
            data["status"] = "matching"
            self.record("tls.pin", Status.PASS, f"pinned and matching ({now})", data=data)
            return
        data["status"] = "changed"
        evidence = (
            f"changed since pinning: the printer presents {now}, {path} has "
            f"{pretty_fingerprint(pinned)}"
        )
        fix = (
            "if the printer was reset, repaired or replaced, forget the old pin with "
            f"`bambu-lan trust forget {self.cfg.serial}` (or delete its line in {path}) and "
            "connect again; otherwise another device answers at this address: check the IP"
        )
        if trust.mode == "ca":
            # The library trusts the CA here and ignores pins: worth knowing, not a failure.
            self.record(
                "tls.pin", Status.WARN, evidence + " (ignored: trusted through the CA)",
                fix=fix, required=False, data=data,
            )  # fmt: skip
            return
        self.fail("tls.pin", evidence, "certificate_changed", fix, data=data)

    # 4. MQTT (and 5. control), through the library's own connection code

    def _link_config(self, pin_dir: Path) -> PrinterConfig:
        """The config for the doctor's session: like the user's, but pinning nothing.

        In pin mode the library would pin the certificate on first use; the doctor trusts
        exactly the certificate it has just checked, through a throw-away pin file."""
        cfg = self.cfg
        if cfg.trust.mode != "pin":
            return cfg
        assert self.peer is not None
        pins = pin_dir / "known_printers"
        KnownPrinters(pins).pin(cfg.serial, self.peer.fingerprint)
        return dataclasses.replace(cfg, trust=TrustConfig(known_printers=pins))

    async def check_mqtt(self) -> None:
        with tempfile.TemporaryDirectory(prefix="bambu-lan-doctor-") as pin_dir:
            await self._mqtt_session(self._link_config(Path(pin_dir)))

    async def _mqtt_session(self, cfg: PrinterConfig) -> None:
        t = self.t
        inbox = _Inbox()
        options = SessionOptions(
            connect_timeout=t.tcp + t.tls, connack_timeout=t.connack, subscribe_timeout=t.subscribe
        )
        client_id = f"bambu-lan-doctor-{uuid.uuid4().hex[:12]}"
        link = _Link(cfg, client_id, options, inbox.add)
        where = f"{cfg.host}:{cfg.port}"
        started = time.monotonic()
        opened = False
        try:
            try:
                await link.open()
            except AuthError:
                self.fail(
                    "mqtt.connack", "CONNACK 5 (not authorized): the printer refused the access "
                    "code", "wrong_access_code",
                    "re-read the access code on the printer's screen (A1: Settings > WLAN; "
                    "P1/X1: Settings > Network) and type it exactly; it changes whenever "
                    "LAN-only mode or Developer Mode is toggled",
                    started=started,
                )  # fmt: skip
            except ServerUnavailable:
                self.fail(
                    "mqtt.connack", "CONNACK 3 (server unavailable)", "printer_starting",
                    "the printer is still starting up (its broker refuses sessions for ~15-30 s "
                    "after boot): wait 30 seconds and run the doctor again",
                    started=started,
                )  # fmt: skip
            except ClosedBeforeConnack:
                self.fail(
                    "mqtt.connack", f"{where} accepted TLS and CONNECT, then closed the "
                    "connection without a CONNACK (paho: code 7)", "session_limit",
                    "the printer already has as many MQTT sessions as it allows (about 4 on "
                    "A1/P1; sessions of clients that vanished linger for hours): close Bambu "
                    "Studio, Bambu Handy, Home Assistant, OctoPrint or other tools connected to "
                    "it, or restart the printer to clear stale sessions",
                    started=started,
                )  # fmt: skip
            except TrustError as exc:
                self.fail(
                    "mqtt.connack", f"{exc}", "trust_failed",
                    exc.hint or "another device may answer at this address: check the IP",
                    started=started,
                )  # fmt: skip
            except ConnectError as exc:
                if link.connack.done():  # a refusal with another code
                    self.fail(
                        "mqtt.connack", str(exc), "connack_refused",
                        "an unexpected MQTT refusal: restart the printer; if it persists, "
                        "report it with `bambu-lan doctor --json`", started=started,
                    )  # fmt: skip
                if link.closed.done() and link.closed.result() == "aborted":
                    # open() gave up waiting: TLS and CONNECT went through, no CONNACK came.
                    self.fail(
                        "mqtt.connack", f"no CONNACK within {t.connack:g} s after CONNECT",
                        "no_connack",
                        "the printer accepted the connection but its MQTT server does not "
                        "answer: it may be overloaded by other clients or still starting; "
                        "wait a minute and retry (a longer --timeout helps on a cold A1), and "
                        "restart the printer if it persists", started=started,
                    )  # fmt: skip
                self.fail(
                    "mqtt.connack", f"{exc}", "connect_failed",
                    exc.hint or "run the doctor again; the earlier steps passed",
                    started=started,
                )  # fmt: skip
            opened = True
            connected_at = time.monotonic()
            self.record(
                "mqtt.connack", Status.PASS,
                f"CONNACK 0 (accepted) after {connected_at - started:.2f} s; client id "
                f"{client_id}", started=started,
            )  # fmt: skip

            started = time.monotonic()
            topic = report_topic(cfg.serial)
            try:
                await link.subscribe()
            except ConnectError as exc:
                self.fail(
                    "mqtt.subscribe", f"{topic}: {exc}", "subscribe_refused",
                    "the printer dropped a subscription to its own report topic: check the "
                    "serial (upper case, exactly as on the printer's screen)", started=started,
                )  # fmt: skip
            self.record("mqtt.subscribe", Status.PASS, f"SUBACK for {topic}", started=started)

            await self._reports(link, inbox, connected_at)
        finally:
            if opened:
                await link.close()  # DISCONNECT: frees the session slot at once
            else:
                link.abort()  # nothing to say goodbye to (and no 2 s wait for it)

    def _publish(self, link: _Link, command: Command, seq: SequenceIds) -> str:
        sequence_id = seq.next()
        link.publish(orjson.dumps(command.payload(sequence_id)), command.qos)
        return sequence_id

    async def _reports(self, link: _Link, inbox: _Inbox, connected_at: float) -> None:
        t = self.t
        seq = SequenceIds()
        dropped = (
            "the printer closed the connection",
            "connection_dropped",
            "the printer dropped the session after subscribing: another client with the same "
            "id, a reboot, or an unstable Wi-Fi link; run the doctor again",
        )
        # Design rule 5: get_version and one pushall right after subscribing.
        started = time.monotonic()
        version_ids: list[str] = []
        try:
            version_ids.append(self._publish(link, cmd.get_version(), seq))
            self._publish(link, cmd.pushall(), seq)
        except NotConnected:
            self.fail("mqtt.first_report", dropped[0], dropped[1], dropped[2], started=started)
        got_data = await inbox.wait_any_payload(t.first_report, link.closed)
        if not got_data and link.closed.done():
            self.fail("mqtt.first_report", dropped[0], dropped[1], dropped[2], started=started)
        if not got_data:
            # What the library's watchdog does for a silent printer: pushing.start + pushall.
            # get_version again too: its first reply may have been lost in the silence.
            with contextlib.suppress(NotConnected):
                self._publish(link, cmd.start_pushing(), seq)
                self._publish(link, cmd.pushall(), seq)
                version_ids.append(self._publish(link, cmd.get_version(), seq))
            if not await inbox.wait_any_payload(t.first_report, link.closed):
                self.fail(
                    "mqtt.first_report",
                    f"the session is open but nothing came in {2 * t.first_report:g} s, not "
                    "even after pushing.start and pushall", "silent_printer",
                    "the printer accepts the connection but sends no data: restart it (power "
                    "off and on). If it keeps happening, update its firmware (P1 01.04.00.00 "
                    "had this bug) and connect fewer clients at once",
                    started=started,
                )  # fmt: skip
            assert inbox.first_at is not None
            self.record(
                "mqtt.first_report", Status.WARN,
                f"silent for {t.first_report:g} s; data came only after pushing.start",
                fix="bambu-lan's watchdog sends pushing.start after a silence, so this "
                "recovers on its own; restart the printer if it happens often",
                required=False, started=started,
            )  # fmt: skip
        else:
            assert inbox.first_at is not None
            bad = inbox.stats.total
            extra = f"; {bad} payload(s) were not JSON objects" if bad else ""
            self.record(
                "mqtt.first_report", Status.PASS,
                f"first message {inbox.first_at - started:.2f} s after subscribing{extra}",
                started=started,
            )  # fmt: skip

        started = time.monotonic()
        full = await inbox.wait(_is_full_report, t.reply, link.closed)
        if full is None:
            self.fail(
                "mqtt.full_report",
                f"reports come, but no full report within {t.reply:g} s of pushall",
                "no_full_report",
                "the printer ignores pushall (some firmware rate-limits it): wait a few "
                "minutes and run the doctor again; restart the printer if it persists",
                started=started,
            )  # fmt: skip
        assert full is not None
        print_obj: dict[str, Any] = full["print"]
        self.record(
            "mqtt.full_report", Status.PASS, _describe_full(print_obj), started=started,
            data={"keys": len(print_obj), "gcode_state": print_obj.get("gcode_state")},
        )  # fmt: skip
        self._dev_mode_hints(print_obj)

        started = time.monotonic()
        version = await inbox.wait(
            lambda m: any(
                _reply_body(m, "info", "get_version", i) is not None for i in version_ids
            ),
            t.reply,
            link.closed,
        )
        if version is None:
            self.record(
                "mqtt.version", Status.WARN, f"no get_version reply within {t.reply:g} s",
                fix="not needed to read the state; the model and firmware stay unknown",
                required=False, started=started,
            )  # fmt: skip
        else:
            info = info_from_version_reply(version["info"], self.cfg.serial)
            self.target["model"] = info.model
            self.target["firmware"] = info.firmware
            self.record(
                "mqtt.version", Status.PASS,
                f"{info.model} ({info.model_code or '?'}), firmware {info.firmware or '?'}",
                started=started,
                data={"model": info.model, "model_code": info.model_code,
                      "firmware": info.firmware},
            )  # fmt: skip

        if self.check_control:
            await self._control(link, inbox, seq, print_obj, connected_at)

    def _dev_mode_hints(self, print_obj: Mapping[str, Any]) -> None:
        fun = print_obj.get("fun")
        if isinstance(fun, str):
            try:
                bits = int(fun, 16)
            except ValueError:
                bits = None
            if bits is not None:
                state = "off" if bits & _FUN_SIGNATURE_REQUIRED else "on"
                self.notes.append(f"print.fun = {fun}: Developer Mode looks {state}.")
        if _has_dev_mode_hms(print_obj):
            self.notes.append(
                "HMS 0500_0500_0001_0007 is active: the printer has refused an unsigned "
                "command (Developer Mode off)."
            )

    async def _control(
        self,
        link: _Link,
        inbox: _Inbox,
        seq: SequenceIds,
        print_obj: Mapping[str, Any],
        connected_at: float,
    ) -> None:
        step_id = "control.developer_mode"
        level = print_obj.get("spd_lvl")
        if isinstance(level, bool) or not isinstance(level, int) or level not in (1, 2, 3, 4):
            self.record(
                step_id, Status.SKIP,
                "the full report has no speed level, so there is no command known to change "
                "nothing",
            )  # fmt: skip
            return
        settle = self.t.control_settle - (time.monotonic() - connected_at)
        if settle > 0:
            await asyncio.sleep(settle)  # a pause for the printer's sake (protocol.md §10.5)
        started = time.monotonic()
        mark = len(inbox.messages)
        # print_speed with the current level: a signed-class command with no effect.
        try:
            probe_id = self._publish(link, cmd.print_speed(level), seq)
        except NotConnected:
            self.fail(
                step_id, "the printer closed the connection", "connection_dropped",
                "run the doctor again", started=started,
            )  # fmt: skip
        answer = await inbox.wait(
            lambda m: (
                _reply_body(m, "print", "print_speed", probe_id, loose=True) is not None
                or _has_dev_mode_hms(m.get("print"))
            ),
            self.t.reply,
            link.closed,
            start=mark,
        )
        probe = f"print_speed {level} (the current speed: no effect)"
        dev_fix = (
            "reading status works, but control commands need Developer Mode: on the printer's "
            "screen turn on LAN-only mode, then Developer Mode (next to it in the network "
            "settings), then re-read the access code, which changes when the mode is toggled. "
            "The probe left HMS 0500_0500_0001_0007 on the screen; dismiss it"
        )
        if answer is None:
            self.fail(
                step_id, f"no reply to {probe} within {self.t.reply:g} s", "control_no_reply",
                "the printer neither accepted nor refused the command: run the doctor again; "
                "if it persists, try `bambu-lan send speed N` and watch the printer's screen",
                started=started,
            )  # fmt: skip
        assert answer is not None
        body = _reply_body(answer, "print", "print_speed", probe_id, loose=True)
        if body is None:  # only the HMS showed up
            self.fail(
                step_id, f"{probe}: HMS 0500_0500_0001_0007 (command verification failed)",
                "developer_mode_off", dev_fix, started=started,
            )  # fmt: skip
        assert body is not None
        result = str(body.get("result", "")).lower()
        reason = str(body.get("reason", "") or "")
        err_code = body.get("err_code")
        if result in ("success", "ok"):
            self.record(
                step_id, Status.PASS, f"{probe} accepted: control commands work "
                "(Developer Mode on, or not needed by this firmware)", started=started,
            )  # fmt: skip
            return
        code = f", err_code {err_code}" if err_code is not None else ""
        if err_code in (ERR_VERIFY_FAILED, ERR_VERIFY_MALFORMED) or (
            VERIFY_FAILED_REASON in reason.lower()
        ):
            self.fail(
                step_id, f"{probe} refused: {reason!r}{code}", "developer_mode_off", dev_fix,
                started=started,
            )  # fmt: skip
        self.fail(
            step_id, f"{probe} refused: {reason or 'no reason given'}{code}", "control_refused",
            "the printer refused a harmless command for another reason than Developer Mode; "
            "report it with `bambu-lan doctor --check-control --json`", started=started,
        )  # fmt: skip

    # 6. quirks

    async def check_quirks(self) -> None:
        assert self.peer is not None
        fingerprint = self.peer.fingerprint
        cfg, t = self.cfg, self.t
        probes: list[tuple[str, Callable[[], tuple[str, str]]]] = [
            ("quirk.early_subscribe", lambda: _probe_early_subscribe(cfg, fingerprint, t.quirk)),
            ("quirk.wildcard_subscribe", lambda: _probe_wildcard(cfg, fingerprint, t.quirk)),
        ]
        for step_id, probe in probes:
            await self._quirk(step_id, probe)
        self._quirk_tls13()
        await self._quirk(
            "quirk.default_tls", lambda: _probe_default_tls(cfg.host, cfg.port, t.quirk)
        )
        await self._quirk(
            "quirk.reused_client_id", lambda: _probe_reused_id(cfg, fingerprint, t.quirk)
        )

    async def _quirk(self, step_id: str, probe: Callable[[], tuple[str, str]]) -> None:
        started = time.monotonic()
        try:
            behaviour, evidence = await asyncio.to_thread(probe)
        except (_ProbeError, OSError, ssl.SSLError) as exc:
            behaviour, evidence = "inconclusive", f"could not probe: {exc}"
        status = Status.WARN if behaviour == "inconclusive" else Status.PASS
        self.record(
            step_id, status, f"{behaviour}: {evidence}", required=False, started=started,
            data={"behaviour": behaviour},
        )  # fmt: skip

    def _quirk_tls13(self) -> None:
        r = self.tls13
        if r is None:
            self.record("quirk.tls13", Status.SKIP, "not probed", required=False)
            return
        behaviour, evidence = {
            "ok": ("tolerated", f"a TLS 1.3-only client connects ({r.version})"),
            "refused": ("dropped", f"a TLS 1.3-only client is refused ({r.detail})"),
            "closed": ("dropped", f"a TLS 1.3-only client is refused ({r.detail})"),
            "no_answer": ("dropped", "a TLS 1.3-only client gets no answer and hangs"),
        }.get(r.outcome, ("inconclusive", r.detail))
        status = Status.WARN if behaviour == "inconclusive" else Status.PASS
        self.record(
            "quirk.tls13", status, f"{behaviour}: {evidence} (seen in the TLS 1.3 step)",
            required=False, data={"behaviour": behaviour},
        )  # fmt: skip


# --- quirk probes (blocking; run in threads) -------------------------------------------------


def _connack_code(packet: tuple[int, bytes] | None) -> int | None:
    if packet is None or packet[0] != _CONNACK or len(packet[1]) < 2:
        return None
    return packet[1][1]


def _open_session(cfg: PrinterConfig, fingerprint: str, timeout: float, client_id: str) -> _RawMqtt:
    """A raw session that reached CONNACK 0, or _ProbeError."""
    conn = _RawMqtt(cfg.host, cfg.port, fingerprint, timeout)
    try:
        conn.send(_connect_packet(client_id, cfg.access_code.reveal()))
        code = _connack_code(conn.read_until(_CONNACK))
    except Exception:
        conn.close()
        raise
    if code != 0:
        conn.close()
        what = "closed the connection" if code is None else f"answered CONNACK {code}"
        raise _ProbeError(f"a plain session could not be opened: the printer {what}")
    return conn


def _probe_early_subscribe(cfg: PrinterConfig, fingerprint: str, timeout: float) -> tuple[str, str]:
    conn = _RawMqtt(cfg.host, cfg.port, fingerprint, timeout)
    try:
        client_id = f"bambu-lan-quirk-{uuid.uuid4().hex[:8]}"
        # CONNECT and SUBSCRIBE in one write: the SUBSCRIBE arrives before the CONNACK.
        conn.send(
            _connect_packet(client_id, cfg.access_code.reveal())
            + _subscribe_packet(1, report_topic(cfg.serial))
        )
        first = conn.read_until(_CONNACK, _SUBACK)
        if first is None:
            return "dropped", "closed before CONNACK: clients must subscribe only after CONNACK"
        code = _connack_code(first)
        if code not in (None, 0):
            return "inconclusive", f"CONNACK {code}"
        suback = conn.read_until(_SUBACK)
        if suback is None:
            return "dropped", "closed after CONNACK without SUBACK: subscribe only after CONNACK"
        return "tolerated", "CONNACK, then SUBACK for the early subscription"
    except TimeoutError:
        return "inconclusive", f"no answer within {timeout:g} s"
    finally:
        conn.close(disconnect=True)


def _probe_wildcard(cfg: PrinterConfig, fingerprint: str, timeout: float) -> tuple[str, str]:
    conn = _open_session(cfg, fingerprint, timeout, f"bambu-lan-quirk-{uuid.uuid4().hex[:8]}")
    try:
        conn.send(_subscribe_packet(2, "device/+/report"))
        suback = conn.read_until(_SUBACK)
        if suback is None:
            return "dropped", "device/+/report closes the connection: never subscribe to wildcards"
        codes = suback[1][2:]
        if codes and codes[0] == 0x80:
            return "refused", "SUBACK 0x80 for device/+/report; the connection stays"
        return "tolerated", "SUBACK granted for device/+/report"
    except TimeoutError:
        return "inconclusive", f"no SUBACK within {timeout:g} s"
    finally:
        conn.close(disconnect=True)


def _probe_default_tls(host: str, port: int, timeout: float) -> tuple[str, str]:
    r = _tls_handshake(host, port, _default_context(), timeout)
    if r.outcome == "ok":
        return "tolerated", f"a client without a version pin negotiates {r.version}"
    if r.outcome == "no_answer":
        return "dropped", (
            f"a client without a version pin (offering TLS 1.3) gets no answer in {timeout:g} s "
            "and hangs: pin TLS 1.2"
        )
    if r.outcome in ("refused", "closed"):
        return "dropped", f"a client without a version pin is refused ({r.detail}): pin TLS 1.2"
    return "inconclusive", r.detail


def _probe_reused_id(cfg: PrinterConfig, fingerprint: str, timeout: float) -> tuple[str, str]:
    client_id = f"bambu-lan-quirk-{uuid.uuid4().hex[:8]}"
    older = _open_session(cfg, fingerprint, timeout, client_id)
    newer: _RawMqtt | None = None
    try:
        try:
            newer = _open_session(cfg, fingerprint, timeout, client_id)
        except _ProbeError as exc:
            return "dropped", f"a second session with the same id is refused ({exc})"
        # Is the older session still alive? A ping answers at once either way.
        try:
            older.send(_PINGREQ)
            pong = older.read_until(_PINGRESP)
        except OSError:  # reset, broken pipe, TLS EOF: the printer closed it
            pong = None
        if pong is None:
            return "dropped", (
                "the older session was closed when a newer one used its client id: two clients "
                "sharing an id kick each other off (repeated 'code 7'); use unique ids"
            )
        return "tolerated", "both sessions stay connected"
    except TimeoutError:
        return "inconclusive", f"no answer within {timeout:g} s"
    finally:
        if newer is not None:
            newer.close(disconnect=True)
        older.close(disconnect=True)


# --- report helpers ----------------------------------------------------------------------------


def _is_full_report(message: Mapping[str, Any]) -> bool:
    body = message.get("print")
    return isinstance(body, dict) and body.get("command") == "push_status" and is_full_report(body)


def _reply_body(
    message: Mapping[str, Any], cls: str, command: str, sequence_id: str, *, loose: bool = False
) -> Mapping[str, Any] | None:
    """The reply to our command in ``message``. ``loose``: also a reply without a
    sequence_id (an A1 answered print_speed so: protocol.md §3.6)."""
    body = message.get(cls)
    if not isinstance(body, dict) or body.get("command") == "push_status":
        return None
    if body.get("command") not in (command, None):
        return None
    if "sequence_id" in body:
        return body if str(body["sequence_id"]) == sequence_id else None
    return body if loose and body.get("command") == command and "result" in body else None


def _has_dev_mode_hms(print_obj: object) -> bool:
    if not isinstance(print_obj, dict):
        return False
    hms = print_obj.get("hms")
    if not isinstance(hms, list):
        return False
    return any(isinstance(e, dict) and (e.get("attr"), e.get("code")) == _DEV_MODE_HMS for e in hms)


def _describe_full(print_obj: Mapping[str, Any]) -> str:
    parts = [f"{len(print_obj)} fields"]
    state = print_obj.get("gcode_state")
    if state:
        parts.append(f"gcode_state {state}")
    for key, label in (("nozzle_temper", "nozzle"), ("bed_temper", "bed")):
        value = print_obj.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label} {value:.0f} °C")
    wifi = print_obj.get("wifi_signal")
    if wifi:
        parts.append(f"Wi-Fi {wifi}")
    msg = print_obj.get("msg")
    kind = "msg 0" if msg == 0 else "full push (no msg: X1-style)"
    return f"{kind}: " + ", ".join(parts)


# --- entry points ----------------------------------------------------------------------------


async def diagnose(
    cfg: PrinterConfig,
    *,
    check_control: bool = False,
    probe_quirks: bool = False,
    ports: Sequence[int] = (),
    timeouts: DoctorTimeouts | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> Diagnosis:
    """Diagnose the connection to one printer; never raises for a printer problem.

    ``cfg`` need not be valid (``PrinterConfig(...)`` without ``validate()``): invalid input
    is the first thing reported. ``ports``: other TCP ports to check as well (``EXTRA_PORTS``:
    FTPS and camera). ``check_control`` sends one harmless control command;
    ``probe_quirks`` opens several deliberately wrong sessions (it spends the printer's
    sessions: run it when nothing else is connected). ``on_step`` sees each step as it ends.
    """
    doctor = _Doctor(
        cfg,
        check_control=check_control,
        probe_quirks=probe_quirks,
        ports=ports,
        timeouts=timeouts or DoctorTimeouts(),
        on_step=on_step,
    )
    return await doctor.run()


def config_failure(exc: BambuError, cfg: PrinterConfig | None = None) -> Diagnosis:
    """A diagnosis for settings that could not even be put together (an unknown profile, an
    unreadable config file): one failed Input step."""
    from bambu_lan.config import Secret

    cfg = cfg or PrinterConfig(host="", serial="", access_code=Secret(""))
    step = Step(
        id="input.config",
        title="Settings",
        status=Status.FAIL,
        evidence=str(exc),
        cause="config_invalid",
        fix=exc.hint or "check the options, the BAMBU_* variables and the config file",
    )
    return Diagnosis(
        target={
            "host": cfg.host,
            "port": cfg.port,
            "serial": cfg.serial,
            "trust": None,
            "access_code": MASK if cfg.access_code else "",
        },
        steps=[step],
        notes=[],
        mosquitto_sub=mosquitto_sub_command(cfg),
    )
