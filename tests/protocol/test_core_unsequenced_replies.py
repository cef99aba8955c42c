"""PrinterCore and replies that carry no sequence_id (an A1 refused print_speed so: §3.6)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bambu_lan.errors import DeveloperModeRequired
from bambu_lan.protocol import commands as cmd
from bambu_lan.protocol.commands import SequenceIds
from bambu_lan.protocol.core import Outcome, PrinterCore

from .conftest import A1_SERIAL

REFUSAL = {
    "command": "print_speed",
    "param": "3",
    "result": "failed",
    "reason": "mqtt message verify failed",
}


def unsequenced(cls: str, **body: Any) -> bytes:
    return orjson.dumps({cls: body})


@pytest.fixture
def live(a1_full: dict[str, Any]) -> PrinterCore:
    core = PrinterCore(A1_SERIAL, sequence_ids=SequenceIds(100))
    core.connected(0.0)
    core.feed(orjson.dumps({"print": a1_full}), 0.5)
    return core


def test_it_settles_the_one_pending_command_of_that_name(live: PrinterCore) -> None:
    _, other = live.request(cmd.pause(), 1.0)
    _, pending = live.request(cmd.print_speed(3), 1.0)

    step = live.feed(unsequenced("print", **REFUSAL), 1.1)

    assert step.settled == [pending]
    assert pending.outcome is Outcome.REPLIED
    assert pending.reply is not None and pending.reply.developer_mode_required
    assert isinstance(pending.error(), DeveloperModeRequired)
    assert not other.done  # another command's reply it is not


def test_two_pending_commands_of_that_name_leave_it_unmatched(live: PrinterCore) -> None:
    _, first = live.request(cmd.print_speed(3), 1.0)
    _, second = live.request(cmd.print_speed(2), 1.0)

    assert live.feed(unsequenced("print", **REFUSAL), 1.1).settled == []
    assert not first.done and not second.done


def test_one_with_nothing_pending_is_ignored(live: PrinterCore) -> None:
    step = live.feed(unsequenced("print", **REFUSAL), 1.1)

    assert not step
    assert live.stats.total == 0


def test_a_reply_without_result_is_not_taken_for_one(live: PrinterCore) -> None:
    _, pending = live.request(cmd.print_speed(3), 1.0)

    live.feed(unsequenced("print", command="print_speed", param="3"), 1.1)

    assert not pending.done
