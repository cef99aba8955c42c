"""PrinterCore driven with bytes and times only: no sockets, no clock, no event loop."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bambu_lan.errors import CommandRejected, DeveloperModeRequired, NotConnected
from bambu_lan.protocol import commands as cmd
from bambu_lan.protocol.commands import SequenceIds
from bambu_lan.protocol.core import DEV_MODE_HMS, Outcome, PrinterCore, Step
from bambu_lan.protocol.events import EventKind
from bambu_lan.protocol.state import JobState

from .conftest import A1_SERIAL

K = EventKind


def push(full: bool = False, **fields: Any) -> bytes:
    body = {**fields, "command": "push_status", "msg": 0 if full else 1, "sequence_id": "7"}
    return orjson.dumps({"print": body})


def reply(cls: str, seq: str, **fields: Any) -> bytes:
    return orjson.dumps({cls: {"sequence_id": seq, **fields}})


def sent(step: Step) -> list[tuple[str, str]]:
    out = []
    for message in step.outgoing:
        ((cls, body),) = orjson.loads(message.payload).items()
        out.append((cls, body["command"]))
    return out


@pytest.fixture
def core() -> PrinterCore:
    return PrinterCore(A1_SERIAL, label="shop", sequence_ids=SequenceIds(100))


@pytest.fixture
def live(core: PrinterCore, a1_full: dict[str, Any]) -> PrinterCore:
    core.connected(0.0)
    core.feed(orjson.dumps({"print": a1_full}), 0.5)
    return core


def test_connected_asks_for_the_version_then_one_full_report(core: PrinterCore) -> None:
    step = core.connected(10.0)
    assert sent(step) == [("info", "get_version"), ("pushing", "pushall")]
    assert [e.kind for e in step.events] == [K.CONNECTED]
    assert step.state is None and step.settled == []
    seqs = [orjson.loads(o.payload) for o in step.outgoing]
    assert seqs[0]["info"]["sequence_id"] != seqs[1]["pushing"]["sequence_id"]


def test_a_full_report_makes_a_complete_state(core: PrinterCore, a1_full: dict[str, Any]) -> None:
    core.connected(0.0)
    step = core.feed(orjson.dumps({"print": a1_full}), 1.0)
    assert step.state is not None and step.state.complete
    assert core.state is step.state and core.complete
    assert core.last_message_at == 1.0
    assert core.raw["gcode_state"] == a1_full["gcode_state"]


def test_deltas_before_the_full_report_are_not_complete(core: PrinterCore) -> None:
    step = core.feed(push(nozzle_temper=30.5), 1.0)
    assert step.state is not None and not step.state.complete
    assert step.state.temperatures.nozzle == 30.5


def test_garbage_is_counted_not_raised(core: PrinterCore) -> None:
    for payload in (b"", b"\xff\xfe", b"[1,2]", b'{"print": 5}', b"{not json"):
        assert not core.feed(payload, 1.0)
    assert core.stats.total == 5
    assert core.state is None


def test_pushall_is_rate_limited_by_the_times_given(core: PrinterCore) -> None:
    core.pushall_min_interval = 3.0
    core.connected(100.0)  # a forced pushall at 100
    assert core.request_full_report(101.0) is None
    assert core.request_full_report(102.9) is None
    out = core.request_full_report(103.0)
    assert out is not None and out.command.label == "pushing.pushall"
    assert core.request_full_report(104.0) is None
    assert core.request_full_report(104.0, force=True) is not None


def test_silence_sends_pushing_start_and_a_full_report(
    live: PrinterCore, a1_full: dict[str, Any]
) -> None:
    step = live.silence(31.0)  # forced, even within the minimum interval
    assert sent(step) == [("pushing", "start"), ("pushing", "pushall")]
    assert [e.kind for e in step.events] == [K.SILENT]
    assert step.events[0].data["silent_for"] == 30.5
    answer = live.feed(orjson.dumps({"print": a1_full}), 31.2)
    assert [e.kind for e in answer.events] == [K.RESYNCED]


def test_a_reply_settles_its_command(live: PrinterCore) -> None:
    out, pending = live.request(cmd.print_speed(3), 2.0)
    assert orjson.loads(out.payload)["print"]["command"] == "print_speed"
    assert out.qos == 0 and not pending.done
    other = live.feed(reply("print", "999", command="print_speed", result="success"), 2.1)
    assert other.settled == [] and not pending.done  # someone else's sequence id
    step = live.feed(reply("print", out.sequence_id, command="print_speed", result="success"), 2.2)
    assert step.settled == [pending]
    assert pending.outcome is Outcome.REPLIED and pending.error() is None
    assert pending.reply is not None and pending.reply.ok
    assert live.pending == ()


def test_a_refusal_is_an_error(live: PrinterCore) -> None:
    out, pending = live.request(cmd.print_speed(4), 0.0)
    live.feed(reply("print", out.sequence_id, result="failed", reason="busy", err_code=5), 0.1)
    error = pending.error()
    assert isinstance(error, CommandRejected) and not isinstance(error, DeveloperModeRequired)
    assert "busy" in str(error)


def test_verify_failed_is_developer_mode(live: PrinterCore) -> None:
    out, pending = live.request(cmd.pause(), 0.0)
    assert out.qos == 1
    live.feed(
        reply("print", out.sequence_id, result="failed", reason="mqtt message verify failed"), 0.1
    )
    assert isinstance(pending.error(), DeveloperModeRequired)


def test_the_developer_mode_alert_alone_settles_print_commands(live: PrinterCore) -> None:
    _, pause = live.request(cmd.pause(), 0.0)
    _, light = live.request(cmd.light(True), 0.0)
    step = live.feed(push(hms=[{"attr": 0x05000500, "code": 0x00010007}]), 0.2)
    assert step.settled == [pause]
    assert pause.outcome is Outcome.DEVELOPER_MODE
    error = pause.error()
    assert isinstance(error, DeveloperModeRequired) and "Developer Mode" in error.hint
    assert live.developer_mode_alert() and not light.done
    assert any(a.code == DEV_MODE_HMS for a in live.state.hms)  # type: ignore[union-attr]


def test_an_alert_already_there_does_not_settle_a_new_command(live: PrinterCore) -> None:
    live.feed(push(hms=[{"attr": 0x05000500, "code": 0x00010007}]), 0.0)
    _, resume = live.request(cmd.resume(), 0.1)
    live.feed(push(hms=[{"attr": 0x05000500, "code": 0x00010007}], nozzle_temper=40.0), 0.2)
    assert not resume.done


def test_the_state_confirms_a_command_that_gets_no_reply(live: PrinterCore) -> None:
    live.feed(push(gcode_state="RUNNING", gcode_file="a.3mf"), 0.0)
    _, pending = live.request(cmd.pause(), 0.1)
    assert not live.feed(push(nozzle_temper=200.0), 0.2).settled
    step = live.feed(push(gcode_state="PAUSE"), 0.3)
    assert step.settled == [pending] and pending.outcome is Outcome.CONFIRMED
    assert pending.error() is None
    assert live.state is not None and live.state.job.state is JobState.PAUSE


def test_a_cancelled_command_ignores_its_late_reply(live: PrinterCore) -> None:
    out, pending = live.request(cmd.print_speed(2), 0.0)
    live.cancel(pending)
    assert pending.outcome is Outcome.CANCELLED
    assert live.feed(reply("print", out.sequence_id, result="success"), 9.0).settled == []


def test_a_drop_fails_pending_commands_and_says_so_once(live: PrinterCore) -> None:
    _, pending = live.request(cmd.print_speed(2), 0.0)
    step = live.disconnected(1.0, "the printer closed the connection")
    assert [e.kind for e in step.events] == [K.DISCONNECTED]
    assert step.events[0].data["reason"] == "the printer closed the connection"
    assert step.settled == [pending]
    assert isinstance(pending.error(), NotConnected)
    assert not live.disconnected(1.1, "again")  # nothing twice
    assert not live.is_connected


def test_a_reconnect_is_announced_and_its_full_report_is_a_resync(
    live: PrinterCore, a1_full: dict[str, Any]
) -> None:
    live.disconnected(1.0, "gone")
    step = live.connected(2.0)
    assert [e.kind for e in step.events] == [K.RECONNECTED]
    assert sent(step) == [("info", "get_version"), ("pushing", "pushall")]
    assert [e.kind for e in live.feed(push(nozzle_temper=1.0), 2.1).events] == []
    resync = live.feed(orjson.dumps({"print": a1_full}), 2.2)
    assert [e.kind for e in resync.events] == [K.RESYNCED]
    assert [e.kind for e in live.feed(orjson.dumps({"print": a1_full}), 2.3).events] == []
    assert live.connects == 2


def test_a_retry_notice_says_why_and_when(core: PrinterCore) -> None:
    from bambu_lan.errors import ClosedBeforeConnack

    error = ClosedBeforeConnack("127.0.0.1:8883 closed the connection before answering CONNECT")
    step = core.retrying(0.0, error, 4.0)
    (event,) = step.events
    assert event.kind is K.RETRYING
    assert event.message == (
        "the printer is at its session limit (closed before CONNACK); retrying in 4 s"
    )
    assert event.data["retry_in"] == 4.0


def test_get_version_fills_in_the_model_and_rebuilds_the_state(
    live: PrinterCore, a1_version: dict[str, Any]
) -> None:
    before = live.state
    assert before is not None
    step = live.feed(orjson.dumps({"info": a1_version}), 1.0)
    assert live.info is not None and live.info.model == "A1"
    assert step.state is not None and step.state is not before
    assert step.state.firmware == live.info.firmware


def test_stop_makes_a_following_failure_a_cancellation(live: PrinterCore) -> None:
    live.feed(push(gcode_state="RUNNING", gcode_file="a.3mf", subtask_name="a"), 0.0)
    live.request(cmd.stop(), 0.1)
    step = live.feed(push(gcode_state="FAILED", print_error=0), 0.2)
    assert [e.kind for e in step.events] == [K.JOB_CANCELLED]


def test_a_job_and_an_alert_found_at_connect_are_announced_once(
    core: PrinterCore, a1_full: dict[str, Any]
) -> None:
    a1_full.update(
        gcode_state="RUNNING",
        gcode_file="a.3mf",
        subtask_name="a",
        hms=[{"attr": 0x03000100, "code": 0x00010007}],
    )
    core.connected(0.0)
    core.feed(push(wifi_signal="-40dBm"), 0.1)  # a delta first, as the A1 often sends
    step = core.feed(orjson.dumps({"print": a1_full}), 0.2)
    kinds = [e.kind for e in step.events]
    assert sorted(kinds) == sorted([K.JOB_STARTED, K.HMS_RAISED])
    assert all(e.data["present_at_connect"] for e in step.events)
    core.disconnected(1.0, "gone")
    core.connected(2.0)
    again = core.feed(orjson.dumps({"print": a1_full}), 2.1)
    assert [e.kind for e in again.events] == [K.RESYNCED]
