"""What the simulated printer publishes on ``device/{SERIAL}/report``, and when (§3.5-§3.6).

``Reports`` turns the state into messages: a full report (``msg: 0``; X1: always full and
pretty-printed, without ``msg``), a delta of the keys that changed (``msg: 1``, envelope keys
last), and command replies. It owns the push ``sequence_id`` counter and the ``publish``
callback that the broker side installs.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from bambu_lan.sim.model.state import ModelState
from bambu_lan.sim.report import JsonObject


def _discard(payload: bytes) -> None:
    """Default ``publish``: nobody is listening yet."""


class Reports:
    """The report side of one printer: full reports, deltas and replies, as bytes."""

    def __init__(self, state: ModelState) -> None:
        self._state = state
        self.publish: Callable[[bytes], None] = _discard
        self._dump_options = 0 if state.profile.delta_reports else orjson.OPT_INDENT_2
        self._push_sequence = state.rng.randint(100, 9000)
        self._last_tick_quiet = False

    def full_report_payload(self) -> bytes:
        """The full report encoded as this model publishes it; takes the next sequence id."""
        return orjson.dumps(self._full_message(), option=self._dump_options)

    def push_full(self) -> None:
        """Publish the complete report now (``msg: 0``; X1: the usual full push)."""
        self._send(self._full_message(), push=True)
        self._state.forget_changes()

    def periodic_push(self) -> None:
        """The push of one tick: a full report on the X1 family, else a delta."""
        if not self._state.profile.delta_reports:
            self.push_full()
            return
        if not self._state.has_changes:
            # Idle A1s send a delta every 2-4 s (§3.5): one quiet tick is fine, two are not
            # (``wants_filler`` asks the caller for a small change before the second one).
            self._last_tick_quiet = True
            return
        self._last_tick_quiet = False
        self._push_delta()

    @property
    def wants_filler(self) -> bool:
        """True when the next periodic push would be a second quiet one in a row on a
        delta-reporting printer: the caller adds a small change (the Wi-Fi signal) first."""
        state = self._state
        return state.profile.delta_reports and not state.has_changes and self._last_tick_quiet

    def flush(self) -> None:
        """Publish what a command or verb changed right away."""
        state = self._state
        if state.has_changes and state.pushing:
            if state.profile.delta_reports:
                self._push_delta()
            else:
                self.push_full()

    def reply(self, message: JsonObject) -> None:
        """Publish a command reply (not a push)."""
        self._send(message, push=False)

    def _push_delta(self) -> None:
        state = self._state
        printed = state.report
        body = {key: printed[key] for key in state.take_changes()}
        body["command"] = "push_status"
        body["msg"] = 1
        body["sequence_id"] = self._next_sequence_id()
        self._send({"print": body}, push=True)

    def _full_message(self) -> JsonObject:
        body = self._state.published_report()
        body["command"] = "push_status"
        if self._state.profile.delta_reports:
            body["msg"] = 0
        body["sequence_id"] = self._next_sequence_id()
        return {"print": body}

    def _next_sequence_id(self) -> str:
        self._push_sequence += 1
        return str(self._push_sequence)

    def _send(self, message: JsonObject, *, push: bool) -> None:
        if push:
            self._state.stats.pushes += 1
        else:
            self._state.stats.replies += 1
        self.publish(orjson.dumps(message, option=self._dump_options))
