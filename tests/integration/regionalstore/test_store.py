"""The store API against a real PostgreSQL: what services see in one region."""

from __future__ import annotations

import threading

import pytest

from regionctl.errors import ConfigError, DatabaseError, InputError
from regionctl.regionalstore import RegionalStore
from regionctl.regionalstore.hlc import HybridClock

pytestmark = pytest.mark.integration
EAST = "us-east-1"


def test_put_get_scan_and_delete_round_trip(stores: dict[str, RegionalStore]) -> None:
    store = stores[EAST]
    first = store.put("carts", "c1:w1", {"itemId": "w1", "quantity": 1, "unitPrice": 120})
    store.put("carts", "c1:w2", {"itemId": "w2", "quantity": 2, "unitPrice": 95})
    store.put("carts", "c10:w1", {"itemId": "w1", "quantity": 1, "unitPrice": 120})
    assert (first.table, first.key, first.origin, first.deleted) == ("carts", "c1:w1", EAST, False)
    assert store.get("carts", "c1:w1") == first
    assert [i.key for i in store.scan("carts", "c1:")] == ["c1:w1", "c1:w2"]
    assert store.delete("carts", "c1:w1") is True
    assert store.delete("carts", "c1:w1") is False  # nothing live any more: nothing written
    assert store.get("carts", "c1:w1") is None
    tombstone = store.get("carts", "c1:w1", tombstones=True)
    assert tombstone is not None and tombstone.deleted and tombstone.value is None and tombstone.hlc > first.hlc
    assert [i.key for i in store.scan("carts", "c1:")] == ["c1:w2"]
    assert [i.key for i in store.scan("carts", "c1:", tombstones=True)] == ["c1:w1", "c1:w2"]
    assert store.get("checkout", "c1:w2") is None  # tables are separate


def test_scan_prefix_is_literal_not_a_pattern(stores: dict[str, RegionalStore]) -> None:
    store = stores[EAST]
    store.put("carts", "a_b:1", {"n": 1})
    store.put("carts", "axb:1", {"n": 2})
    store.put("carts", "a%b:1", {"n": 3})
    assert [i.key for i in store.scan("carts", "a_")] == ["a_b:1"]
    assert [i.key for i in store.scan("carts", "a%")] == ["a%b:1"]


def test_a_write_beats_the_version_it_overwrites_even_when_this_clock_is_behind(dsns: dict[str, str]) -> None:
    ahead = RegionalStore(dsns[EAST], EAST, clock=HybridClock(wall=lambda: 10**13))
    behind = RegionalStore(dsns[EAST], EAST, clock=HybridClock(wall=lambda: 10**12))
    try:
        ahead.migrate()
        first = ahead.put("carts", "k", {"v": 1})
        second = behind.put("carts", "k", {"v": 2})
        assert second.hlc == first.hlc + 1
        third = behind.update("carts", "k", lambda v: {"v": (v or {})["v"] + 1})
        assert third is not None and third.value == {"v": 3} and third.hlc > second.hlc
        assert behind.delete("carts", "k")
        assert behind.get("carts", "k", tombstones=True).hlc > third.hlc  # type: ignore[union-attr]
    finally:
        ahead.close()
        behind.close()


def test_update_is_an_atomic_read_modify_write_under_concurrency(stores: dict[str, RegionalStore]) -> None:
    store = stores[EAST]

    def add_one(value: dict | None) -> dict:  # type: ignore[type-arg]
        return {"quantity": (value or {"quantity": 0})["quantity"] + 1}

    def worker() -> None:
        for _ in range(25):
            store.update("carts", "c1:w1", add_one)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    item = store.get("carts", "c1:w1")
    assert item is not None and item.value == {"quantity": 150}


def test_update_semantics_none_deletes_and_unchanged_writes_nothing(stores: dict[str, RegionalStore]) -> None:
    store = stores[EAST]
    assert store.update("checkout", "c1", lambda v: None) is None  # absent and stays absent
    assert store.get("checkout", "c1", tombstones=True) is None
    created = store.update("checkout", "c1", lambda v: {"step": 1})
    assert created is not None and created.value == {"step": 1}
    same = store.update("checkout", "c1", lambda v: v)
    assert same == created  # same version: nothing written
    assert store.update("checkout", "c1", lambda v: None) is None
    assert store.get("checkout", "c1") is None
    assert store.get("checkout", "c1", tombstones=True).deleted  # type: ignore[union-attr]


def test_bad_input_is_refused_before_anything_is_written(stores: dict[str, RegionalStore]) -> None:
    store = stores[EAST]
    with pytest.raises(InputError, match="table name"):
        store.put("Carts; drop", "k", {})
    with pytest.raises(InputError, match="key"):
        store.put("carts", "", {})
    with pytest.raises(InputError, match="JSON object"):
        store.put("carts", "k", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="JSON-serialisable"):
        store.put("carts", "k", {"x": object()})
    with pytest.raises(InputError, match="JSON object"):
        store.update("carts", "k", lambda v: "nope")  # type: ignore[arg-type,return-value]
    assert store.scan("carts", tombstones=True) == []


def test_migrate_is_idempotent_and_refuses_another_regions_database(dsns: dict[str, str],
                                                                    stores: dict[str, RegionalStore]) -> None:
    stores[EAST].migrate()
    stores[EAST].put("carts", "k", {"v": 1})
    stores[EAST].migrate()
    assert stores[EAST].get("carts", "k") is not None
    with RegionalStore(dsns[EAST], "us-west-2") as wrong, pytest.raises(ConfigError, match="belongs to region"):
        wrong.migrate()


def test_missing_schema_and_unreachable_database_are_clear_errors(empty_dsn: str) -> None:
    with RegionalStore(empty_dsn, EAST) as unmigrated, pytest.raises(DatabaseError, match="call migrate"):
        unmigrated.get("carts", "k")
    with RegionalStore("host=127.0.0.1 port=1 dbname=x user=postgres password=s3cret", EAST) as gone:
        with pytest.raises(DatabaseError) as caught:
            gone.get("carts", "k")
        assert "127.0.0.1:1" in str(caught.value) and "s3cret" not in str(caught.value)


def test_purge_keeps_unacknowledged_local_tombstones(stores: dict[str, RegionalStore]) -> None:
    store = stores[EAST]
    store.put("carts", "k", {"v": 1})
    store.delete("carts", "k")
    assert store.purge_tombstones(older_than_hours=1e-9) == 0  # no target has acknowledged it yet
    with pytest.raises(InputError):
        store.purge_tombstones(0)
