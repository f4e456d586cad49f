"""Row versions on either side, and whether a version is shared history or was written after the split.

A row version written before the divergence point exists on both timelines with the same xmin AND the same
commit timestamp (the new writer replayed that commit record, timestamp included). A version written after the
split by either side carries an xid the other side either never committed or reused for an unrelated
transaction, whose commit time differs. So "shared" is decided by (xmin, commit time) together, never by the
xid alone (xids are reused after promotion).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from regionctl.reconcile.catalog import TableInfo
from regionctl.reconcile.model import Key, Row

CHUNK = 10_000


@dataclass(slots=True)  # one per row read (see model.RowChange)
class Version:
    values: Row
    xmin: str
    committed_at: str | None  # commit time of xmin on the side the row was read from
    ctid: tuple[int, int] | None = None


class RowSource(Protocol):
    """One side (the copy or the new writer), as the classifier and the fallbacks need it."""

    tables: dict[str, TableInfo]

    def by_keys(self, table: str, key_columns: tuple[str, ...], keys: Sequence[Key]) -> dict[Key, Version]: ...

    def by_ctids(self, table: str, ctids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], Version]: ...

    def by_xmins(self, table: str, xids: Sequence[int]) -> list[Version]: ...

    def commit_times(self, xids: Sequence[str]) -> dict[str, str | None]: ...


def is_shared(version: Version, other: RowSource) -> bool:
    """Was this version committed before the divergence point (so both sides have, or had, it)?"""
    if version.committed_at is None:  # frozen or older than commit-timestamp tracking: long before the split
        return True
    return other.commit_times([version.xmin]).get(version.xmin) == version.committed_at


def text_array(values: Iterable[str]) -> str:
    """A text[] literal, every element quoted: what psycopg's list adapter sends, built in one join (key
    lookups send thousands of elements)."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def parse_ctid(text: str) -> tuple[int, int]:
    block, offset = text.strip("()").split(",")
    return int(block), int(offset)


class PgRowSource:
    """A RowSource over one psycopg connection (session settings from ``catalog.connect``)."""

    def __init__(self, conn: psycopg.Connection[Any], tables: dict[str, TableInfo]) -> None:
        self.conn = conn
        self.tables = tables
        row = conn.execute("select current_setting('track_commit_timestamp') as on").fetchone()
        self.track_commit_ts = row is not None and row["on"] == "on"
        self._commit_cache: dict[str, str | None] = {}

    def _select(self, info: TableInfo) -> sql.Composed:
        commit = sql.SQL("pg_xact_commit_timestamp(t.xmin)::text") if self.track_commit_ts else sql.SQL("null")
        cols = [sql.SQL("t.{}::text").format(sql.Identifier(c)) for c in info.column_names]
        return sql.SQL("select t.ctid::text, t.xmin::text, {}, {} from {} t").format(
            commit, sql.SQL(", ").join(cols) if cols else sql.SQL("null"), info.ident())

    def _versions(self, info: TableInfo, query: sql.Composed, params: Sequence[Any], probes: bool = False
                  ) -> list[Version]:
        """Run a row query; ``probes``: it names rows by key, so it must probe the index, never scan the table
        (the planner would rather scan for a few thousand keys, making the cost grow with the table)."""
        names = info.column_names
        # Rolled back (a savepoint inside a caller's transaction): a read, and SET LOCAL goes with it.
        with self.conn.transaction(force_rollback=True), self.conn.cursor(row_factory=tuple_row) as cur:
            if probes:
                cur.execute("set local enable_seqscan = off")
            rows = cur.execute(query, params).fetchall()
        return [Version(dict(zip(names, r[3:], strict=False)), r[1], r[2], parse_ctid(r[0])) for r in rows]

    def by_keys(self, table: str, key_columns: tuple[str, ...], keys: Sequence[Key]) -> dict[Key, Version]:
        """Rows by primary key: ``= any(array)`` on each key column (index-friendly, whatever the planner
        thinks of the array's size), then the exact key tuples kept."""
        info = self.tables.get(table)
        if info is None or not keys or not key_columns or not set(key_columns) <= set(info.column_names):
            return {}
        types = info.types()
        where = sql.SQL(" and ").join(
            sql.SQL("t.{} = any(%s::text[]::{}[])").format(sql.Identifier(c), sql.SQL(types[c])) for c in key_columns
        )
        query = sql.SQL("{} where {}").format(self._select(info), where)
        # A NULL key part (a key added by lost DDL) matches no row. Callers' order is kept (not sorted: that
        # costs more than it saves): keys come in commit order, so an order's lines share a chunk.
        wanted = dict.fromkeys(k for k in keys if None not in k)
        found: dict[Key, Version] = {}
        ordered = list(wanted)
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start:start + CHUNK]
            columns = [text_array(dict.fromkeys([str(k[i]) for k in chunk])) for i in range(len(key_columns))]
            for version in self._versions(info, query, columns, probes=True):
                key = tuple(version.values.get(c) for c in key_columns)
                if key in wanted:
                    found[key] = version
        return found

    def by_ctids(self, table: str, ctids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], Version]:
        info = self.tables.get(table)
        if info is None or not ctids:
            return {}
        query = sql.SQL("{} where t.ctid = any(%s::tid[])").format(self._select(info))
        found: dict[tuple[int, int], Version] = {}
        for start in range(0, len(ctids), CHUNK):
            chunk = [f"({b},{o})" for b, o in ctids[start:start + CHUNK]]
            for version in self._versions(info, query, [chunk]):
                assert version.ctid is not None
                found[version.ctid] = version
        return found

    def by_xmins(self, table: str, xids: Sequence[int]) -> list[Version]:
        info = self.tables.get(table)
        if info is None or not xids:
            return []
        query = sql.SQL("{} where t.xmin = any(%s::text[]::xid[])").format(self._select(info))
        return self._versions(info, query, [[str(x) for x in xids]])

    def commit_times(self, xids: Sequence[str]) -> dict[str, str | None]:
        missing = sorted({x for x in xids if x not in self._commit_cache})
        if missing and self.track_commit_ts:
            for start in range(0, len(missing), CHUNK):
                rows = self.conn.execute(
                    "select x, pg_xact_commit_timestamp(x::xid)::text as ts from unnest(%s::text[]) x",
                    (missing[start:start + CHUNK],),
                ).fetchall()
                self._commit_cache.update({r["x"]: r["ts"] for r in rows})
        for x in missing:
            self._commit_cache.setdefault(x, None)
        return {x: self._commit_cache[x] for x in xids}
