"""``diagnose()`` against simulated printers: each failure the simulator can produce is named
as exactly one cause, and a healthy printer passes every step."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pytest
from tests.doctor.support import (
    FAST,
    FakeService,
    Tls13BlackHole,
    assert_only_cause,
    config_for,
    free_closed_port,
)

from bambu_lan import Printer
from bambu_lan.doctor import CAUSES, Diagnosis, DoctorTimeouts, Status, diagnose
from bambu_lan.sim import SimulatedPrinter
from bambu_lan.trust import KnownPrinters, TrustConfig

SimFactory = Callable[..., Awaitable[SimulatedPrinter]]  # tests/conftest.py's sim_factory

# The simulator answers pushall within milliseconds: half a second of silence is silence.
SILENCE = dataclasses.replace(FAST, first_report=0.5)


def _connects(sim: SimulatedPrinter) -> int:
    """CONNECT packets the simulator has seen: credentials that reached it."""
    return sum(1 for _client, what in sim.broker.events if what == "connect")


# --- healthy ---------------------------------------------------------------------------------


@pytest.mark.every_profile
async def test_a_healthy_printer_passes_every_step(
    sim: SimulatedPrinter, known_printers: Path
) -> None:
    diagnosis = await diagnose(config_for(sim, known_printers), timeouts=FAST, check_control=True)

    assert [(s.id, s.status) for s in diagnosis.steps if s.status is not Status.PASS] == []
    assert diagnosis.ok
    assert diagnosis.cause is None
    assert diagnosis.verdict.startswith("OK: ")
    model_name = sim.profile.product_name.removeprefix("Bambu Lab ")
    assert f"({model_name}, firmware {sim.profile.firmware})" in diagnosis.verdict
    assert [s.id for s in diagnosis.steps] == [
        "input.host",
        "input.serial",
        "input.access_code",
        "input.trust",
        "net.tcp",
        "tls.handshake",
        "tls.tls13",
        "tls.certificate",
        "tls.serial",
        "tls.chain",
        "tls.pin",
        "mqtt.connack",
        "mqtt.subscribe",
        "mqtt.first_report",
        "mqtt.full_report",
        "mqtt.version",
        "control.developer_mode",
    ]
    assert diagnosis.step("tls.handshake").data["version"] == "TLSv1.2"
    assert diagnosis.step("tls.tls13").data["behaviour"] == "refused"
    assert diagnosis.step("tls.certificate").data["subject_cn"] == sim.serial
    assert diagnosis.step("mqtt.version").data["model"] == model_name
    # The doctor says goodbye: its session is gone when it returns.
    await sim.broker.wait_for_sessions(0)


async def test_pin_mode_reports_the_pin_and_pins_nothing(
    sim: SimulatedPrinter, known_printers: Path
) -> None:
    cfg = config_for(sim, known_printers, trust="pin")

    first = await diagnose(cfg, timeouts=FAST)
    assert first.ok, first.verdict
    assert first.step("tls.pin").data["status"] == "not pinned"
    assert "not pinned yet" in first.step("tls.pin").evidence
    assert KnownPrinters(known_printers).all() == {}  # the doctor never pins

    KnownPrinters(known_printers).pin(sim.serial, sim.fingerprint)
    second = await diagnose(cfg, timeouts=FAST)
    assert second.ok, second.verdict
    assert second.step("tls.pin").data["status"] == "matching"
    assert KnownPrinters(known_printers).all() == {sim.serial: sim.fingerprint}


async def test_reads_work_without_developer_mode_when_control_is_not_checked(
    sim: SimulatedPrinter, known_printers: Path
) -> None:
    sim.model.set_dev_mode(False)

    diagnosis = await diagnose(config_for(sim, known_printers), timeouts=FAST)

    assert diagnosis.ok
    assert any("--check-control" in note for note in diagnosis.notes)


async def test_optional_ports_only_warn(sim: SimulatedPrinter, known_printers: Path) -> None:
    closed = free_closed_port()

    diagnosis = await diagnose(config_for(sim, known_printers), timeouts=FAST, ports=[closed])

    step = diagnosis.step(f"net.port_{closed}")
    assert step.status is Status.WARN
    assert "refused" in step.evidence
    assert diagnosis.ok


# --- one cause per failure -------------------------------------------------------------------


async def test_wrong_access_code(sim: SimulatedPrinter, known_printers: Path) -> None:
    wrong = "00000000" if sim.access_code != "00000000" else "11111111"

    diagnosis = await diagnose(config_for(sim, known_printers, access_code=wrong), timeouts=FAST)

    assert_only_cause(diagnosis, "wrong_access_code")
    assert "CONNACK 5" in diagnosis.step("mqtt.connack").evidence
    assert "re-read the access code" in diagnosis.fix
    assert "LAN-only" in diagnosis.fix


async def test_wrong_serial_is_caught_before_the_access_code_is_sent(
    sim: SimulatedPrinter, known_printers: Path
) -> None:
    other_serial = "03919A3B1200123"
    assert other_serial != sim.serial

    diagnosis = await diagnose(config_for(sim, known_printers, serial=other_serial), timeouts=FAST)

    assert_only_cause(diagnosis, "serial_mismatch")
    step = diagnosis.step("tls.serial")
    assert sim.serial in step.evidence
    assert other_serial in step.evidence
    assert "wrong IP" in diagnosis.verdict or "IP" in diagnosis.fix
    assert _connects(sim) == 0


async def test_lower_case_serial_is_an_input_failure(
    sim: SimulatedPrinter, known_printers: Path
) -> None:
    diagnosis = await diagnose(
        config_for(sim, known_printers, serial=sim.serial.lower()), timeouts=FAST
    )

    assert_only_cause(diagnosis, "serial_invalid")
    assert "upper case" in diagnosis.step("input.serial").evidence
    assert "receives nothing" in diagnosis.step("input.serial").evidence
    assert sim.broker.stats.connections == 0  # nothing was even tried


async def test_closed_port(sim: SimulatedPrinter, known_printers: Path) -> None:
    port = free_closed_port()

    diagnosis = await diagnose(config_for(sim, known_printers, port=port), timeouts=FAST)

    assert_only_cause(diagnosis, "port_closed")
    assert "refused" in diagnosis.step("net.tcp").evidence
    assert "LAN-only" in diagnosis.fix


async def test_session_limit(sim_factory: SimFactory, known_printers: Path) -> None:
    sim = await sim_factory(max_sessions=1)
    async with Printer(sim.host, sim.serial, sim.access_code, port=sim.port, ca_file=sim.ca_path):
        await sim.broker.wait_for_sessions(1)

        diagnosis = await diagnose(config_for(sim, known_printers), timeouts=FAST)

    assert_only_cause(diagnosis, "session_limit")
    assert "without a CONNACK" in diagnosis.step("mqtt.connack").evidence
    assert "Bambu Studio" in diagnosis.fix
    assert sim.broker.closes["session_limit"] == 1


async def test_boot_window(sim: SimulatedPrinter, known_printers: Path) -> None:
    sim.boot_window(60)

    diagnosis = await diagnose(config_for(sim, known_printers), timeouts=FAST)

    assert_only_cause(diagnosis, "printer_starting")
    assert "CONNACK 3" in diagnosis.step("mqtt.connack").evidence
    assert "wait" in diagnosis.fix


async def test_no_connack(sim: SimulatedPrinter, known_printers: Path) -> None:
    sim.delay_connack(math.inf)
    timeouts = dataclasses.replace(FAST, connack=0.5)

    diagnosis = await diagnose(config_for(sim, known_printers), timeouts=timeouts)

    assert_only_cause(diagnosis, "no_connack")


async def test_silent_printer(sim: SimulatedPrinter, known_printers: Path) -> None:
    diagnosis_task = asyncio.create_task(
        diagnose(config_for(sim, known_printers), timeouts=SILENCE)
    )
    # Silence the doctor's session the moment the printer accepts it, before it subscribes;
    # "reconnect": pushing.start does not help (the P1 01.04 bug).
    await sim.broker.wait_for_sessions(1)
    sim.go_silent("reconnect")

    diagnosis = await diagnosis_task

    assert_only_cause(diagnosis, "silent_printer")
    step = diagnosis.step("mqtt.first_report")
    assert "pushing.start" in step.evidence
    assert "restart" in diagnosis.fix
    assert sim.model.logged_commands().count(("pushing", "start")) == 1


async def test_a_printer_silent_until_pushing_start_is_only_a_warning(
    sim: SimulatedPrinter, known_printers: Path
) -> None:
    diagnosis_task = asyncio.create_task(
        diagnose(config_for(sim, known_printers), timeouts=SILENCE)
    )
    await sim.broker.wait_for_sessions(1)
    sim.go_silent("start")

    diagnosis = await diagnosis_task

    assert diagnosis.ok, diagnosis.verdict
    step = diagnosis.step("mqtt.first_report")
    assert step.status is Status.WARN
    assert "pushing.start" in step.evidence
    assert "1 warning" in diagnosis.verdict


@pytest.mark.every_profile
async def test_developer_mode_off(sim: SimulatedPrinter, known_printers: Path) -> None:
    sim.model.set_dev_mode(False)

    diagnosis = await diagnose(config_for(sim, known_printers), timeouts=FAST, check_control=True)

    assert_only_cause(diagnosis, "developer_mode_off")
    step = diagnosis.step("control.developer_mode")
    assert "mqtt message verify failed" in step.evidence
    assert "84033543" in step.evidence
    assert "Developer Mode" in diagnosis.fix
    # The probe re-sent the current speed: nothing changed.
    assert ("print", "print_speed") in sim.model.logged_commands()
    assert sim.model.state["spd_lvl"] == 2


async def test_developer_mode_off_answered_without_a_sequence_id(
    sim: SimulatedPrinter, known_printers: Path
) -> None:
    # An A1 refused print_speed with no sequence_id (protocol.md §3.6), and the alert of an
    # earlier refusal is already up: the reply alone has to settle the probe.
    sim.model.set_dev_mode(False)
    sim.model.raise_hms("0500_0500_0001_0007")
    sim.model.reply_without_sequence_id("print_speed")

    diagnosis = await diagnose(config_for(sim, known_printers), timeouts=FAST, check_control=True)

    assert_only_cause(diagnosis, "developer_mode_off")
    assert "mqtt message verify failed" in diagnosis.step("control.developer_mode").evidence


async def test_certificate_changed_since_pinning(
    sim_factory: SimFactory, known_printers: Path, tmp_path: Path
) -> None:
    cert_dir = tmp_path / "printer-certs"
    before = await sim_factory(cert_dir=cert_dir)
    KnownPrinters(known_printers).pin(before.serial, before.fingerprint)
    await before.stop()
    # The same printer after a reset: a new certificate.
    after = await sim_factory(
        serial=before.serial, access_code=before.access_code, cert_dir=cert_dir, new_identity=True
    )
    assert after.fingerprint != before.fingerprint

    diagnosis = await diagnose(config_for(after, known_printers, trust="pin"), timeouts=FAST)

    assert_only_cause(diagnosis, "certificate_changed")
    step = diagnosis.step("tls.pin")
    assert "changed since pinning" in step.evidence
    assert f"bambu-lan trust forget {after.serial}" in diagnosis.fix
    assert KnownPrinters(known_printers).get(after.serial) == before.fingerprint  # untouched
    assert _connects(after) == 0


async def test_certificate_not_signed_by_the_given_ca(
    sim: SimulatedPrinter, known_printers: Path, other_cert_dir: Path
) -> None:
    cfg = dataclasses.replace(
        config_for(sim, known_printers),
        trust=TrustConfig(ca_file=other_cert_dir / "ca.pem", known_printers=known_printers),
    )

    diagnosis = await diagnose(cfg, timeouts=FAST)

    assert_only_cause(diagnosis, "untrusted_certificate")
    assert _connects(sim) == 0


async def test_no_tls_answer(known_printers: Path, sim: SimulatedPrinter) -> None:
    async with FakeService("silent") as service:
        cfg = config_for(sim, known_printers, port=service.port)
        timeouts = dataclasses.replace(FAST, tls=0.5)

        diagnosis = await diagnose(cfg, timeouts=timeouts)

    assert_only_cause(diagnosis, "tls_no_answer")


async def test_not_tls(known_printers: Path, sim: SimulatedPrinter) -> None:
    async with FakeService("text") as service:
        diagnosis = await diagnose(
            config_for(sim, known_printers, port=service.port), timeouts=FAST
        )

    assert_only_cause(diagnosis, "not_tls")


async def test_a_printer_that_never_answers_tls13_is_told_from_one_that_refuses(
    sim: SimulatedPrinter, known_printers: Path
) -> None:
    async with Tls13BlackHole(sim.host, sim.port) as proxy:
        diagnosis = await diagnose(config_for(sim, known_printers, port=proxy.port), timeouts=FAST)

    assert diagnosis.ok, diagnosis.verdict
    step = diagnosis.step("tls.tls13")
    assert step.data["behaviour"] == "no answer"
    assert "never answers" in step.evidence
    assert proxy.swallowed == 1


# --- input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "cause"),
    [
        ("", "host_missing"),
        ("192.168.1.300", "host_invalid"),
        ("mqtts://192.168.1.50", "host_invalid"),
        ("192.168.1.50:8883", "host_invalid"),
        ("printer.invalid", "host_unknown"),
    ],
)
async def test_bad_addresses(
    sim: SimulatedPrinter, known_printers: Path, host: str, cause: str
) -> None:
    diagnosis = await diagnose(config_for(sim, known_printers, host=host), timeouts=FAST)

    assert_only_cause(diagnosis, cause)


async def test_every_input_problem_is_reported_at_once(
    sim: SimulatedPrinter, known_printers: Path
) -> None:
    cfg = config_for(sim, known_printers, serial="123", access_code="1234")

    diagnosis = await diagnose(cfg, timeouts=FAST)

    failed = [s.cause for s in diagnosis.steps if s.status is Status.FAIL]
    assert failed == ["serial_invalid", "access_code_invalid"]
    assert diagnosis.cause == "serial_invalid"  # the first one names the verdict
    assert diagnosis.step("net.tcp").status is Status.SKIP


async def test_missing_ca_file(sim: SimulatedPrinter, known_printers: Path, tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        config_for(sim, known_printers), trust=TrustConfig(ca_file=tmp_path / "nope.pem")
    )

    diagnosis = await diagnose(cfg, timeouts=FAST)

    assert_only_cause(diagnosis, "trust_config")


# --- output -----------------------------------------------------------------------------------


def _assert_code_absent(diagnosis: Diagnosis, code: str) -> None:
    text = orjson.dumps(diagnosis.to_dict()).decode()
    assert code not in text
    assert code not in diagnosis.verdict
    assert code not in diagnosis.mosquitto_sub


async def test_the_access_code_is_in_no_output(sim: SimulatedPrinter, known_printers: Path) -> None:
    healthy = await diagnose(config_for(sim, known_printers), timeouts=FAST, check_control=True)
    _assert_code_absent(healthy, sim.access_code)
    assert healthy.to_dict()["target"]["access_code"] == "********"
    assert "-P '********'" in healthy.mosquitto_sub

    wrong = "98765432" if sim.access_code != "98765432" else "87654321"
    failed = await diagnose(config_for(sim, known_printers, access_code=wrong), timeouts=FAST)
    _assert_code_absent(failed, wrong)


async def test_json_shape(sim: SimulatedPrinter, known_printers: Path) -> None:
    data = (await diagnose(config_for(sim, known_printers), timeouts=FAST)).to_dict()

    assert data["ok"] is True
    assert data["cause"] is None
    assert {"id", "title", "status", "required", "evidence", "cause", "fix", "seconds"} <= set(
        data["steps"][0]
    )
    assert data["environment"]["openssl"]
    assert data["mosquitto_sub"].startswith("mosquitto_sub ")


def test_every_cause_has_a_title() -> None:
    assert all(title and title[0].isupper() for title in CAUSES.values())


def test_uniform_timeouts() -> None:
    timeouts = DoctorTimeouts.uniform(2.0)
    assert timeouts.connack == timeouts.tls == timeouts.first_report == 2.0
    assert timeouts.control_settle == 2.0
    assert DoctorTimeouts.uniform(30.0).control_settle == DoctorTimeouts().control_settle
    with pytest.raises(ValueError, match="greater than 0"):
        DoctorTimeouts.uniform(0)
