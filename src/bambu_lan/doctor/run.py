"""The bookkeeping of one diagnosis: the plan of steps, recording each step, stopping at the
first required failure, and the ``Diagnosis`` at the end.

The steps themselves (``steps_input``, ``steps_network``, ``steps_mqtt``, ``steps_quirks``) are
functions of a ``DoctorRun``: they record through ``record`` and stop the walk with ``fail``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from bambu_lan.config import PrinterConfig, redact
from bambu_lan.doctor.probes import TlsResult
from bambu_lan.doctor.result import (
    CAUSES,
    MASK,
    PORT_NAMES,
    Diagnosis,
    DoctorTimeouts,
    Status,
    Step,
    mosquitto_sub_command,
)
from bambu_lan.trust import PeerCertificate


def _optional(step_id: str) -> bool:
    """Steps that inform but never fail a diagnosis."""
    return step_id.startswith(("quirk.", "net.port_")) or step_id == "tls.tls13"


class Blocked(Exception):
    """A required step failed: the rest of the plan is skipped."""


class DoctorRun:
    """One diagnosis in progress: the settings, the plan of steps, the steps recorded so far
    and what earlier steps found (addresses, the certificate) for later ones."""

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
        self.tls13: TlsResult | None = None
        self.plan = self._plan()

    def use_host(self, host: str) -> None:
        """The address as normalised by the input step (trimmed, without [brackets])."""
        self.cfg = dataclasses.replace(self.cfg, host=host)
        self.target["host"] = host

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
        raise Blocked

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
