"""An in-memory regional store with the same API and the same LWW rules, for unit tests of its users.

It also models replication (``outbound`` / ``apply``) with the real decision function, which is how the unit
tests check that any interleaving of writes and deliveries converges.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from regionctl.regionalstore.hlc import HybridClock
from regionctl.regionalstore.items import (
    Item,
    check_hours,
    check_key,
    check_prefix,
    check_region,
    check_table,
    check_value,
)
from regionctl.regionalstore.lww import Action, Decision, Version, decide, local_write


@dataclass(frozen=True)
class Shipped:
    """One item version as replication carries it."""

    table: str
    key: str
    value: dict[str, Any] | None
    version: Version
    seq: int


@dataclass
class _Row:
    value: dict[str, Any] | None
    version: Version
    seq: int


@dataclass
class MemoryStore:
    region: str
    clock: HybridClock = field(default_factory=HybridClock)
    rows: dict[tuple[str, str], _Row] = field(default_factory=dict)
    conflicts: list[tuple[str, str, Decision]] = field(default_factory=list)
    _seq: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        check_region(self.region)

    def migrate(self) -> None:
        """Nothing to create in memory."""

    def close(self) -> None:
        """Nothing to release in memory."""

    # ----- the RegionalStore API ----------------------------------------------------------------------------
    def get(self, table: str, key: str, *, tombstones: bool = False) -> Item | None:
        with self._lock:
            row = self.rows.get((check_table(table), check_key(key)))
            if row is None or (row.version.deleted and not tombstones):
                return None
            return self._item(table, key, row)

    def put(self, table: str, key: str, value: dict[str, Any]) -> Item:
        item = self._update(table, key, lambda _current: value, skip_unchanged=False)
        assert item is not None
        return item

    def update(self, table: str, key: str, fn: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> Item | None:
        return self._update(table, key, fn, skip_unchanged=True)

    def purge_tombstones(self, older_than_hours: float) -> int:
        """Tombstones carry no wall time here: nothing is old enough to purge in memory."""
        check_hours(older_than_hours)
        return 0

    def _update(self, table: str, key: str, fn: Callable[[dict[str, Any] | None], dict[str, Any] | None],
                skip_unchanged: bool) -> Item | None:
        with self._lock:
            row = self.rows.get((check_table(table), check_key(key)))
            current = None if row is None or row.version.deleted else row.value
            new = fn(copy.deepcopy(current))
            if new is None:
                if current is not None:
                    self._write(table, key, None, row)
                return None
            check_value(new)
            if skip_unchanged and row is not None and current == new:
                return self._item(table, key, row)
            return self._item(table, key, self._write(table, key, copy.deepcopy(new), row))

    def delete(self, table: str, key: str) -> bool:
        with self._lock:
            row = self.rows.get((check_table(table), check_key(key)))
            if row is None or row.version.deleted:
                return False
            self._write(table, key, None, row)
            return True

    def scan(self, table: str, prefix: str = "", *, tombstones: bool = False) -> list[Item]:
        with self._lock:
            check_table(table)
            check_prefix(prefix)
            found = [self._item(t, k, row) for (t, k), row in self.rows.items()
                     if t == table and k.startswith(prefix) and (tombstones or not row.version.deleted)]
            return sorted(found, key=lambda item: item.key)

    # ----- replication model --------------------------------------------------------------------------------
    def outbound(self, after_seq: int, limit: int | None = None) -> list[Shipped]:
        """Current state of items whose latest change originated here, after ``after_seq`` (as the replicator)."""
        with self._lock:
            found = sorted(
                (Shipped(t, k, copy.deepcopy(r.value), r.version, r.seq) for (t, k), r in self.rows.items()
                 if r.version.origin == self.region and r.seq > after_seq),
                key=lambda s: s.seq,
            )
            return found[:limit] if limit is not None else found

    def apply(self, change: Shipped) -> Decision:
        with self._lock:
            row = self.rows.get((change.table, change.key))
            decision = decide(change.version, row.version if row is not None else None)
            if decision.conflict:
                self.conflicts.append((change.table, change.key, decision))
            if decision.action in (Action.INSERT, Action.REPLACE):
                version = Version(change.version.hlc, change.version.origin, decision.vv, change.version.deleted)
                self.rows[(change.table, change.key)] = _Row(copy.deepcopy(change.value), version, self._next_seq())
            elif decision.action is Action.KEEP and row is not None:
                row.version = Version(row.version.hlc, row.version.origin, decision.vv, row.version.deleted)
            self.clock.observe(change.version.hlc)
            return decision

    # ----- internals ----------------------------------------------------------------------------------------
    def _write(self, table: str, key: str, value: dict[str, Any] | None, row: _Row | None) -> _Row:
        version = local_write(row.version if row else None, self.clock.now(), self.region, deleted=value is None)
        self.clock.observe(version.hlc)
        new = _Row(value, version, self._next_seq())
        self.rows[(table, key)] = new
        return new

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @staticmethod
    def _item(table: str, key: str, row: _Row) -> Item:
        v = row.version
        return Item(table, key, copy.deepcopy(row.value), v.hlc, v.origin, v.deleted)
