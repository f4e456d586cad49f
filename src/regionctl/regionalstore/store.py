"""One region's view of the multi-active store: reads and writes go to this region's own PostgreSQL only.

Every write is stamped with this process's hybrid logical clock, and in the same statement pushed past the version
it overwrites (``greatest(proposed, hlc + 1)``, as ``lww.local_write``), so a write always beats what it replaced
whichever process or region wrote that. The replicator carries the rows to the other region.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from regionctl.errors import DatabaseError
from regionctl.regionalstore import schema
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
from regionctl.regionalstore.pool import ConnectionPool, describe_dsn

T = TypeVar("T")
Conn = psycopg.Connection[Any]
RETURNING = "returning tbl, key, value, deleted, hlc, origin"
NEW_ROW = """(%(tbl)s, %(key)s, %(value)s, %(deleted)s, %(hlc)s::bigint, %(origin)s,
    jsonb_build_object(%(origin)s::text, %(hlc)s::bigint), clock_timestamp(), null,
    nextval('regionalstore.change_seq'), pg_current_xact_id()::text::bigint)"""
COLUMNS = "(tbl, key, value, deleted, hlc, origin, vv, origin_ts, applied_at, seq, xid)"
UPSERT = f"""insert into regionalstore.items as i {COLUMNS} values {NEW_ROW}
on conflict (tbl, key) do update set
    value = excluded.value, deleted = excluded.deleted,
    hlc = greatest(excluded.hlc, i.hlc + 1), origin = excluded.origin,
    vv = i.vv || jsonb_build_object(excluded.origin, greatest(excluded.hlc, i.hlc + 1)),
    origin_ts = excluded.origin_ts, applied_at = null, seq = excluded.seq, xid = excluded.xid
{RETURNING}"""
INSERT_NEW = f"insert into regionalstore.items {COLUMNS} values {NEW_ROW} on conflict (tbl, key) do nothing {RETURNING}"
OVERWRITE = f"""update regionalstore.items set
    value = %(value)s, deleted = %(deleted)s,
    hlc = greatest(%(hlc)s::bigint, hlc + 1), origin = %(origin)s,
    vv = vv || jsonb_build_object(%(origin)s::text, greatest(%(hlc)s::bigint, hlc + 1)),
    origin_ts = clock_timestamp(), applied_at = null,
    seq = nextval('regionalstore.change_seq'), xid = pg_current_xact_id()::text::bigint
where tbl = %(tbl)s and key = %(key)s and (not deleted or not %(only_live)s)
{RETURNING}"""
SELECT = "select tbl, key, value, deleted, hlc, origin from regionalstore.items"
PURGE = """delete from regionalstore.items i
where deleted and origin_ts < now() - make_interval(secs => %(seconds)s)
  and (origin <> %(region)s
       or (exists (select 1 from regionalstore.outbound)
           and not exists (select 1 from regionalstore.outbound o
                           where o.acked_xid is null or (i.xid, i.seq) > (o.acked_xid, o.acked_seq))))"""


class _InsertRace(Exception):
    """Another transaction created the item between our read and our insert: read it again."""


class RegionalStore:
    """The region's regional store (carts, checkout state). Thread-safe; one per process."""

    def __init__(self, dsn: str, region: str, *, pool_size: int = 8, clock: HybridClock | None = None,
                 connect_timeout: float = 5.0) -> None:
        self.region = check_region(region)
        self.dsn = dsn
        self.clock = clock or HybridClock()
        self._pool = ConnectionPool(dsn, max_size=pool_size, connect_timeout=connect_timeout)

    def __repr__(self) -> str:
        return f"RegionalStore({describe_dsn(self.dsn)}, region={self.region!r})"

    def __enter__(self) -> RegionalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> None:
        self._run(lambda conn: schema.migrate(conn, self.region), retry=True)

    def close(self) -> None:
        self._pool.close()

    # ----- reads --------------------------------------------------------------------------------------------
    def get(self, table: str, key: str, *, tombstones: bool = False) -> Item | None:
        """The item, or None when absent or deleted (``tombstones=True`` returns the tombstone instead)."""
        params = (check_table(table), check_key(key))
        row = self._run(lambda conn: conn.execute(f"{SELECT} where tbl = %s and key = %s", params).fetchone(),
                        retry=True)
        item = self._item(row)
        return item if item is not None and (tombstones or not item.deleted) else None

    def scan(self, table: str, prefix: str = "", *, tombstones: bool = False) -> list[Item]:
        """Items of ``table`` whose key starts with ``prefix``, in key order (the carts' customerId index)."""
        pattern = _like_prefix(check_prefix(prefix))
        sql = f"{SELECT} where tbl = %s and key like %s escape '\\'"
        sql += "" if tombstones else " and not deleted"
        rows = self._run(lambda conn: conn.execute(sql + " order by key", (check_table(table), pattern)).fetchall(),
                         retry=True)
        return [item for item in map(self._item, rows) if item is not None]

    # ----- writes -------------------------------------------------------------------------------------------
    def put(self, table: str, key: str, value: dict[str, Any]) -> Item:
        params = self._params(check_table(table), check_key(key), check_value(value))
        row = self._run(lambda conn: conn.execute(UPSERT, params).fetchone(), retry=True)
        item = self._item(row)
        assert item is not None
        return item

    def delete(self, table: str, key: str) -> bool:
        """Replace a live item with a tombstone; False (and nothing written) when there is no live item."""
        params = self._params(check_table(table), check_key(key), None) | {"only_live": True}
        row = self._run(lambda conn: conn.execute(OVERWRITE, params).fetchone(), retry=True)
        return self._item(row) is not None

    def update(self, table: str, key: str, fn: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> Item | None:
        """Read-modify-write in one local transaction, the row locked meanwhile.

        ``fn`` gets a copy of the live value (None if absent or deleted) and returns the new value, or None to
        delete. It may be called again if a concurrent writer created the item first, so keep it free of side
        effects. Returning the unchanged value writes nothing. Returns the item as stored, None when deleted/absent.
        """
        check_table(table)
        check_key(key)
        called = False

        def attempt(conn: Conn) -> Item | None:
            nonlocal called
            with conn.transaction():
                row = conn.execute(f"{SELECT} where tbl = %s and key = %s for update", (table, key)).fetchone()
                current = self._item(row)
                live = None if current is None or current.deleted else current.value
                called = True
                new = fn(copy.deepcopy(live))
                if new is None:
                    if live is None:
                        return None
                    conn.execute(OVERWRITE, self._params(table, key, None) | {"only_live": True})
                    return None
                check_value(new)
                if live is not None and new == live:
                    return current
                params = self._params(table, key, new)
                if current is None:
                    written = conn.execute(INSERT_NEW, params).fetchone()
                    if written is None:
                        raise _InsertRace()
                else:
                    written = conn.execute(OVERWRITE, params | {"only_live": False}).fetchone()
                return self._item(written)

        def safe_to_retry() -> bool:  # a broken connection before fn ran: nothing was done
            return not called

        for _ in range(10):
            try:
                return self._run(attempt, retry_if=safe_to_retry)
            except _InsertRace:
                called = False
        raise DatabaseError(f"update of {table}/{key} kept racing with concurrent creations; giving up")

    def purge_tombstones(self, older_than_hours: float) -> int:
        """Delete tombstones older than the given age; returns how many.

        A tombstone written here is kept until every replication target has acknowledged it, so a purge never
        stops a delete from reaching the other region. The age must exceed the longest replication delay you
        expect (a pause, an outage): an older write arriving after its tombstone is purged would come back.
        """
        params = {"seconds": check_hours(older_than_hours) * 3600.0, "region": self.region}
        return int(self._run(lambda conn: conn.execute(PURGE, params).rowcount, retry=True))

    # ----- internals ----------------------------------------------------------------------------------------
    def _params(self, table: str, key: str, value: dict[str, Any] | None) -> dict[str, Any]:
        return {"tbl": table, "key": key, "value": None if value is None else Jsonb(value),
                "deleted": value is None, "hlc": self.clock.now(), "origin": self.region}

    def _item(self, row: dict[str, Any] | None) -> Item | None:
        if row is None:
            return None
        self.clock.observe(row["hlc"])
        return Item(row["tbl"], row["key"], row["value"], row["hlc"], row["origin"], row["deleted"])

    def _run(self, op: Callable[[Conn], T], *, retry: bool = False, retry_if: Callable[[], bool] | None = None) -> T:
        """Run ``op`` on a pooled connection; once more on a fresh one if a stale connection broke first."""
        try:
            with self._pool.connection() as conn:
                return op(conn)
        except psycopg.OperationalError as exc:
            if not (retry or (retry_if is not None and retry_if())):
                raise self._error(exc) from None
        except psycopg.Error as exc:
            raise self._error(exc) from None
        try:
            with self._pool.connection(fresh=True) as conn:
                return op(conn)
        except psycopg.Error as exc:
            raise self._error(exc) from None

    def _error(self, exc: psycopg.Error) -> DatabaseError:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, psycopg.errors.UndefinedTable):
            message += " (the schema is missing: call migrate())"
        return DatabaseError(f"regional store at {describe_dsn(self.dsn)}: {message}")


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
