"""The bound on data loss, decided on its own: when commits must wait for the standby."""

from __future__ import annotations

from regionctl.agent.bound import BoundState, decide
from regionctl.config import ReplicationMode

BOUNDED = ReplicationMode(mode="bounded", max_lag_s=2.0)
CHECK = 0.25


def test_sync_always_waits_once_the_standby_was_seen_and_async_never_does() -> None:
    assert decide(ReplicationMode(mode="sync"), BoundState(0.0), 100.0, 5, 10, CHECK)
    assert decide(ReplicationMode(mode="sync"), BoundState(0.0, seen_standby=True), 100.0, None, 10, CHECK)
    assert not decide(ReplicationMode(mode="async"), BoundState(0.0), 100.0, 5, 10, CHECK)


def test_nothing_waits_for_a_standby_this_writer_never_saw() -> None:
    state = BoundState(caught_up_at=0.0)  # a new writer after a failover: the old one is stopped
    for second in range(1, 10):
        assert not decide(BOUNDED, state, float(second), standby_flush=None, current=second * 100, interval=CHECK)
        assert not decide(ReplicationMode(mode="sync"), BoundState(0.0), float(second), None, second * 100, CHECK)


def test_bounded_stays_asynchronous_while_the_standby_keeps_confirming() -> None:
    state = BoundState(caught_up_at=0.0)
    for step in range(1, 200):  # the standby always has what the writer had one check earlier
        now = step * CHECK
        assert not decide(BOUNDED, state, now, standby_flush=(step - 1) * 100, current=step * 100, interval=CHECK)
        assert state.caught_up_at == now - CHECK
    assert len(state.pending) == 1  # confirmed positions are not kept


def test_the_safe_moment_is_when_the_confirmed_position_was_read_not_when_its_confirmation_was_seen() -> None:
    state = BoundState(caught_up_at=0.0, seen_standby=True)
    decide(BOUNDED, state, 1.0, standby_flush=50, current=100, interval=CHECK)
    decide(BOUNDED, state, 1.25, standby_flush=90, current=200, interval=CHECK)  # not yet all of what it had at 1.0
    assert state.caught_up_at == 0.0
    decide(BOUNDED, state, 1.5, standby_flush=200, current=300, interval=CHECK)  # has what it had at 1.25, not at 1.5
    assert state.caught_up_at == 1.25


def test_bounded_holds_commits_before_the_next_check_would_be_past_the_budget_then_releases() -> None:
    state = BoundState(caught_up_at=0.0, seen_standby=True)
    assert not decide(BOUNDED, state, 1.0, standby_flush=100, current=100, interval=CHECK)  # safe at 1.0
    assert not decide(BOUNDED, state, 2.0, standby_flush=None, current=200, interval=CHECK)  # cut: 1 s so far
    assert not decide(BOUNDED, state, 2.75, standby_flush=None, current=300, interval=CHECK)  # 2 s at the next
    assert decide(BOUNDED, state, 2.8, standby_flush=None, current=300, interval=CHECK)  # it would overrun: hold
    state.held_since = 1.0
    assert decide(BOUNDED, state, 9.0, standby_flush=250, current=300, interval=CHECK)  # reconnected, not there yet
    assert not decide(BOUNDED, state, 10.0, standby_flush=300, current=300, interval=CHECK)  # all of it: release
    assert state.caught_up_at == 10.0


def test_a_held_writer_releases_under_steady_writes_once_the_standby_has_the_previous_check() -> None:
    state = BoundState(caught_up_at=0.0, seen_standby=True)
    state.held_since = 1.0  # held during a cut; healed, commits wait for the standby and keep coming
    assert decide(BOUNDED, state, 9.0, standby_flush=250, current=300, interval=CHECK)  # still catching up
    # Every commit waits for the standby, so the newest WAL (the commit waiting now) is never all confirmed:
    assert not decide(BOUNDED, state, 9.25, standby_flush=390, current=400, interval=CHECK)  # has what it had at 9.0
    assert state.caught_up_at == 9.0


def test_a_long_cut_keeps_a_bounded_number_of_positions() -> None:
    state = BoundState(caught_up_at=0.0, seen_standby=True)
    state.held_since = 1.0
    for step in range(10_000):
        decide(BOUNDED, state, step * CHECK, standby_flush=None, current=step, interval=CHECK)
    assert len(state.pending) == state.pending.maxlen
