"""The doctor's result model: steps, their status, the causes they name, the verdict.

A ``Diagnosis`` is plain data: ordered ``Step``s (each with evidence, and on failure one cause
id from ``CAUSES`` and one fix), a verdict line, notes, and the ``mosquitto_sub`` line that
does what the client does. ``to_dict()`` is the ``--json`` form; the access code is never in
it. ``DoctorTimeouts`` says how long each step may wait.
"""

from __future__ import annotations

import dataclasses
import enum
import platform
import shlex
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from bambu_lan.config import PrinterConfig, Secret
from bambu_lan.errors import BambuError
from bambu_lan.protocol.topics import USERNAME, report_topic

# Well-known services next to MQTT (protocol.md §1), for ``ports=``.
EXTRA_PORTS: Final = (990, 6000)
PORT_NAMES: Final = {990: "FTPS", 6000: "Camera", 322: "RTSPS camera", 8883: "MQTT"}


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
    "plain_mqtt": "Plain MQTT without TLS on this port",
    "tls_refused": "TLS 1.2 handshake refused",
    "serial_mismatch": "Wrong IP address or wrong serial",
    "untrusted_certificate": "Certificate not signed by the given CA",
    "certificate_dates": "Certificate outside its validity dates (a clock is wrong)",
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


def config_failure(exc: BambuError, cfg: PrinterConfig | None = None) -> Diagnosis:
    """A diagnosis for settings that could not even be put together (an unknown profile, an
    unreadable config file): one failed Input step."""
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
