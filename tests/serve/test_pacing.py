"""The state pacer: how a printer's reports become broker messages (a clock of our own).

The bridge calls ``offer`` for each report and ``release`` when a held state's timer fires;
``publish_times`` replays that for a list of report times. The case that matters is a printer
reporting every 1.001 s after a burst: the earlier limits (one second since the last publish,
then a token bucket of 1.5) locked onto the burst's phase and held every later report for up
to a second (the 1,000-printer benchmark: p50 lag 480 ms); here the lock costs one report.
"""

from __future__ import annotations

import itertools

import pytest

from bambu_lan.serve.pacing import StatePacer


def publish_times(reports: list[float], pacer: StatePacer) -> list[tuple[float, float]]:
    """(time sent, time of the report sent) as the bridge does it."""
    sent: list[tuple[float, float]] = []
    held: float | None = None
    timer: float | None = None
    for report in [*reports, float("inf")]:
        if timer is not None and timer <= report:  # the held state's timer fires first
            assert held is not None
            pacer.release(timer)
            sent.append((timer, held))
            held = timer = None
        if report == float("inf"):
            break
        delay = pacer.offer(report)
        if delay is None:
            sent.append((report, report))
            held = timer = None
        else:
            held = report  # a newer report replaces the held one; the timer stays
            if timer is None:
                timer = report + delay
    return sent


def lags(sent: list[tuple[float, float]], reports: list[float]) -> list[float]:
    """How stale each message was: its time minus the newest report before it."""
    return [at - max(r for r in reports if r <= at) for at, _ in sent]


def most_in_any_window(sent: list[tuple[float, float]], window: float) -> int:
    times = [at for at, _ in sent]
    return max(sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times))


def test_a_steady_printer_after_a_burst_is_published_as_it_reports() -> None:
    # The full report at connect, a push 0.3 s later, then one report every 1.001 s.
    reports = [0.0, 0.3, *(0.3 + k * 1.001 for k in range(1, 120))]
    sent = publish_times(reports, StatePacer(interval=1.0))
    late = [lag for lag in lags(sent, reports)[3:] if lag > 0]
    assert late == []  # after the burst: every report at once, none waits for a phase
    assert len(sent) >= len(reports) - 2  # the burst cost at most one report
    assert most_in_any_window(sent, 1.0) <= 2


def test_jitter_costs_nothing() -> None:
    reports = [k * 1.0 + (0.12 if k % 2 else -0.12) for k in range(1, 100)]
    sent = publish_times(reports, StatePacer(interval=1.0))
    assert [s for s, r in sent if s != r] == []


@pytest.mark.parametrize("period", [0.2, 0.5, 0.99])
def test_a_chatty_printer_is_held_to_one_state_per_interval(period: float) -> None:
    reports = [k * period for k in range(int(120 / period))]
    sent = publish_times(reports, StatePacer(interval=1.0))
    duration = reports[-1] - reports[0]
    assert len(sent) <= duration / 1.0 + 2  # the long-run rate: one per interval
    assert most_in_any_window(sent, 10.0) <= 11
    assert all(b - a >= 0.75 - 1e-9 for (a, _), (b, _) in itertools.pairwise(sent))


def test_a_held_state_is_never_lost() -> None:
    # A burst, then silence: the last state of the burst goes out after its turn.
    reports = [0.0, 0.1, 0.35]
    sent = publish_times(reports, StatePacer(interval=1.0, tolerance=0.25, patience=1.0))
    assert sent[0] == (0.0, 0.0)
    assert sent[-1][1] == 0.35  # the newest state, not the first held one
    assert sent[-1][0] == pytest.approx(1.0 - 0.25 + 1.0)  # its turn plus the patience
    assert len(sent) == 2


def test_an_unchanged_state_gives_its_turn_back() -> None:
    pacer = StatePacer(interval=1.0)
    assert pacer.offer(0.0) is None
    assert pacer.offer(1.0) is None
    pacer.refund()  # the bridge found the payload unchanged and sent nothing
    assert pacer.offer(1.1) is None  # the change right after goes out at once
    assert pacer.offer(1.2) is not None
