"""Steps 4 and 5, MQTT and control, through the library's own connection code and printer
core: CONNACK (each refusal named), subscribe, the first report (a silent printer gets what the
library's watchdog sends), the full report, get_version, and with ``check_control`` one
harmless command that tells whether Developer Mode is on.

The doctor's session is one ``Link`` (a single attempt, no retries: a failure is the finding)
feeding one ``PrinterCore``: the core decodes and merges the reports, matches the replies and
sees the Developer Mode refusal, exactly as for ``Printer``. The doctor only waits and words
what the core found.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from bambu_lan.config import PrinterConfig
from bambu_lan.doctor.result import Status
from bambu_lan.doctor.run import DoctorRun
from bambu_lan.errors import (
    AuthError,
    ClosedBeforeConnack,
    ConnackTimeout,
    ConnectError,
    NotConnected,
    ServerUnavailable,
    TrustError,
)
from bambu_lan.protocol import commands as cmd
from bambu_lan.protocol.core import Outcome, Outgoing, Pending, PrinterCore
from bambu_lan.protocol.models import identify_model
from bambu_lan.protocol.topics import report_topic
from bambu_lan.session import Link, SessionOptions
from bambu_lan.trust import KnownPrinters, TrustConfig

# print.fun bit meaning "signatures required" on X1/H2/P2S (protocol.md §10.5).
_FUN_SIGNATURE_REQUIRED: Final = 0x20000000

_DROPPED: Final = (
    "the printer closed the connection",
    "connection_dropped",
    "the printer dropped the session after subscribing: another client with the same id, a "
    "reboot, or an unstable Wi-Fi link; run the doctor again",
)


class _Session:
    """The doctor's one connection: payloads go into ``core``; waiting on what it knows."""

    def __init__(self, cfg: PrinterConfig, options: SessionOptions) -> None:
        self.core = PrinterCore(cfg.serial, label=cfg.label)
        self.client_id = f"bambu-lan-doctor-{uuid.uuid4().hex[:12]}"
        self.link = Link(cfg, self.client_id, options, self._payload)
        self.payloads = 0
        self.first_at: float | None = None
        self._changed = asyncio.Event()

    def _payload(self, payload: bytes) -> None:
        now = time.monotonic()
        self.payloads += 1
        if self.first_at is None:
            self.first_at = now
        self.core.feed(payload, now)
        self._changed.set()

    def publish(self, messages: Sequence[Outgoing]) -> None:
        """Publish what the core asked for (NotConnected once the printer has hung up)."""
        for out in messages:
            self.link.publish(out.payload, out.qos)

    def request(self, command: cmd.Command) -> Pending:
        out, pending = self.core.request(command, time.monotonic())
        self.publish([out])
        return pending

    async def wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        """True once ``condition()`` holds; False after ``timeout`` or when the connection
        closed first."""
        closed = self.link.closed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not condition():
                    if closed.done():
                        return False
                    self._changed.clear()
                    changed = asyncio.ensure_future(self._changed.wait())
                    try:
                        await asyncio.wait((changed, closed), return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        changed.cancel()
                return True
        return condition()


def _link_config(run: DoctorRun, pin_dir: Path) -> PrinterConfig:
    """The config for the doctor's session: like the user's, but pinning nothing.

    In pin mode the library would pin the certificate on first use; the doctor trusts
    exactly the certificate it has just checked, through a throw-away pin file."""
    cfg = run.cfg
    if cfg.trust.mode != "pin":
        return cfg
    assert run.peer is not None
    pins = pin_dir / "known_printers"
    KnownPrinters(pins).pin(cfg.serial, run.peer.fingerprint)
    return dataclasses.replace(cfg, trust=TrustConfig(known_printers=pins))


async def check_mqtt(run: DoctorRun) -> None:
    with tempfile.TemporaryDirectory(prefix="bambu-lan-doctor-") as pin_dir:
        cfg = _link_config(run, Path(pin_dir))
        t = run.t
        options = SessionOptions(
            connect_timeout=t.tcp + t.tls, connack_timeout=t.connack, subscribe_timeout=t.subscribe
        )
        session = _Session(cfg, options)
        opened = False
        try:
            await _connack(run, session)
            opened = True
            connected_at = time.monotonic()
            await _subscribe(run, session)
            await _reports(run, session, connected_at=connected_at)
        finally:
            if opened:
                await session.link.close()  # DISCONNECT: frees the session slot at once
            else:
                session.link.abort()  # nothing to say goodbye to (and no 2 s wait for it)


async def _connack(run: DoctorRun, session: _Session) -> None:
    cfg, t = session.link.cfg, run.t
    where = f"{cfg.host}:{cfg.port}"
    started = time.monotonic()
    try:
        await session.link.open()
    except AuthError:
        run.fail(
            "mqtt.connack", "CONNACK 5 (not authorized): the printer refused the access code",
            "wrong_access_code",
            "re-read the access code on the printer's screen (A1: Settings > WLAN; P1/X1: "
            "Settings > Network) and type it exactly; it changes whenever LAN-only mode or "
            "Developer Mode is toggled",
            started=started,
        )  # fmt: skip
    except ServerUnavailable:
        run.fail(
            "mqtt.connack", "CONNACK 3 (server unavailable)", "printer_starting",
            "the printer is still starting up (its broker refuses sessions for ~15-30 s after "
            "boot): wait 30 seconds and run the doctor again",
            started=started,
        )  # fmt: skip
    except ClosedBeforeConnack:
        run.fail(
            "mqtt.connack", f"{where} accepted TLS and CONNECT, then closed the connection "
            "without a CONNACK (paho: code 7)", "session_limit",
            "the printer already has as many MQTT sessions as it allows (about 4 on A1/P1; "
            "sessions of clients that vanished linger for hours): close Bambu Studio, Bambu "
            "Handy, Home Assistant, OctoPrint or other tools connected to it, or restart the "
            "printer to clear stale sessions",
            started=started,
        )  # fmt: skip
    except ConnackTimeout:
        # TLS and CONNECT went through, no CONNACK came.
        run.fail(
            "mqtt.connack", f"no CONNACK within {t.connack:g} s after CONNECT", "no_connack",
            "the printer accepted the connection but its MQTT server does not answer: it may "
            "be overloaded by other clients or still starting; wait a minute and retry (a "
            "longer --timeout helps on a cold A1), and restart the printer if it persists",
            started=started,
        )  # fmt: skip
    except TrustError as exc:
        run.fail(
            "mqtt.connack", f"{exc}", "trust_failed",
            exc.hint or "another device may answer at this address: check the IP",
            started=started,
        )  # fmt: skip
    except ConnectError as exc:
        if session.link.connack.done():  # a refusal with another code
            run.fail(
                "mqtt.connack", str(exc), "connack_refused",
                "an unexpected MQTT refusal: restart the printer; if it persists, report it "
                "with `bambu-lan doctor --json`", started=started,
            )  # fmt: skip
        run.fail(
            "mqtt.connack", f"{exc}", "connect_failed",
            exc.hint or "run the doctor again; the earlier steps passed", started=started,
        )  # fmt: skip
    run.record(
        "mqtt.connack", Status.PASS,
        f"CONNACK 0 (accepted) after {time.monotonic() - started:.2f} s; client id "
        f"{session.client_id}", started=started,
    )  # fmt: skip


async def _subscribe(run: DoctorRun, session: _Session) -> None:
    started = time.monotonic()
    topic = report_topic(session.link.cfg.serial)
    try:
        await session.link.subscribe()
    except ConnectError as exc:
        run.fail(
            "mqtt.subscribe", f"{topic}: {exc}", "subscribe_refused",
            "the printer dropped a subscription to its own report topic: check the serial "
            "(upper case, exactly as on the printer's screen)", started=started,
        )  # fmt: skip
    run.record("mqtt.subscribe", Status.PASS, f"SUBACK for {topic}", started=started)


async def _reports(run: DoctorRun, session: _Session, *, connected_at: float) -> None:
    t, core = run.t, session.core
    # Design rule 5, as the core words it: get_version and one pushall after subscribing.
    started = time.monotonic()
    try:
        session.publish(core.connected(started).outgoing)
    except NotConnected:
        run.fail("mqtt.first_report", *_DROPPED, started=started)
    heard = await session.wait(lambda: session.payloads > 0, t.first_report)
    if not heard and session.link.closed.done():
        run.fail("mqtt.first_report", *_DROPPED, started=started)
    if not heard:
        # What the library's watchdog does for a silent printer (pushing.start + pushall),
        # and get_version again: its first reply may have been lost in the silence.
        with contextlib.suppress(NotConnected):
            session.publish(core.silence(time.monotonic()).outgoing)
            session.request(cmd.get_version())
        if not await session.wait(lambda: session.payloads > 0, t.first_report):
            run.fail(
                "mqtt.first_report",
                f"the session is open but nothing came in {2 * t.first_report:g} s, not even "
                "after pushing.start and pushall", "silent_printer",
                "the printer accepts the connection but sends no data: restart it (power off "
                "and on). If it keeps happening, update its firmware (P1 01.04.00.00 had this "
                "bug) and connect fewer clients at once",
                started=started,
            )  # fmt: skip
        run.record(
            "mqtt.first_report", Status.WARN,
            f"silent for {t.first_report:g} s; data came only after pushing.start",
            fix="bambu-lan's watchdog sends pushing.start after a silence, so this recovers "
            "on its own; restart the printer if it happens often",
            required=False, started=started,
        )  # fmt: skip
    else:
        assert session.first_at is not None
        bad = core.stats.total
        extra = f"; {bad} payload(s) were not JSON objects" if bad else ""
        run.record(
            "mqtt.first_report", Status.PASS,
            f"first message {session.first_at - started:.2f} s after subscribing{extra}",
            started=started,
        )  # fmt: skip

    started = time.monotonic()
    if not await session.wait(lambda: core.complete, t.reply):
        run.fail(
            "mqtt.full_report", f"reports come, but no full report within {t.reply:g} s of "
            "pushall", "no_full_report",
            "the printer ignores pushall (some firmware rate-limits it): wait a few minutes "
            "and run the doctor again; restart the printer if it persists",
            started=started,
        )  # fmt: skip
    report = dict(core.raw)
    run.record(
        "mqtt.full_report", Status.PASS, _describe_full(report, run.cfg.serial),
        started=started, data={"keys": len(report), "gcode_state": report.get("gcode_state")},
    )  # fmt: skip
    _dev_mode_hints(run, report, alert=core.developer_mode_alert())

    started = time.monotonic()
    info = core.info
    if info is None and await session.wait(lambda: core.info is not None, t.reply):
        info = core.info
    if info is None:
        run.record(
            "mqtt.version", Status.WARN, f"no get_version reply within {t.reply:g} s",
            fix="not needed to read the state; the model and firmware stay unknown",
            required=False, started=started,
        )  # fmt: skip
    else:
        run.target["model"] = info.model
        run.target["firmware"] = info.firmware
        run.record(
            "mqtt.version", Status.PASS,
            f"{info.model} ({info.model_code or '?'}), firmware {info.firmware or '?'}",
            started=started,
            data={"model": info.model, "model_code": info.model_code, "firmware": info.firmware},
        )  # fmt: skip

    if run.check_control:
        await _control(run, session, report, connected_at=connected_at)


def _dev_mode_hints(run: DoctorRun, report: Mapping[str, Any], *, alert: bool) -> None:
    fun = report.get("fun")
    if isinstance(fun, str):
        try:
            bits = int(fun, 16)
        except ValueError:
            bits = None
        if bits is not None:
            state = "off" if bits & _FUN_SIGNATURE_REQUIRED else "on"
            run.notes.append(f"print.fun = {fun}: Developer Mode looks {state}.")
    if alert:
        run.notes.append(
            "HMS 0500_0500_0001_0007 is active: the printer has refused an unsigned command "
            "(Developer Mode off)."
        )


_DEV_FIX: Final = (
    "reading status works, but control commands need Developer Mode: on the printer's screen "
    "turn on LAN-only mode, then Developer Mode (next to it in the network settings), then "
    "re-read the access code, which changes when the mode is toggled. The probe left HMS "
    "0500_0500_0001_0007 on the screen; dismiss it"
)


async def _control(
    run: DoctorRun, session: _Session, report: Mapping[str, Any], *, connected_at: float
) -> None:
    step_id = "control.developer_mode"
    level = report.get("spd_lvl")
    if isinstance(level, bool) or not isinstance(level, int) or level not in (1, 2, 3, 4):
        run.record(
            step_id, Status.SKIP,
            "the full report has no speed level, so there is no command known to change "
            "nothing",
        )  # fmt: skip
        return
    settle = run.t.control_settle - (time.monotonic() - connected_at)
    if settle > 0:
        await asyncio.sleep(settle)  # a pause for the printer's sake (protocol.md §10.5)
    started = time.monotonic()
    # print_speed with the current level: a signed-class command with no effect. The state
    # cannot confirm a command that changes nothing, so only a reply or the Developer Mode
    # alert settles it.
    probe_command = dataclasses.replace(cmd.print_speed(level), confirmed_by=None)
    try:
        pending = session.request(probe_command)
    except NotConnected:
        run.fail(
            step_id, "the printer closed the connection", "connection_dropped",
            "run the doctor again", started=started,
        )  # fmt: skip
    await session.wait(lambda: pending.done, run.t.reply)
    probe = f"print_speed {level} (the current speed: no effect)"
    if not pending.done:
        session.core.cancel(pending)
        if session.link.closed.done():
            run.fail(step_id, *_DROPPED, started=started)
        run.fail(
            step_id, f"no reply to {probe} within {run.t.reply:g} s", "control_no_reply",
            "the printer neither accepted nor refused the command: run the doctor again; if "
            "it persists, try `bambu-lan send speed N` and watch the printer's screen",
            started=started,
        )  # fmt: skip
    if pending.outcome is Outcome.DEVELOPER_MODE:  # only the HMS alert showed up
        run.fail(
            step_id, f"{probe}: HMS 0500_0500_0001_0007 (command verification failed)",
            "developer_mode_off", _DEV_FIX, started=started,
        )  # fmt: skip
    reply = pending.reply
    if pending.outcome is not Outcome.REPLIED or reply is None:  # disconnected
        run.fail(step_id, *_DROPPED, started=started)
    if reply.ok:
        run.record(
            step_id, Status.PASS, f"{probe} accepted: control commands work (Developer Mode "
            "on, or not needed by this firmware)", started=started,
        )  # fmt: skip
        return
    code = f", err_code {reply.err_code}" if reply.err_code is not None else ""
    if reply.developer_mode_required:
        run.fail(
            step_id, f"{probe} refused: {reply.reason!r}{code}", "developer_mode_off", _DEV_FIX,
            started=started,
        )  # fmt: skip
    run.fail(
        step_id, f"{probe} refused: {reply.reason or 'no reason given'}{code}",
        "control_refused",
        "the printer refused a harmless command for another reason than Developer Mode; "
        "report it with `bambu-lan doctor --check-control --json`", started=started,
    )  # fmt: skip


def _describe_full(report: Mapping[str, Any], serial: str) -> str:
    parts = [f"{len(report)} fields"]
    state = report.get("gcode_state")
    if state:
        parts.append(f"gcode_state {state}")
    for key, label in (("nozzle_temper", "nozzle"), ("bed_temper", "bed")):
        value = report.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label} {value:.0f} °C")
    wifi = report.get("wifi_signal")
    if wifi:
        parts.append(f"Wi-Fi {wifi}")
    # The merged state keeps no envelope keys; the model says which style it pushes.
    model = identify_model(serial=serial)
    kind = "full push (no msg: X1-style)" if model and not model.delta_reports else "msg 0"
    return f"{kind}: " + ", ".join(parts)
