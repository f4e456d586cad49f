"""The bound on data loss, decided on its own: when commits must wait for the standby."""

from __future__ import annotations

from regionctl.agent.bound import BoundState, decide
from regionctl.config import ReplicationMode

BOUNDED = ReplicationMode(mode="bounded", max_lag_s=2.0)


def test_sync_always_waits_once_the_standby_was_seen_and_async_never_does() -> None:
    assert decide(ReplicationMode(mode="sync"), BoundState(0.0), 100.0, 5, 10)
    assert decide(ReplicationMode(mode="sync"), BoundState(0.0, seen_standby=True), 100.0, None, 10)
    assert not decide(ReplicationMode(mode="async"), BoundState(0.0), 100.0, 5, 10)


def test_nothing_waits_for_a_standby_this_writer_never_saw() -> None:
    state = BoundState(caught_up_at=0.0)  # a new writer after a failover: the old one is stopped
    for second in range(1, 10):
        assert not decide(BOUNDED, state, float(second), standby_flush=None, current=second * 100)
        assert not decide(ReplicationMode(mode="sync"), BoundState(0.0), float(second), None, second * 100)


def test_bounded_stays_asynchronous_while_the_standby_keeps_confirming() -> None:
    state = BoundState(caught_up_at=0.0)
    for second in range(1, 30):  # the standby always has what the writer had one round earlier
        assert not decide(BOUNDED, state, float(second), standby_flush=(second - 1) * 100, current=second * 100)


def test_bounded_holds_commits_once_the_standby_has_not_confirmed_for_the_budget_then_releases() -> None:
    state = BoundState(caught_up_at=0.0, seen_standby=True)
    assert not decide(BOUNDED, state, 1.0, standby_flush=0, current=100)
    assert not decide(BOUNDED, state, 2.0, standby_flush=None, current=200)  # disconnected: 1 s so far
    assert not decide(BOUNDED, state, 3.0, standby_flush=None, current=300)  # 2 s: at the budget, not over
    assert decide(BOUNDED, state, 3.5, standby_flush=None, current=300)  # over it: hold
    state.held_since = 1.0
    assert decide(BOUNDED, state, 9.0, standby_flush=250, current=300)  # reconnected, not there yet
    assert not decide(BOUNDED, state, 10.0, standby_flush=300, current=300)  # has everything: release
