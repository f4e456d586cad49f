"""Last method, when neither the slot nor the WAL is there: a keyed diff of every table, copy against new writer.

Each side hashes its rows server-side into segments by a hash of the primary key (count and XOR of row hashes
per segment), both sides at once. Segments that differ are split (bisection, 16 children per level) until the
differing segments hold few rows; only those rows' keys and hashes cross the wire, and only differing keys are
read in full. Each difference is then attributed with the shared-history test (``versions.is_shared``):

    copy version   new-writer version   meaning
    not shared     shared or absent     lost insert / update (absent on the new writer: reported as an insert)
    not shared     not shared           lost update that conflicts with a change on the new writer
    (absent)       shared               lost delete
    shared         anything else        changed on the new writer since the failover: not lost

Limits, said in the report: transactions are regrouped by commit time (the xid of a lost version's writer is the
only link left); lost deletes cannot be tied to their transaction; a row the new writer deleted after a lost
update of it looks like a lost insert; a row the old writer deleted and the new writer changed looks like a new
row of the new writer; rows both sides left in the same state do not differ at all.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from regionctl.reconcile.catalog import TableInfo
from regionctl.reconcile.classify import Captured
from regionctl.reconcile.model import DELETE, INSERT, UPDATE, Key
from regionctl.reconcile.testdecoding import DecodedChange
from regionctl.reconcile.versions import RowSource, Version, is_shared

ROWS_PER_SEGMENT = 64
FETCH_LIMIT = 50_000  # rows of differing segments fetched directly instead of bisecting further
SPLIT_BITS = 4
MAX_BITS = 40


@dataclass(frozen=True)
class TableDiff:
    table: str
    segments: int
    differing_segments: int
    levels: int
    rows_compared: int
    keys: tuple[Key, ...]  # keys whose rows differ or exist on one side only


@dataclass(frozen=True)
class Attributed:
    lost: tuple[tuple[str, Key, str, Version | None, Version | None], ...]  # (table, key, kind, copy, new)
    new_writer_only: int
    unexplained: tuple[tuple[str, Key], ...]


def plan_bits(rows: int) -> int:
    """Initial segment bits: about ROWS_PER_SEGMENT rows per segment."""
    bits = 0
    while (1 << bits) * ROWS_PER_SEGMENT < rows and bits < 20:
        bits += 1
    return bits


class HashSide:
    """Segment hashes of one table on one side."""

    def __init__(self, conn: psycopg.Connection[Any], info: TableInfo, key_columns: tuple[str, ...],
                 columns: tuple[str, ...]) -> None:
        self.conn = conn
        self.info = info
        key = [sql.SQL("t.{}").format(sql.Identifier(c)) for c in key_columns]
        cols = [sql.SQL("t.{}").format(sql.Identifier(c)) for c in columns]
        self.key_hash = sql.SQL("hashtextextended(row({})::text, 0)").format(sql.SQL(", ").join(key))
        self.row_hash = sql.SQL("hashtextextended(row({})::text, 0)").format(sql.SQL(", ").join(cols))
        self.key_text = sql.SQL(", ").join(sql.SQL("t.{}::text").format(sql.Identifier(c)) for c in key_columns)

    def segments(self, bits: int, parent_bits: int | None, parents: list[int]) -> dict[int, tuple[int, int]]:
        where: sql.Composable = sql.SQL("")
        params: list[Any] = [(1 << bits) - 1]
        if parent_bits is not None:
            where = sql.SQL(" where ({} & %s) = any(%s::bigint[])").format(self.key_hash)
            params += [(1 << parent_bits) - 1, parents]
        query = sql.SQL("select ({kh} & %s) as s, count(*), bit_xor({rh}) from {t} t{where} group by 1").format(
            kh=self.key_hash, rh=self.row_hash, t=self.info.ident(), where=where)
        with self.conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(query, params)
            return {int(s): (int(n), int(x)) for s, n, x in cur}

    def rows(self, bits: int, segments: list[int]) -> dict[Key, int]:
        query = sql.SQL("select {rh}, {kt} from {t} t where ({kh} & %s) = any(%s::bigint[])").format(
            rh=self.row_hash, kt=self.key_text, t=self.info.ident(), kh=self.key_hash)
        with self.conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(query, [(1 << bits) - 1, segments])
            return {tuple(r[1:]): int(r[0]) for r in cur}


def _both(pool: ThreadPoolExecutor, on_copy: Callable[[], Any], on_new: Callable[[], Any]) -> tuple[Any, Any]:
    """Run one query on each side at the same time (two servers, two cores)."""
    a, b = pool.submit(on_copy), pool.submit(on_new)
    return a.result(), b.result()


def diff_table(copy: HashSide, new: HashSide, pool: ThreadPoolExecutor) -> TableDiff:
    """Segments, then bisection of the differing ones, then the rows of the differing leaves."""
    bits = plan_bits(max(copy.info.rows_estimate, new.info.rows_estimate))
    c_seg, n_seg = _both(pool, partial(copy.segments, bits, None, []), partial(new.segments, bits, None, []))
    first_segments, levels, compared = 1 << bits, 1, sum(n for n, _ in c_seg.values())
    differing = _differing(c_seg, n_seg)
    first_differing = len(differing)
    while differing:
        rows = sum(max(c_seg.get(s, (0, 0))[0], n_seg.get(s, (0, 0))[0]) for s in differing)
        if rows <= FETCH_LIMIT or bits + SPLIT_BITS > MAX_BITS:
            break
        parent_bits, bits = bits, bits + SPLIT_BITS
        c_seg, n_seg = _both(pool, partial(copy.segments, bits, parent_bits, differing),
                             partial(new.segments, bits, parent_bits, differing))
        differing = _differing(c_seg, n_seg)
        levels += 1
    if not differing:
        return TableDiff(copy.info.name, first_segments, first_differing, levels, compared, ())
    c_rows, n_rows = _both(pool, partial(copy.rows, bits, differing), partial(new.rows, bits, differing))
    keys = tuple(sorted((k for k in set(c_rows) | set(n_rows) if c_rows.get(k) != n_rows.get(k)),
                        key=lambda k: tuple("" if v is None else v for v in k)))
    return TableDiff(copy.info.name, first_segments, first_differing, levels, compared, keys)


def _differing(c_seg: dict[int, tuple[int, int]], n_seg: dict[int, tuple[int, int]]) -> list[int]:
    return sorted(s for s in set(c_seg) | set(n_seg) if c_seg.get(s) != n_seg.get(s))


def attribute(table: str, key_columns: tuple[str, ...], keys: tuple[Key, ...], copy: RowSource,
              new: RowSource, columns: tuple[str, ...]) -> Attributed:
    """Decide, per differing key, who changed it (see the module docstring's table)."""
    c_rows = copy.by_keys(table, key_columns, list(keys))
    n_rows = new.by_keys(table, key_columns, list(keys))
    lost: list[tuple[str, Key, str, Version | None, Version | None]] = []
    unexplained: list[tuple[str, Key]] = []
    new_only = 0
    for key in keys:
        c, n = c_rows.get(key), n_rows.get(key)
        if c is not None and n is not None and all(c.values.get(x) == n.values.get(x) for x in columns):
            continue  # changed and changed back, or only in columns one side lacks
        c_shared = c is not None and is_shared(c, new)
        n_shared = n is not None and is_shared(n, copy)
        if c is not None and not c_shared:
            lost.append((table, key, UPDATE if n is not None else INSERT, c, n))
        elif c is None and n is not None and n_shared:
            lost.append((table, key, DELETE, None, n))
        elif c_shared and n_shared:
            unexplained.append((table, key))
        else:
            new_only += 1
    return Attributed(tuple(lost), new_only, tuple(unexplained))


def as_transactions(lost: list[tuple[str, Key, str, Version | None, Version | None]],
                    key_columns: dict[str, tuple[str, ...]]) -> list[Captured]:
    """Regroup lost row versions into transactions by commit time; deletes cannot be attributed."""
    groups: dict[str, list[DecodedChange]] = {}
    deletes: list[DecodedChange] = []
    for table, key, kind, c, _n in lost:
        if kind == DELETE:
            deletes.append(DecodedChange(table, DELETE, old=dict(zip(key_columns[table], key, strict=True))))
        else:
            assert c is not None
            groups.setdefault(c.committed_at or "unknown", []).append(DecodedChange(table, kind, new=dict(c.values)))
    out = [Captured(f"diff:{at}", None, None if at == "unknown" else at, None, tuple(changes),
                    note="regrouped from a keyed diff by commit time")
           for at, changes in sorted(groups.items())]
    if deletes:
        out.append(Captured("diff:deletes", None, None, None, tuple(deletes),
                            note="deleted rows found by a keyed diff; their transactions cannot be told"))
    return out


@dataclass(frozen=True)
class DiffResult:
    captured: tuple[Captured, ...]
    tables: tuple[TableDiff, ...]
    new_writer_only: int
    warnings: tuple[str, ...]


def run(copy_conn: psycopg.Connection[Any], new_conn: psycopg.Connection[Any], copy: RowSource,
        new: RowSource) -> DiffResult:
    """Diff every table the two sides share, on the columns they share."""
    warnings: list[str] = []
    diffs: list[TableDiff] = []
    lost: list[tuple[str, Key, str, Version | None, Version | None]] = []
    key_columns: dict[str, tuple[str, ...]] = {}
    new_only = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, info in copy.tables.items():
            other = new.tables.get(name)
            if other is None:
                warnings.append(f"{name} is not on the new writer: every row of it is reported as lost")
            columns = tuple(c.name for c in info.columns
                            if other is None or any(o.name == c.name and o.type == c.type for o in other.columns))
            keys = info.key or columns
            if not info.key:
                warnings.append(f"{name} has no primary key: compared as whole rows")
            key_columns[name] = keys
            if other is None:
                every = tuple(HashSide(copy_conn, info, keys, columns).rows(0, [0]))
                result = TableDiff(name, 1, 1, 1, len(every), every)
            else:
                result = diff_table(HashSide(copy_conn, info, keys, columns),
                                    HashSide(new_conn, other, keys, columns), pool)
            diffs.append(result)
            if result.keys:
                found = attribute(name, keys, result.keys, copy, new, columns)
                lost.extend(found.lost)
                new_only += found.new_writer_only
                warnings += [f"{name} key {k} differs but both versions look shared" for _, k in found.unexplained]
    return DiffResult(tuple(as_transactions(lost, key_columns)), tuple(diffs), new_only, tuple(warnings))
