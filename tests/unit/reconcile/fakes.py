"""In-memory stand-ins for the two sides (copy, new writer) and for the replay target."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from regionctl.reconcile.catalog import Column, TableInfo
from regionctl.reconcile.model import Key, Row
from regionctl.reconcile.versions import Version


def table(name: str, columns: Sequence[str], key: Sequence[str], oid: int = 1, filenode: int = 100) -> TableInfo:
    return TableInfo(name=name, oid=oid, columns=tuple(Column(c, "text", False, None) for c in columns),
                     key=tuple(key), filenode=filenode, tablespace=0, replica_identity="d", rows_estimate=0)


@dataclass
class FakeSide:
    """A RowSource: rows by table and key, with xmin and commit times; ``commits`` maps xid -> commit time."""

    tables: dict[str, TableInfo]
    rows: dict[str, list[Version]] = field(default_factory=dict)
    commits: dict[str, str] = field(default_factory=dict)

    def put(self, table: str, values: Row, xmin: str, ctid: tuple[int, int] | None = None) -> Version:
        version = Version(dict(values), xmin, self.commits.get(xmin), ctid)
        self.rows.setdefault(table, []).append(version)
        return version

    def by_keys(self, table: str, key_columns: tuple[str, ...], keys: Sequence[Key]) -> dict[Key, Version]:
        wanted = set(keys)
        out = {}
        for v in self.rows.get(table, []):
            k = tuple(v.values.get(c) for c in key_columns)
            if k in wanted:
                out[k] = v
        return out

    def by_ctids(self, table: str, ctids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], Version]:
        wanted = set(ctids)
        return {v.ctid: v for v in self.rows.get(table, []) if v.ctid in wanted}  # type: ignore[misc]

    def by_xmins(self, table: str, xids: Sequence[int]) -> list[Version]:
        wanted = {str(x) for x in xids}
        return [v for v in self.rows.get(table, []) if v.xmin in wanted]

    def commit_times(self, xids: Sequence[str]) -> dict[str, str | None]:
        return {x: self.commits.get(x) for x in xids}


@dataclass
class FakeTarget:
    """A ReplayTarget over dicts; a transaction works on a copy and commits only when it ends without error."""

    tables: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]  # table -> (columns, key columns)
    data: dict[str, dict[Key, Row]] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    writes: int = 0
    recorded: set[tuple[str, str]] = field(default_factory=set)  # (report, transaction): the writer's record

    def columns(self, table: str) -> tuple[str, ...] | None:
        return self.tables[table][0] if table in self.tables else None

    def _key(self, table: str, row: Row) -> Key:
        return tuple(row[c] for c in self.tables[table][1])

    @contextmanager
    def session(self, dry_run: bool) -> Iterator[None]:
        kept = ({t: dict(rows) for t, rows in self.data.items()}, set(self.recorded), dict(self.sequences),
                self.writes)
        yield
        if dry_run:
            self.data, self.recorded, self.sequences, self.writes = kept

    @contextmanager
    def transaction(self) -> Iterator[_FakeTx]:
        work = {t: dict(rows) for t, rows in self.data.items()}
        tx = _FakeTx(self, work)
        yield tx
        self.data = work
        self.writes += tx.writes
        self.recorded |= tx.recorded

    def replayed(self, report_id: str) -> set[str]:
        return {t for r, t in self.recorded if r == report_id}

    def advance_sequence(self, name: str, value: int) -> bool:
        if self.sequences.get(name, 0) >= value:
            return False
        self.sequences[name] = value
        return True


@dataclass
class _FakeTx:
    target: FakeTarget
    work: dict[str, dict[Key, Row]]
    writes: int = 0
    recorded: set[tuple[str, str]] = field(default_factory=set)

    def record(self, report_id: str, transaction_id: str, approved_by: str) -> None:
        self.recorded.add((report_id, transaction_id))

    def read(self, table: str, key: Row) -> Row | None:
        row = self.work.get(table, {}).get(self.target._key(table, key))
        return None if row is None else dict(row)

    def insert(self, table: str, row: Row) -> None:
        rows = self.work.setdefault(table, {})
        k = self.target._key(table, row)
        assert k not in rows, "duplicate key"
        rows[k] = {c: row.get(c) for c in self.target.tables[table][0]}
        self.writes += 1

    def update(self, table: str, key: Row, values: Row) -> None:
        rows = self.work[table]
        old = rows.pop(self.target._key(table, key))
        new = {**old, **{c: v for c, v in values.items() if c in old}}
        rows[self.target._key(table, new)] = new
        self.writes += 1

    def delete(self, table: str, key: Row) -> None:
        del self.work[table][self.target._key(table, key)]
        self.writes += 1
