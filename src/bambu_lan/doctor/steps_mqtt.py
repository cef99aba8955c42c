"""Steps 4 and 5, MQTT and control, through the library's own connection code: CONNACK (each
refusal named), subscribe, the first report (a silent printer gets pushing.start, as the
library's watchdog does), the full report, get_version, and with ``check_control`` one harmless
command that tells whether Developer Mode is on."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import orjson

from bambu_lan.config import PrinterConfig
from bambu_lan.doctor.result import Status
from bambu_lan.doctor.run import DoctorRun
from bambu_lan.errors import AuthError, ConnectError, NotConnected, TrustError
from bambu_lan.protocol import commands as cmd
from bambu_lan.protocol.commands import VERIFY_FAILED_REASON, Command, SequenceIds
from bambu_lan.protocol.decode import DecodeStats, decode_payload
from bambu_lan.protocol.errors_table import ERR_VERIFY_FAILED, ERR_VERIFY_MALFORMED
from bambu_lan.protocol.merge import is_full_report
from bambu_lan.protocol.state import info_from_version_reply
from bambu_lan.protocol.topics import report_topic
from bambu_lan.session import ClosedBeforeConnack, ServerUnavailable, SessionOptions, _Link
from bambu_lan.trust import KnownPrinters, TrustConfig

# HMS raised by a refused unsigned command (protocol.md §10.4), as (attr, code).
_DEV_MODE_HMS: Final = (0x05000500, 0x00010007)
# print.fun bit meaning "signatures required" on X1/H2/P2S (protocol.md §10.5).
_FUN_SIGNATURE_REQUIRED: Final = 0x20000000


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
        await _mqtt_session(run, _link_config(run, Path(pin_dir)))


async def _mqtt_session(run: DoctorRun, cfg: PrinterConfig) -> None:
    t = run.t
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
            run.fail(
                "mqtt.connack", "CONNACK 5 (not authorized): the printer refused the access "
                "code", "wrong_access_code",
                "re-read the access code on the printer's screen (A1: Settings > WLAN; "
                "P1/X1: Settings > Network) and type it exactly; it changes whenever "
                "LAN-only mode or Developer Mode is toggled",
                started=started,
            )  # fmt: skip
        except ServerUnavailable:
            run.fail(
                "mqtt.connack", "CONNACK 3 (server unavailable)", "printer_starting",
                "the printer is still starting up (its broker refuses sessions for ~15-30 s "
                "after boot): wait 30 seconds and run the doctor again",
                started=started,
            )  # fmt: skip
        except ClosedBeforeConnack:
            run.fail(
                "mqtt.connack", f"{where} accepted TLS and CONNECT, then closed the "
                "connection without a CONNACK (paho: code 7)", "session_limit",
                "the printer already has as many MQTT sessions as it allows (about 4 on "
                "A1/P1; sessions of clients that vanished linger for hours): close Bambu "
                "Studio, Bambu Handy, Home Assistant, OctoPrint or other tools connected to "
                "it, or restart the printer to clear stale sessions",
                started=started,
            )  # fmt: skip
        except TrustError as exc:
            run.fail(
                "mqtt.connack", f"{exc}", "trust_failed",
                exc.hint or "another device may answer at this address: check the IP",
                started=started,
            )  # fmt: skip
        except ConnectError as exc:
            if link.connack.done():  # a refusal with another code
                run.fail(
                    "mqtt.connack", str(exc), "connack_refused",
                    "an unexpected MQTT refusal: restart the printer; if it persists, "
                    "report it with `bambu-lan doctor --json`", started=started,
                )  # fmt: skip
            if link.closed.done() and link.closed.result() == "aborted":
                # open() gave up waiting: TLS and CONNECT went through, no CONNACK came.
                run.fail(
                    "mqtt.connack", f"no CONNACK within {t.connack:g} s after CONNECT",
                    "no_connack",
                    "the printer accepted the connection but its MQTT server does not "
                    "answer: it may be overloaded by other clients or still starting; "
                    "wait a minute and retry (a longer --timeout helps on a cold A1), and "
                    "restart the printer if it persists", started=started,
                )  # fmt: skip
            run.fail(
                "mqtt.connack", f"{exc}", "connect_failed",
                exc.hint or "run the doctor again; the earlier steps passed",
                started=started,
            )  # fmt: skip
        opened = True
        connected_at = time.monotonic()
        run.record(
            "mqtt.connack", Status.PASS,
            f"CONNACK 0 (accepted) after {connected_at - started:.2f} s; client id "
            f"{client_id}", started=started,
        )  # fmt: skip

        started = time.monotonic()
        topic = report_topic(cfg.serial)
        try:
            await link.subscribe()
        except ConnectError as exc:
            run.fail(
                "mqtt.subscribe", f"{topic}: {exc}", "subscribe_refused",
                "the printer dropped a subscription to its own report topic: check the "
                "serial (upper case, exactly as on the printer's screen)", started=started,
            )  # fmt: skip
        run.record("mqtt.subscribe", Status.PASS, f"SUBACK for {topic}", started=started)

        await _reports(run, link, inbox, connected_at)
    finally:
        if opened:
            await link.close()  # DISCONNECT: frees the session slot at once
        else:
            link.abort()  # nothing to say goodbye to (and no 2 s wait for it)


def _publish(link: _Link, command: Command, seq: SequenceIds) -> str:
    sequence_id = seq.next()
    link.publish(orjson.dumps(command.payload(sequence_id)), command.qos)
    return sequence_id


async def _reports(run: DoctorRun, link: _Link, inbox: _Inbox, connected_at: float) -> None:
    t = run.t
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
        version_ids.append(_publish(link, cmd.get_version(), seq))
        _publish(link, cmd.pushall(), seq)
    except NotConnected:
        run.fail("mqtt.first_report", dropped[0], dropped[1], dropped[2], started=started)
    got_data = await inbox.wait_any_payload(t.first_report, link.closed)
    if not got_data and link.closed.done():
        run.fail("mqtt.first_report", dropped[0], dropped[1], dropped[2], started=started)
    if not got_data:
        # What the library's watchdog does for a silent printer: pushing.start + pushall.
        # get_version again too: its first reply may have been lost in the silence.
        with contextlib.suppress(NotConnected):
            _publish(link, cmd.start_pushing(), seq)
            _publish(link, cmd.pushall(), seq)
            version_ids.append(_publish(link, cmd.get_version(), seq))
        if not await inbox.wait_any_payload(t.first_report, link.closed):
            run.fail(
                "mqtt.first_report",
                f"the session is open but nothing came in {2 * t.first_report:g} s, not "
                "even after pushing.start and pushall", "silent_printer",
                "the printer accepts the connection but sends no data: restart it (power "
                "off and on). If it keeps happening, update its firmware (P1 01.04.00.00 "
                "had this bug) and connect fewer clients at once",
                started=started,
            )  # fmt: skip
        assert inbox.first_at is not None
        run.record(
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
        run.record(
            "mqtt.first_report", Status.PASS,
            f"first message {inbox.first_at - started:.2f} s after subscribing{extra}",
            started=started,
        )  # fmt: skip

    started = time.monotonic()
    full = await inbox.wait(_is_full_report, t.reply, link.closed)
    if full is None:
        run.fail(
            "mqtt.full_report",
            f"reports come, but no full report within {t.reply:g} s of pushall",
            "no_full_report",
            "the printer ignores pushall (some firmware rate-limits it): wait a few "
            "minutes and run the doctor again; restart the printer if it persists",
            started=started,
        )  # fmt: skip
    assert full is not None
    print_obj: dict[str, Any] = full["print"]
    run.record(
        "mqtt.full_report", Status.PASS, _describe_full(print_obj), started=started,
        data={"keys": len(print_obj), "gcode_state": print_obj.get("gcode_state")},
    )  # fmt: skip
    _dev_mode_hints(run, print_obj)

    started = time.monotonic()
    version = await inbox.wait(
        lambda m: any(_reply_body(m, "info", "get_version", i) is not None for i in version_ids),
        t.reply,
        link.closed,
    )
    if version is None:
        run.record(
            "mqtt.version", Status.WARN, f"no get_version reply within {t.reply:g} s",
            fix="not needed to read the state; the model and firmware stay unknown",
            required=False, started=started,
        )  # fmt: skip
    else:
        info = info_from_version_reply(version["info"], run.cfg.serial)
        run.target["model"] = info.model
        run.target["firmware"] = info.firmware
        run.record(
            "mqtt.version", Status.PASS,
            f"{info.model} ({info.model_code or '?'}), firmware {info.firmware or '?'}",
            started=started,
            data={"model": info.model, "model_code": info.model_code,
                  "firmware": info.firmware},
        )  # fmt: skip

    if run.check_control:
        await _control(run, link, inbox, seq, print_obj=print_obj, connected_at=connected_at)


def _dev_mode_hints(run: DoctorRun, print_obj: Mapping[str, Any]) -> None:
    fun = print_obj.get("fun")
    if isinstance(fun, str):
        try:
            bits = int(fun, 16)
        except ValueError:
            bits = None
        if bits is not None:
            state = "off" if bits & _FUN_SIGNATURE_REQUIRED else "on"
            run.notes.append(f"print.fun = {fun}: Developer Mode looks {state}.")
    if _has_dev_mode_hms(print_obj):
        run.notes.append(
            "HMS 0500_0500_0001_0007 is active: the printer has refused an unsigned "
            "command (Developer Mode off)."
        )


async def _control(
    run: DoctorRun,
    link: _Link,
    inbox: _Inbox,
    seq: SequenceIds,
    *,
    print_obj: Mapping[str, Any],
    connected_at: float,
) -> None:
    step_id = "control.developer_mode"
    level = print_obj.get("spd_lvl")
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
    mark = len(inbox.messages)
    # print_speed with the current level: a signed-class command with no effect.
    try:
        probe_id = _publish(link, cmd.print_speed(level), seq)
    except NotConnected:
        run.fail(
            step_id, "the printer closed the connection", "connection_dropped",
            "run the doctor again", started=started,
        )  # fmt: skip
    answer = await inbox.wait(
        lambda m: (
            _reply_body(m, "print", "print_speed", probe_id, loose=True) is not None
            or _has_dev_mode_hms(m.get("print"))
        ),
        run.t.reply,
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
        run.fail(
            step_id, f"no reply to {probe} within {run.t.reply:g} s", "control_no_reply",
            "the printer neither accepted nor refused the command: run the doctor again; "
            "if it persists, try `bambu-lan send speed N` and watch the printer's screen",
            started=started,
        )  # fmt: skip
    assert answer is not None
    body = _reply_body(answer, "print", "print_speed", probe_id, loose=True)
    if body is None:  # only the HMS showed up
        run.fail(
            step_id, f"{probe}: HMS 0500_0500_0001_0007 (command verification failed)",
            "developer_mode_off", dev_fix, started=started,
        )  # fmt: skip
    assert body is not None
    result = str(body.get("result", "")).lower()
    reason = str(body.get("reason", "") or "")
    err_code = body.get("err_code")
    if result in ("success", "ok"):
        run.record(
            step_id, Status.PASS, f"{probe} accepted: control commands work "
            "(Developer Mode on, or not needed by this firmware)", started=started,
        )  # fmt: skip
        return
    code = f", err_code {err_code}" if err_code is not None else ""
    if err_code in (ERR_VERIFY_FAILED, ERR_VERIFY_MALFORMED) or (
        VERIFY_FAILED_REASON in reason.lower()
    ):
        run.fail(
            step_id, f"{probe} refused: {reason!r}{code}", "developer_mode_off", dev_fix,
            started=started,
        )  # fmt: skip
    run.fail(
        step_id, f"{probe} refused: {reason or 'no reason given'}{code}", "control_refused",
        "the printer refused a harmless command for another reason than Developer Mode; "
        "report it with `bambu-lan doctor --check-control --json`", started=started,
    )  # fmt: skip


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
