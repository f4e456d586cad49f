"""Pure decisions of the global database: LSN arithmetic, preconditions, snapshot choice, state records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from regionctl.errors import ConflictError, InputError, NotFoundError, Unreachable
from regionctl.globaldb.failover import check_failover, fence_old_writer
from regionctl.globaldb.lsn import format_lsn, parse_lsn
from regionctl.globaldb.restore import pick_snapshot
from regionctl.globaldb.snapshots import Snapshot
from regionctl.globaldb.state import DatabaseState, PromotionRecord, StateStore
from regionctl.globaldb.switchover import check_switchover

EAST, WEST = "us-east-1", "us-west-2"


def test_lsn_round_trip_and_order() -> None:
    assert parse_lsn("0/3000060") == 0x3000060
    assert parse_lsn("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert format_lsn(parse_lsn("16/B374D848")) == "16/B374D848"
    assert parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")
    with pytest.raises(InputError, match="not an LSN"):
        parse_lsn("yesterday")


def test_switchover_needs_a_running_writer_and_standby() -> None:
    state = DatabaseState("orders", writer=EAST)
    assert "both up" in check_switchover(state, {EAST: "writer", WEST: "standby"}, WEST)
    with pytest.raises(ConflictError, match="already in us-east-1"):
        check_switchover(state, {EAST: "writer", WEST: "standby"}, EAST)
    with pytest.raises(ConflictError, match="use failover"):
        check_switchover(state, {EAST: "stopped", WEST: "standby"}, WEST)
    with pytest.raises(ConflictError, match="not a standby"):
        check_switchover(state, {EAST: "writer", WEST: "stopped"}, WEST)
    with pytest.raises(ConflictError, match="rebuild them first"):
        check_switchover(DatabaseState("orders", writer=WEST, diverged=(EAST,)), {}, EAST)


def test_failover_promotes_only_a_running_standby_that_has_not_diverged() -> None:
    state = DatabaseState("orders", writer=EAST)
    assert "running standby" in check_failover(state, {EAST: "stopped", WEST: "standby"}, WEST)
    with pytest.raises(ConflictError, match="only a running standby"):
        check_failover(state, {EAST: "writer", WEST: "stopped"}, WEST)
    with pytest.raises(ConflictError, match="diverged"):
        check_failover(DatabaseState("orders", writer=WEST, diverged=(EAST,)), {EAST: "standby"}, EAST)


def snap(snap_id: str, finished: float, end_lsn: str, held: tuple[str, ...] = (EAST, WEST)) -> Snapshot:
    return Snapshot(snap_id, "orders", EAST, held, "0/1", end_lsn, 1, finished - 1, finished, 1, 1.0)


def test_restore_picks_the_newest_snapshot_consistent_before_the_target() -> None:
    snaps = [snap("a", 1000.0, "0/1000"), snap("b", 2000.0, "0/2000"), snap("c", 3000.0, "0/3000", held=(EAST,))]
    at = datetime.fromtimestamp(2500, UTC)
    assert pick_snapshot(snaps, EAST, at, None).id == "b"
    assert pick_snapshot(snaps, EAST, datetime.fromtimestamp(3500, UTC), None).id == "c"
    assert pick_snapshot(snaps, WEST, datetime.fromtimestamp(3500, UTC), None).id == "b"  # c is not held there
    assert pick_snapshot(snaps, EAST, None, parse_lsn("0/2500")).id == "b"
    with pytest.raises(InputError, match="before the first snapshot"):
        pick_snapshot(snaps, EAST, datetime.fromtimestamp(10, UTC), None)
    with pytest.raises(NotFoundError, match="no snapshot is held in us-west-2"):
        pick_snapshot([snaps[2]], WEST, at, None)


def test_state_store_round_trips_records(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    record = PromotionRecord("f1", "failover", "orders", EAST, WEST, 1.0, divergence_lsn="0/5")
    store.save(DatabaseState("orders", writer=WEST, diverged=(EAST,), history=(record,)))
    loaded = store.load("orders")
    assert loaded is not None and loaded.last_failover_from(EAST) == record
    updated = store.update_record("orders", PromotionRecord(**{**record.__dict__, "rebuilt": True}))
    assert updated.history[0].rebuilt and len(updated.history) == 1
    with store.locked("orders"), store.locked("orders", blocking=False) as held:
        assert held is False


class FakeMember:
    """A member whose agent answers, refuses, or cannot be reached."""

    name = "orders-us-east-1"

    def __init__(self, running: bool | None) -> None:
        self._running = running  # None: the agent cannot be reached
        self.stops: list[str] = []

    def reachable_state(self) -> dict[str, object] | None:
        return None if self._running is None else {"running": self._running}

    def stop(self, mode: str = "fast") -> bool:
        if self._running is None:
            raise Unreachable("the agent of us-east-1 did not answer in time")
        self.stops.append(mode)
        was, self._running = self._running, False
        return was

    def in_recovery(self) -> bool:
        return False


def test_the_agent_fence_is_claimed_only_when_it_stopped_the_writer_or_saw_it_stopped() -> None:
    running, stopped, cut_off = FakeMember(True), FakeMember(False), FakeMember(None)
    assert fence_old_writer(running) == (True, "fenced: stopped (immediate) by its agent")
    assert running.stops == ["immediate"]
    assert fence_old_writer(stopped) == (True, "fenced: its agent reports it was not running")
    stopped, how = fence_old_writer(cut_off)
    assert not stopped and how.startswith("its agent cannot be reached") and "did not answer" in how
