"""Two regions, two real PostgreSQL instances, two real replicator processes."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from regionctl.regionalstore import Direction, RegionalStore, hlc, list_conflicts, pause, replication_status, resume
from regionctl.regionalstore.hlc import HybridClock
from regionctl.runtime.postgres import PgInstance

from .conftest import ReplicatorProcs, eventually

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"


def same_everywhere(stores: dict[str, RegionalStore], table: str, key: str) -> bool:
    east, west = (stores[r].get(table, key, tombstones=True) for r in (EAST, WEST))
    return east is not None and east == west


def test_a_write_in_one_region_appears_in_the_other(stores: dict[str, RegionalStore],
                                                    replicators: ReplicatorProcs) -> None:
    written = stores[EAST].put("carts", "c1:w1", {"itemId": "w1", "quantity": 2})
    eventually(lambda: stores[WEST].get("carts", "c1:w1") == written, what="east's cart item in west")
    back = stores[WEST].update("carts", "c1:w1", lambda v: {**(v or {}), "quantity": 3})
    eventually(lambda: stores[EAST].get("carts", "c1:w1") == back, what="west's update in east")
    assert back is not None and back.origin == WEST and back.hlc > written.hlc
    assert [i.key for i in stores[WEST].scan("carts", "c1:")] == ["c1:w1"]
    status = replication_status(*(stores[r].dsn for r in (EAST, WEST)))
    assert [d.direction for d in status.directions] == [f"{EAST}->{WEST}", f"{WEST}->{EAST}"]
    assert all(d.backlog == 0 and d.paused is False and d.conflicts_total == 0 for d in status.directions)
    assert all(d.lag_samples == 1 and d.lag_p99_ms is not None for d in status.directions)  # one apply each way


def test_concurrent_writes_to_one_item_converge_and_the_conflict_is_logged(
        dsns: dict[str, str], stores: dict[str, RegionalStore], replicators: ReplicatorProcs) -> None:
    for region in (EAST, WEST):  # both stop shipping, both write, then both ship: the writes are concurrent
        pause(dsns[region], Direction(region, WEST if region == EAST else EAST))
    stores[EAST].put("carts", "c1:w1", {"quantity": 1, "by": EAST})
    stores[WEST].put("carts", "c1:w1", {"quantity": 5, "by": WEST})
    stores[WEST].put("carts", "c2:w1", {"quantity": 7})  # not contended: no conflict
    for region in (EAST, WEST):
        resume(dsns[region], Direction(region, WEST if region == EAST else EAST))
    eventually(lambda: same_everywhere(stores, "carts", "c1:w1") and same_everywhere(stores, "carts", "c2:w1"),
               what="convergence")
    winner = stores[EAST].get("carts", "c1:w1")
    candidates = [stores[r].get("carts", "c1:w1") for r in (EAST, WEST)]
    assert winner is not None and winner.value is not None and winner.value["by"] == winner.origin
    assert all(c == winner for c in candidates)
    conflicts = [c for r in (EAST, WEST) for c in list_conflicts(dsns[r])]
    assert conflicts, "a conflict must be logged in at least one region"
    for conflict in conflicts:
        assert (conflict.table, conflict.key) == ("carts", "c1:w1")
        assert conflict.reason.startswith("concurrent writes")
        versions = {conflict.incoming["origin"]: conflict.incoming, conflict.local["origin"]: conflict.local}
        assert {v["value"]["by"] for v in versions.values()} == {EAST, WEST}  # both versions are in the log
        assert versions[winner.origin]["hlc"] == winner.hlc
    status = replication_status(dsns[EAST], dsns[WEST])
    assert sum(d.conflicts_total or 0 for d in status.directions) == len(conflicts)


def test_the_larger_hlc_wins_even_when_written_first(dsns: dict[str, str], replicators: ReplicatorProcs) -> None:
    """LWW is by (hlc, origin), not arrival: east's clock runs 5 s ahead, so its earlier write wins."""
    ahead = RegionalStore(dsns[EAST], EAST, clock=HybridClock(wall=lambda: hlc.wall_ms() + 5000))
    west = RegionalStore(dsns[WEST], WEST)
    try:
        pause(dsns[EAST], Direction(EAST, WEST))
        first = ahead.put("checkout", "c9", {"step": "east"})
        second = west.put("checkout", "c9", {"step": "west"})
        assert first.hlc > second.hlc
        resume(dsns[EAST], Direction(EAST, WEST))
        eventually(lambda: west.get("checkout", "c9") == first and ahead.get("checkout", "c9") == first,
                   what="east's write to win in both regions")
    finally:
        ahead.close()
        west.close()


def test_deletes_replicate_as_tombstones(dsns: dict[str, str], stores: dict[str, RegionalStore],
                                         replicators: ReplicatorProcs) -> None:
    stores[EAST].put("carts", "c1:w1", {"quantity": 1})
    eventually(lambda: stores[WEST].get("carts", "c1:w1") is not None, what="item in west")
    assert stores[EAST].delete("carts", "c1:w1")
    eventually(lambda: stores[WEST].get("carts", "c1:w1") is None, what="tombstone in west")
    tombstone = stores[WEST].get("carts", "c1:w1", tombstones=True)
    assert tombstone == stores[EAST].get("carts", "c1:w1", tombstones=True)
    assert tombstone is not None and tombstone.deleted and tombstone.origin == EAST and tombstone.value is None
    again = stores[WEST].put("carts", "c1:w1", {"quantity": 2})  # a write after the delete is a new item
    eventually(lambda: stores[EAST].get("carts", "c1:w1") == again, what="re-created item in east")


def test_an_older_write_arriving_after_a_tombstone_does_not_resurrect_the_item(
        dsns: dict[str, str], stores: dict[str, RegionalStore], replicators: ReplicatorProcs) -> None:
    pause(dsns[WEST], Direction(WEST, EAST))
    pause(dsns[EAST], Direction(EAST, WEST))
    slow = RegionalStore(dsns[WEST], WEST, clock=HybridClock(wall=lambda: hlc.wall_ms() - 60_000))
    try:
        late = slow.put("carts", "c3:w1", {"quantity": 4})  # held back in west, stamped a minute in the past
        stores[EAST].put("carts", "c3:w1", {"quantity": 1})
        assert stores[EAST].delete("carts", "c3:w1")
        tombstone = stores[EAST].get("carts", "c3:w1", tombstones=True)
        assert tombstone is not None and late.hlc < tombstone.hlc
        resume(dsns[WEST], Direction(WEST, EAST))  # the older write reaches east, where the tombstone is
        eventually(lambda: (replication_status(dsns[EAST], dsns[WEST]).directions[1].received_total or 0) == 1,
                   what="the late write to reach east")
        assert stores[EAST].get("carts", "c3:w1") is None
        assert stores[EAST].get("carts", "c3:w1", tombstones=True) == tombstone
        [conflict] = list_conflicts(dsns[EAST])
        assert conflict.winner == "local" and conflict.local["deleted"] and conflict.incoming["value"] == late.value
        resume(dsns[EAST], Direction(EAST, WEST))
        eventually(lambda: stores[WEST].get("carts", "c3:w1", tombstones=True) == tombstone, what="tombstone in west")
        assert stores[WEST].get("carts", "c3:w1") is None
    finally:
        slow.close()


def test_pause_stops_shipping_and_resume_catches_up_without_loss(
        dsns: dict[str, str], stores: dict[str, RegionalStore], replicators: ReplicatorProcs) -> None:
    direction = Direction(EAST, WEST)
    stop = threading.Event()

    def write_continuously() -> None:
        i = 0
        while not stop.is_set():
            stores[EAST].put("carts", f"busy:{i}", {"i": i})
            i += 1

    busy = threading.Thread(target=write_continuously)
    busy.start()
    try:
        eventually(lambda: len(stores[WEST].scan("carts", "busy:")) > 50, what="replication under way")
        change = pause(dsns[EAST], direction, reason="chaos")  # while batches are flowing
        assert change.paused and change.changed and change.drained
        frozen = stores[WEST].scan("carts")
        for i in range(300):
            stores[EAST].put("carts", f"c{i % 10}:w{i}", {"quantity": i})
        assert stores[WEST].scan("carts") == frozen  # not one more item once pause() returned
    finally:
        stop.set()
        busy.join()
    assert not pause(dsns[EAST], direction).changed
    status = replication_status(dsns[EAST], dsns[WEST]).directions[0]
    assert status.paused and status.pause_reason == "chaos"
    assert status.backlog == len(stores[EAST].scan("carts")) - len(frozen)
    resumed = resume(dsns[EAST], direction)
    assert not resumed.paused and resumed.changed
    eventually(lambda: stores[WEST].scan("carts") == stores[EAST].scan("carts"), what="catch-up")
    final = replication_status(dsns[EAST], dsns[WEST]).directions[0]
    assert final.backlog == 0 and final.applied_total == final.received_total == len(stores[EAST].scan("carts"))


def test_killing_a_replicator_loses_nothing_and_duplicates_nothing(
        dsns: dict[str, str], stores: dict[str, RegionalStore], replicators: ReplicatorProcs) -> None:
    done = threading.Event()
    written: list[int] = []

    def writer() -> None:
        i = 0
        while not done.is_set() and i < 3000:
            stores[EAST].put("carts", f"k{i}", {"i": i})
            written.append(i)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(3):  # kill mid-stream, more than once, and restart
            eventually(lambda: len(stores[WEST].scan("carts")) > len(written) // 3, what="progress")
            replicators.kill(EAST)
            replicators.start(EAST)
    finally:
        done.set()
        thread.join()
    eventually(lambda: len(stores[WEST].scan("carts")) == len(written), what="everything to arrive", timeout=60)
    assert stores[WEST].scan("carts") == stores[EAST].scan("carts")
    status = replication_status(dsns[EAST], dsns[WEST]).directions[0]
    assert status.received_total == len(written)  # each version shipped exactly once: no batch applied twice
    assert status.applied_total == len(written) and status.backlog == 0


def test_a_transaction_that_commits_after_a_later_one_is_not_skipped(
        dsns: dict[str, str], stores: dict[str, RegionalStore], replicators: ReplicatorProcs) -> None:
    """The cursor must never pass a change whose transaction is still open: T1 starts first, commits last."""
    stores[EAST].put("carts", "slow", {"v": 0})
    eventually(lambda: stores[WEST].get("carts", "slow") is not None, what="first version in west")
    inside, release = threading.Event(), threading.Event()

    def slow_update(value: dict | None) -> dict:  # type: ignore[type-arg]
        inside.set()  # the row is locked: this transaction has its xid, older than the put below
        release.wait(10)
        return {"v": 1}

    t1 = threading.Thread(target=lambda: stores[EAST].update("carts", "slow", slow_update))
    t1.start()
    try:
        assert inside.wait(10)
        later = stores[EAST].put("carts", "fast", {"v": 1})  # younger transaction, commits first
        time.sleep(0.3)  # give the replicator many polls while T1 is open
        assert stores[WEST].get("carts", "fast") is None  # held back behind the open transaction
    finally:
        release.set()
        t1.join()
    eventually(lambda: stores[WEST].get("carts", "slow") == stores[EAST].get("carts", "slow"),
               what="the slow transaction's write in west")
    eventually(lambda: stores[WEST].get("carts", "fast") == later, what="the fast write in west")


def test_replication_survives_a_restart_of_the_target_database(
        dsns: dict[str, str], stores: dict[str, RegionalStore], replicators: ReplicatorProcs,
        pg_instances: dict[str, PgInstance]) -> None:
    stores[EAST].put("carts", "before", {"v": 1})
    eventually(lambda: stores[WEST].get("carts", "before") is not None, what="first write in west")
    west = pg_instances[WEST]
    west.stop("fast")
    try:
        stores[EAST].put("carts", "during", {"v": 2})
        eventually(lambda: _outbound_error(dsns[EAST]) is not None, what="the replicator to report its error")
        down = replication_status(dsns[EAST], dsns[WEST])
        east_west, west_east = down.directions
        assert east_west.backlog == 1 and east_west.paused is False and east_west.replicator_error
        assert east_west.received_total is None and west_east.paused is None  # unknown, not made up
        assert any(str(west.port) in p for p in down.problems)
        assert "us-west-2's store is unreachable" in " ".join(east_west.problems)
    finally:
        west.start({"archive_mode": "off", "fsync": "off"})
    eventually(lambda: stores[WEST].get("carts", "during") is not None, what="the write made while west was down")
    status = replication_status(dsns[EAST], dsns[WEST]).directions[0]
    assert status.received_total == 2 and status.backlog == 0
    eventually(lambda: _outbound_error(dsns[EAST]) is None, what="the error to clear once shipping works again")


def _outbound_error(dsn: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select last_error from regionalstore.outbound").fetchone()
    return row[0] if row else None
