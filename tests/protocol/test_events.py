"""EventTracker: job and HMS events from successive snapshots; terminal events exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bambu_lan.protocol.errors_table import TASK_CANCELED
from bambu_lan.protocol.events import TERMINAL_KINDS, Event, EventKind, EventTracker
from bambu_lan.protocol.merge import apply_push
from bambu_lan.protocol.state import Job, StateBuilder

from .conftest import A1_SERIAL

K = EventKind

IDLE: dict[str, Any] = {
    "gcode_state": "IDLE",
    "nozzle_temper": 25.0,
    "bed_temper": 25.0,
    "gcode_file": "",
    "subtask_name": "",
    "mc_percent": 0,
    "layer_num": 0,
    "total_layer_num": 0,
    "stg_cur": 0,
    "print_error": 0,
    "hms": [],
    "print_type": "idle",
}
PREPARE = {"gcode_state": "PREPARE", "gcode_file": "cube.3mf", "subtask_name": "cube"}
RUNNING = {"gcode_state": "RUNNING", "total_layer_num": 3, "print_type": "local"}
FINISH = {"gcode_state": "FINISH", "mc_percent": 100}
HMS_VERIFY = {"attr": 83887360, "code": 65543, "action": 0, "timestamp": 1764948431}
HMS_BED = {"attr": 50331904, "code": 65543}


class Feed:
    """A printer's report stream through merge, state and events, as the Printer does it."""

    def __init__(self) -> None:
        self.raw: dict[str, Any] = {}
        self.builder = StateBuilder(A1_SERIAL)
        self.tracker = EventTracker(A1_SERIAL)
        self.events: list[Event] = []

    def _apply(self, body: dict[str, Any]) -> list[Event]:
        self.raw, full = apply_push(self.raw, body)
        state = self.builder.build(self.raw, None if full else body.keys(), True)
        new = self.tracker.update(state)
        self.events += new
        return new

    def delta(self, *parts: dict[str, Any], **fields: Any) -> list[Event]:
        """A msg:1 delta of ``parts`` and ``fields`` (later ones win)."""
        body = {k: v for part in (*parts, fields) for k, v in part.items()}
        return self._apply({**body, "command": "push_status", "msg": 1, "sequence_id": "1"})

    def full(self, *parts: dict[str, Any], **fields: Any) -> list[Event]:
        """A msg:0 resync: the whole report so far with ``parts`` and ``fields`` on top."""
        body = {k: v for part in (self.raw, *parts, fields) for k, v in part.items()}
        return self._apply({**body, "command": "push_status", "msg": 0, "sequence_id": "2"})

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]


def kinds(events: list[Event]) -> list[EventKind]:
    return [e.kind for e in events]


def run_job(feed: Feed) -> None:
    feed.delta(PREPARE)
    feed.delta(RUNNING, stg_cur=2)
    feed.delta(stg_cur=0, layer_num=1, mc_percent=10)
    feed.delta(layer_num=2, mc_percent=50)
    feed.delta(layer_num=3, mc_percent=90)
    feed.delta(FINISH)


@pytest.fixture
def feed() -> Feed:
    f = Feed()
    f.full(IDLE)
    assert f.events == []
    return f


def test_a_whole_job(feed: Feed) -> None:
    run_job(feed)
    assert feed.kinds() == [
        K.JOB_STARTED,
        K.LAYER_CHANGED,
        K.LAYER_CHANGED,
        K.LAYER_CHANGED,
        K.JOB_FINISHED,
    ]
    started, *layers, finished = feed.events
    assert started.data["file"] == "cube.3mf"
    assert started.data["name"] == "cube"
    assert "cube started" in started.message
    assert [e.data["layer"] for e in layers] == [1, 2, 3]
    assert layers[-1].message == "layer 3/3"
    assert finished.data["file"] == "cube.3mf"
    assert all(e.serial == A1_SERIAL for e in feed.events)
    assert finished.to_dict()["event"] == "job_finished"
    assert finished.to_dict()["serial"] == A1_SERIAL


def test_finish_repeated_by_deltas_resyncs_and_reconnects_is_reported_once(feed: Feed) -> None:
    run_job(feed)
    assert feed.kinds().count(K.JOB_FINISHED) == 1
    # The printer keeps saying FINISH: deltas, a msg:0 resync, another client's pushall.
    assert feed.delta(nozzle_temper=30.0) == []
    assert feed.full() == []
    assert feed.full(FINISH) == []
    # After a reconnect the same process sees the same full report again.
    assert feed.full() == []
    assert feed.delta(FINISH, wifi_signal="-50dBm") == []
    assert feed.kinds().count(K.JOB_FINISHED) == 1


def test_a_delta_before_the_first_full_report_is_not_a_job_start() -> None:
    feed = Feed()
    # After connecting, an idle-cadence delta can arrive before the pushall reply.
    assert feed.delta(wifi_signal="-51dBm") == []
    # The full report shows a job already running: announced once, as found at connect.
    found = feed.full(IDLE, PREPARE, RUNNING, layer_num=2)
    assert kinds(found) == [K.JOB_STARTED] and found[0].data["present_at_connect"] is True
    feed.delta(layer_num=3)
    feed.delta(FINISH)
    assert feed.kinds() == [K.JOB_STARTED, K.LAYER_CHANGED, K.JOB_FINISHED]


def test_a_delta_before_the_first_full_report_then_finish_is_never_reported() -> None:
    feed = Feed()
    feed.delta(bed_temper=30.0)
    assert feed.full(IDLE, PREPARE, FINISH) == []
    assert feed.full() == []
    assert feed.events == []


@pytest.mark.parametrize("via_idle", [True, False])
def test_a_new_job_after_finish_is_a_new_start_even_with_the_same_name(
    feed: Feed, via_idle: bool
) -> None:
    run_job(feed)
    if via_idle:
        feed.delta(IDLE)
    before = len(feed.events)
    feed.delta(PREPARE, layer_num=0, mc_percent=0)  # same file, same name
    assert kinds(feed.events[before:]) == [K.JOB_STARTED]
    feed.delta(RUNNING, layer_num=1)
    feed.delta(FINISH)
    assert feed.kinds().count(K.JOB_STARTED) == 2
    assert feed.kinds().count(K.JOB_FINISHED) == 2


def test_a_new_job_straight_to_running_after_finish_is_a_start(feed: Feed) -> None:
    run_job(feed)
    assert kinds(feed.delta(RUNNING, layer_num=0, mc_percent=0)) == [K.JOB_STARTED]


def test_a_job_that_vanished_to_idle_does_not_hide_the_next_start(feed: Feed) -> None:
    """The terminal state was missed (e.g. the printer rebooted mid-job): IDLE still means
    no job, so the next one with the same name is announced."""
    feed.delta(PREPARE)
    feed.delta(RUNNING, layer_num=1)
    assert kinds(feed.delta(IDLE)) == [K.JOB_ENDED]
    before = len(feed.events)
    feed.delta(PREPARE)
    assert kinds(feed.events[before:]) == [K.JOB_STARTED]


def test_the_printer_filling_in_the_name_during_prepare_is_not_a_new_job(feed: Feed) -> None:
    feed.delta(gcode_state="PREPARE", gcode_file="cube.3mf")
    feed.delta(subtask_name="cube", gcode_file_prepare_percent="50")
    feed.delta(RUNNING)
    assert feed.kinds() == [K.JOB_STARTED]


def test_pause_and_resume(feed: Feed) -> None:
    feed.delta(PREPARE)
    feed.delta(RUNNING, layer_num=1)
    paused = feed.delta(gcode_state="PAUSE", print_error=0x03008015, stg_cur=6)
    assert kinds(paused) == [K.JOB_PAUSED]
    assert paused[0].data["print_error"] == "0300_8015"
    assert "external spool" in paused[0].message
    assert feed.delta(nozzle_temper=200.0) == []
    assert kinds(feed.delta(gcode_state="RUNNING", print_error=0)) == [K.JOB_RESUMED]
    user_pause = feed.delta(gcode_state="PAUSE", stg_cur=16)
    assert kinds(user_pause) == [K.JOB_PAUSED]
    assert user_pause[0].data["reason"] == "paused by user"
    assert user_pause[0].data["print_error"] is None


def test_stop_with_the_cancel_code_is_cancelled(feed: Feed) -> None:
    feed.delta(PREPARE)
    feed.delta(RUNNING)
    events = feed.delta(gcode_state="FAILED", print_error=TASK_CANCELED)
    assert kinds(events) == [K.JOB_CANCELLED]
    assert events[0].data["file"] == "cube.3mf"
    # The code clears a few seconds later, the state stays FAILED: nothing more.
    assert feed.delta(print_error=0) == []
    assert feed.full() == []


def test_failure_with_another_code_is_failed(feed: Feed) -> None:
    feed.delta(PREPARE)
    feed.delta(RUNNING)
    events = feed.delta(gcode_state="FAILED", print_error=0x07008006)
    assert kinds(events) == [K.JOB_FAILED]
    assert events[0].data["print_error"] == "0700_8006"
    assert "Unable to feed filament" in events[0].message
    assert feed.full() == []


def test_failure_with_an_unknown_code_names_the_code(feed: Feed) -> None:
    feed.delta(PREPARE)
    events = feed.delta(gcode_state="FAILED", print_error=0x0C00FFFF)
    assert kinds(events) == [K.JOB_FAILED]
    assert "0C00_FFFF" in events[0].message


def test_stop_requested_makes_a_plain_failed_a_cancellation(feed: Feed) -> None:
    feed.delta(PREPARE)
    feed.delta(RUNNING)
    feed.tracker.note_stop_requested()
    events = feed.delta(gcode_state="FAILED")  # print_error already back to 0
    assert kinds(events) == [K.JOB_CANCELLED]
    # The request is used up: the next job's failure is a failure.
    feed.delta(PREPARE)
    assert kinds(feed.delta(gcode_state="FAILED")) == [K.JOB_FAILED]


def test_stop_requested_before_a_job_does_not_cancel_the_next_one(feed: Feed) -> None:
    feed.tracker.note_stop_requested()
    feed.delta(PREPARE)
    assert kinds(feed.delta(gcode_state="FAILED")) == [K.JOB_FAILED]


def test_first_sight_of_a_running_job_is_announced_as_present_then_its_end() -> None:
    feed = Feed()
    found = feed.full(IDLE, PREPARE, RUNNING, layer_num=1)
    assert kinds(found) == [K.JOB_STARTED]
    assert found[0].data["present_at_connect"] is True
    assert found[0].message == "cube in progress"
    feed.delta(layer_num=2)
    feed.delta(FINISH)
    assert feed.kinds() == [K.JOB_STARTED, K.LAYER_CHANGED, K.JOB_FINISHED]
    assert feed.full() == [] and feed.delta(FINISH) == []  # resyncs repeat nothing


def test_first_sight_of_a_paused_job_then_resume() -> None:
    feed = Feed()
    assert kinds(feed.full(IDLE, PREPARE, gcode_state="PAUSE")) == [K.JOB_STARTED]
    assert kinds(feed.delta(gcode_state="RUNNING")) == [K.JOB_RESUMED]


def test_another_job_after_an_outage_ends_the_old_one_first(feed: Feed) -> None:
    """Job A finished and job B started while we were away: the resync shows B running."""
    feed.delta(PREPARE)
    feed.delta(RUNNING, layer_num=1)
    found = feed.full(
        IDLE, gcode_state="RUNNING", gcode_file="vase.3mf", subtask_name="vase", layer_num=4
    )
    assert kinds(found) == [K.JOB_ENDED, K.JOB_STARTED]
    assert found[0].data == {"file": "cube.3mf", "outcome": "unknown"}
    assert "cube" in found[0].message
    assert found[1].data["file"] == "vase.3mf" and "present_at_connect" not in found[1].data
    assert feed.full() == []
    assert kinds(feed.delta(FINISH)) == [K.JOB_FINISHED]
    assert feed.kinds().count(K.JOB_ENDED) == 1


def test_the_same_file_printed_again_is_told_apart_by_its_task_id(feed: Feed) -> None:
    feed.delta(PREPARE, subtask_id="101")
    feed.delta(RUNNING, layer_num=2)
    found = feed.full(IDLE, PREPARE, RUNNING, subtask_id="102", layer_num=1)
    assert kinds(found) == [K.JOB_ENDED, K.JOB_STARTED]


def test_a_job_ids_filled_in_during_prepare_is_the_same_job(feed: Feed) -> None:
    feed.delta(PREPARE, subtask_id="0")
    feed.delta(RUNNING, subtask_id="555")
    assert feed.kinds() == [K.JOB_STARTED]


def test_another_job_already_finished_after_an_outage_ends_ours_only(feed: Feed) -> None:
    feed.delta(PREPARE)
    feed.delta(RUNNING, layer_num=1)
    found = feed.full(IDLE, FINISH, gcode_file="vase.3mf", subtask_name="vase")
    assert kinds(found) == [K.JOB_ENDED]
    assert feed.full() == [] and feed.delta(IDLE) == []


def test_a_job_that_vanishes_to_idle_ends_with_outcome_unknown_once(feed: Feed) -> None:
    feed.delta(PREPARE)
    feed.delta(RUNNING, layer_num=1)
    ended = feed.delta(IDLE)
    assert kinds(ended) == [K.JOB_ENDED] and ended[0].data["outcome"] == "unknown"
    assert feed.full() == [] and feed.delta(IDLE) == []


def test_alerts_at_connect_are_marked_later_ones_not() -> None:
    feed = Feed()
    at_connect = feed.full(IDLE, hms=[HMS_BED])
    assert at_connect[0].data["present_at_connect"] is True
    later = feed.delta(hms=[HMS_BED, HMS_VERIFY])
    assert kinds(later) == [K.HMS_RAISED] and "present_at_connect" not in later[0].data


@pytest.mark.parametrize("end", ["FINISH", "FAILED"])
def test_first_sight_of_a_finished_job_reports_nothing_ever(end: str) -> None:
    feed = Feed()
    assert feed.full(IDLE, PREPARE, gcode_state=end, print_error=0x07008006) == []
    assert feed.full() == []
    assert feed.delta(nozzle_temper=30.0) == []
    assert feed.full() == []
    assert feed.events == []
    # A job started afterwards is announced as usual.
    assert kinds(feed.delta(PREPARE)) == [K.JOB_STARTED]


def test_unknown_state_produces_no_job_events() -> None:
    feed = Feed()
    assert feed.delta(gcode_state="SOMETHING_NEW") == []
    assert feed.delta(nozzle_temper=1.0) == []


def test_terminal_events_are_exactly_once_over_a_long_sequence(feed: Feed) -> None:
    for _ in range(5):
        run_job(feed)
        feed.full()
        feed.full()
        feed.delta(IDLE)
        feed.full()
    terminal = [e for e in feed.events if e.kind in TERMINAL_KINDS]
    assert len(terminal) == 5
    assert feed.kinds().count(K.JOB_STARTED) == 5


def test_hms_raised_and_cleared_once(feed: Feed) -> None:
    raised = feed.delta(hms=[HMS_VERIFY])
    assert kinds(raised) == [K.HMS_RAISED]
    assert raised[0].data["code"] == "HMS_0500_0500_0001_0007"
    assert raised[0].data["severity"] == "fatal"
    assert raised[0].data["wiki_url"].endswith("/a1/troubleshooting/hmscode/0500_0500_0001_0007")
    assert "Developer Mode" in raised[0].message
    # Repeated by deltas and resyncs, and with a new timestamp: not raised again.
    assert feed.delta(hms=[HMS_VERIFY]) == []
    assert feed.full() == []
    assert feed.delta(hms=[{**HMS_VERIFY, "timestamp": 1764948999}]) == []
    second = feed.delta(hms=[HMS_VERIFY, HMS_BED])
    assert kinds(second) == [K.HMS_RAISED]
    assert second[0].data["code"] == "HMS_0300_0100_0001_0007"
    cleared = feed.delta(hms=[HMS_BED])
    assert kinds(cleared) == [K.HMS_CLEARED]
    assert cleared[0].data["code"] == "HMS_0500_0500_0001_0007"
    assert kinds(feed.full(hms=[])) == [K.HMS_CLEARED]
    assert feed.full() == []
    assert feed.kinds().count(K.HMS_RAISED) == 2
    assert feed.kinds().count(K.HMS_CLEARED) == 2


def test_hms_present_at_first_sight_is_raised() -> None:
    feed = Feed()
    assert kinds(feed.full(IDLE, hms=[HMS_BED])) == [K.HMS_RAISED]
    assert feed.full() == []


# Deltas a print is made of, for the comparison below.
_JOB_DELTAS: list[dict[str, Any]] = [
    PREPARE,
    RUNNING,
    FINISH,
    {"gcode_state": "FAILED", "print_error": TASK_CANCELED},
    {"gcode_state": "FAILED", "print_error": 50364437},
    {"gcode_state": "PAUSE", "print_error": 50364437},
    {"gcode_state": "IDLE", "gcode_file": "", "subtask_name": ""},
    {"gcode_state": "RUNNING", "gcode_file": "other.3mf", "subtask_name": "other"},
    {"task_id": "77"},
    {"mc_percent": 10},
    {"mc_percent": 55, "mc_remaining_time": 9},
    {"layer_num": 1},
    {"layer_num": 2, "mc_percent": 60},
    {"layer_num": 2, "stg_cur": 14},
    {"nozzle_temper": 200.0},
    {"hms": [HMS_BED]},
    {"hms": []},
    {"print_error": 0},
]


class EveryJobTracker(EventTracker):
    """A tracker without the shortcut for jobs whose marks did not change."""

    @staticmethod
    def _job_marks(job: Job) -> tuple[Any, ...]:
        return (id(job),)


class FreshFeed(Feed):
    """The same stream, every snapshot built from scratch: no section is shared, and the
    tracker looks at every job, so it takes none of its shortcuts."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker = EveryJobTracker(A1_SERIAL)

    def _apply(self, body: dict[str, Any]) -> list[Event]:
        self.raw, _ = apply_push(self.raw, body)
        state = StateBuilder(A1_SERIAL).build(self.raw, None, True)
        new = self.tracker.update(state)
        self.events += new
        return new


def _kinds(feed: Feed) -> list[tuple[EventKind, str]]:
    return [(e.kind, e.message) for e in feed.events]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(_JOB_DELTAS))), max_size=25),
    st.sampled_from([IDLE, {**IDLE, **PREPARE}, {**IDLE, **PREPARE, **RUNNING}]),
)
def test_shared_sections_make_the_same_events_as_fresh_ones(
    order: list[int], start: dict[str, Any]
) -> None:
    shared, fresh = Feed(), FreshFeed()
    for feed in (shared, fresh):
        feed.full(start)
        for index in order:
            feed.delta(_JOB_DELTAS[index])
    assert _kinds(shared) == _kinds(fresh)
