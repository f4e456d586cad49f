"""Approved, idempotent re-apply of lost transactions to the new writer.

Each lost transaction is applied in its own database transaction, in commit order, all or nothing. Every change
is checked against the row as the new writer holds it now, by primary key and content (never by xid):

- the row already looks as this change, or a later lost change of the same row, left it: already applied;
- the row looks as the change expects before it (absent for an insert, the before-image otherwise): apply;
- anything else: the new writer changed it since; the whole transaction is refused and listed with the reason.

A table with a merge policy (``reconcile.policies``, ``merge.py``) is merged column by column instead: a delta
adds the lost increment to what the writer holds, keep-new and lww may keep the writer's value (the change is
listed as resolved), skip lists it and writes nothing. A delta cannot be recognised by content, so each replayed
transaction is recorded on the writer itself (``regionctl.replayed``), in the same database transaction as its
changes: a second replay, after a crash mid-way or a switchover, skips what is recorded and applies nothing.
``dry_run`` does all of it inside one outer transaction rolled back at the end, keeping what it would write.

Writes run with ``session_replication_role = replica`` like a logical replication apply worker: triggers and
foreign-key actions already happened on the old writer and their effects are among the lost changes themselves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg import sql

from regionctl.config import MergePolicySettings
from regionctl.reconcile import catalog, merge
from regionctl.reconcile.catalog import TableInfo
from regionctl.reconcile.merge import UNKNOWN_BEFORE, TablePolicy, resolve
from regionctl.reconcile.model import DELETE, INSERT, UPDATE, Report, Row, RowChange
from regionctl.reconcile.testdecoding import split_qualified

ABSENT = None
RECORD = "regionctl.replayed"  # on the writer: one row per replayed transaction, written with its changes


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
Expected = Row | None | _Unknown


class TargetTx(Protocol):
    def read(self, table: str, key: Row) -> Row | None: ...

    def insert(self, table: str, row: Row) -> None: ...

    def update(self, table: str, key: Row, values: Row) -> None: ...

    def delete(self, table: str, key: Row) -> None: ...

    def record(self, report_id: str, transaction_id: str, approved_by: str) -> None:
        """Mark the transaction replayed, in this same database transaction."""
        ...


class ReplayTarget(Protocol):
    def columns(self, table: str) -> tuple[str, ...] | None: ...

    def session(self, dry_run: bool) -> AbstractContextManager[None]:
        """Around the whole replay: a dry run's transactions all see each other's writes, then all roll back."""
        ...

    def transaction(self) -> AbstractContextManager[TargetTx]:
        """One lost transaction, all or nothing."""
        ...

    def replayed(self, report_id: str) -> set[str]:
        """The report's transactions an earlier replay recorded as done."""
        ...

    def advance_sequence(self, name: str, value: int) -> bool: ...


@dataclass(frozen=True)
class TxOutcome:
    id: str
    status: str  # applied | resolved (a policy kept the writer's values) | already_applied | refused
    changes_applied: int = 0
    reasons: tuple[str, ...] = ()
    resolutions: tuple[dict[str, Any], ...] = ()  # per change merged by a policy: what it wrote and why


@dataclass
class ReplayOutcome:
    report_id: str
    approved_by: str
    writer: str
    started_at: float
    finished_at: float = 0.0
    transactions: list[TxOutcome] = field(default_factory=list)
    sequences_advanced: list[str] = field(default_factory=list)
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def applied(self) -> list[str]:
        return [t.id for t in self.transactions if t.status == "applied"]

    @property
    def already_applied(self) -> list[str]:
        return [t.id for t in self.transactions if t.status == "already_applied"]

    @property
    def resolved(self) -> list[str]:
        return [t.id for t in self.transactions if t.status == "resolved"]

    @property
    def refused(self) -> list[TxOutcome]:
        return [t for t in self.transactions if t.status == "refused"]

    @property
    def changes_applied(self) -> int:
        return sum(t.changes_applied for t in self.transactions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id, "approved_by": self.approved_by, "writer": self.writer,
            "started_at": self.started_at, "finished_at": self.finished_at, "dry_run": self.dry_run,
            "applied": self.applied, "resolved": self.resolved, "already_applied": self.already_applied,
            "refused": [{"id": t.id, "reasons": list(t.reasons)} for t in self.refused],
            "changes_applied": self.changes_applied, "sequences_advanced": self.sequences_advanced,
            "notes": self.notes,
            "transactions": [{"id": t.id, "status": t.status, "changes_applied": t.changes_applied,
                              "reasons": list(t.reasons), "resolutions": list(t.resolutions)}
                             for t in self.transactions],
        }


class Refused(Exception):
    pass


def before_state(change: RowChange) -> Expected:
    if change.kind == INSERT:
        return ABSENT
    if change.old is not None and change.old_source in ("new_writer", "lost_transaction", "decoded"):
        return change.old
    return UNKNOWN


def after_state(change: RowChange) -> Expected:
    if change.kind == DELETE:
        return ABSENT
    if change.kind == UPDATE and isinstance(before_state(change), dict):
        return {**(change.old or {}), **(change.new or {})}
    return dict(change.new or {})


def matches(current: Row | None, expected: Expected) -> bool:
    if isinstance(expected, _Unknown):
        return False
    if expected is None or current is None:
        return expected is None and current is None
    return all(current.get(c) == v for c, v in expected.items() if c in current)


def _target_key(change: RowChange) -> Row | None:
    return change.old_key or change.key


def later_states(report: Report) -> dict[tuple[int, int], list[Expected]]:
    """For each (transaction, change): its after-state and those of every later lost change of the same row."""
    chains: dict[tuple[str, str], list[tuple[int, int, Expected]]] = {}
    for t, tx in enumerate(report.transactions):
        for c, ch in enumerate(tx.changes):
            key = _target_key(ch)
            if ch.action != "apply" or key is None:
                continue
            target = ABSENT if ch.old_key else after_state(ch)
            chains.setdefault((ch.table, repr(sorted(key.items()))), []).append((t, c, target))
    out: dict[tuple[int, int], list[Expected]] = {}
    for steps in chains.values():
        for i, (t, c, _) in enumerate(steps):
            out[(t, c)] = [s for _, _, s in steps[i:]]
    return out


def decide(current: Row | None, before: Expected, afters: Sequence[Expected]) -> str:
    """done | apply | conflict (see the module docstring)."""
    if any(matches(current, a) for a in afters):
        return "done"
    if matches(current, before):
        return "apply"
    return "conflict"


def _schema_problem(change: RowChange, target: ReplayTarget) -> str | None:
    columns = target.columns(change.table)
    if columns is None:
        return f"{change.table} does not exist on the new writer"
    needed = set(change.new or {}) | set(change.old_key or change.key or {})
    missing = sorted(needed - set(columns))
    if missing:
        return f"{change.table} on the new writer lacks column(s) {', '.join(missing)}; reconcile the schema first"
    return None


def replay(report: Report, target: ReplayTarget, approved_by: str, writer: str,
           policies: Mapping[str, TablePolicy] | None = None, dry_run: bool = False) -> ReplayOutcome:
    """``policies``: table -> merge policy (``merge.policies_for``); tables without one are ``manual``."""
    outcome = ReplayOutcome(report.id, approved_by, writer, time.time(), dry_run=dry_run)
    afters = later_states(report)
    merging = {table: p for table, p in (policies or {}).items() if not p.is_manual}
    done = target.replayed(report.id)
    with target.session(dry_run):
        for t, tx in enumerate(report.transactions):
            if tx.id in done:
                outcome.transactions.append(TxOutcome(tx.id, "already_applied", 0, ("recorded by an earlier replay",)))
                continue
            outcome.transactions.append(_replay_one(report, t, target, afters, merging, approved_by, dry_run))
        for seq in report.schema.sequences_ahead_in_copy:
            if seq.get("copy") is None:
                continue
            # setval is not transactional: a dry run only says what it would advance
            if dry_run or target.advance_sequence(seq["sequence"], int(seq["copy"])):
                outcome.sequences_advanced.append(seq["sequence"])
    outcome.finished_at = time.time()
    return outcome


def _replay_one(report: Report, t: int, target: ReplayTarget, afters: dict[tuple[int, int], list[Expected]],
                merging: Mapping[str, TablePolicy], approved_by: str, dry_run: bool) -> TxOutcome:
    tx = report.transactions[t]
    problems = [f"{ch.table}: {ch.note or 'cannot be replayed automatically'}" for ch in tx.changes
                if ch.action == "manual"]
    problems += [p for ch in tx.changes if ch.action == "apply" for p in [_schema_problem(ch, target)] if p]
    if problems:
        return TxOutcome(tx.id, "refused", 0, tuple(dict.fromkeys(problems)))
    applied, resolutions = 0, []
    try:
        with target.transaction() as ttx:
            for c, ch in enumerate(tx.changes):
                if ch.action != "apply":
                    continue
                policy = merging.get(ch.table)
                if policy is None or ch.old_key:  # a key that moved is never merged
                    written = _apply_change(ttx, ch, afters.get((t, c), [after_state(ch)]))
                    applied += written
                    if written and dry_run:  # a dry run shows every write, not only the merged ones
                        resolutions.append(_shown(ch, "apply", ch.kind, ch.new or {},
                                                  ["the row is as the change expects (manual)"]))
                else:
                    count, resolution = _merge_change(ttx, ch, policy)
                    applied += count
                    resolutions.append(resolution)
            ttx.record(report.id, tx.id, approved_by)
    except Refused as exc:
        return TxOutcome(tx.id, "refused", 0, (str(exc),))
    except psycopg.Error as exc:
        return TxOutcome(tx.id, "refused", 0, (f"the new writer refused it: {str(exc).strip()}",))
    kept = any(r["outcome"] in ("resolved", "skipped") for r in resolutions)
    status = "applied" if applied else "resolved" if kept else "already_applied"
    return TxOutcome(tx.id, status, applied, resolutions=tuple(resolutions))


def _shown(ch: RowChange, outcome: str, action: str, write: Mapping[str, Any], why: list[str]) -> dict[str, Any]:
    return {"table": ch.table, "key": _target_key(ch), "kind": ch.kind, "outcome": outcome, "action": action,
            "write": dict(write), "why": why}


def _merge_change(ttx: TargetTx, ch: RowChange, policy: TablePolicy) -> tuple[int, dict[str, Any]]:
    """One change of a table with a merge policy: resolved against the row the writer holds now."""
    key = _target_key(ch)
    assert key is not None
    current = ttx.read(ch.table, key)
    before = before_state(ch)
    result = resolve(ch.kind, UNKNOWN_BEFORE if isinstance(before, _Unknown) else before,
                     None if ch.kind == DELETE else after_state(ch) or {}, current, policy)  # type: ignore[arg-type]
    shown = _shown(ch, result.outcome, result.action, result.write, list(result.why))
    if result.outcome == "conflict":
        raise Refused(f"{ch.table} {key}: " + "; ".join(result.why))
    if result.outcome != "apply":
        return 0, shown
    if result.action == "insert":
        ttx.insert(ch.table, result.write)
    elif result.action == "update":
        ttx.update(ch.table, key, result.write)
    else:
        ttx.delete(ch.table, key)
    return 1, shown


def _apply_change(ttx: TargetTx, ch: RowChange, afters: list[Expected]) -> int:
    key = _target_key(ch)
    assert key is not None
    current = ttx.read(ch.table, key)
    if ch.old_key:  # the key moved: the old row must go and the new key must be free (or already hold it)
        moved_to = ttx.read(ch.table, ch.key or {})
        if current is None and matches(moved_to, after_state(ch)):
            return 0
        if not matches(current, before_state(ch)) or moved_to is not None:
            raise Refused(f"{ch.table} {key}: the new writer no longer holds the row this key change expects")
        ttx.update(ch.table, key, after_state(ch))  # type: ignore[arg-type]
        return 1
    verdict = decide(current, before_state(ch), afters)
    if verdict == "done":
        return 0
    if verdict == "conflict":
        what = "is absent" if current is None else "holds other values"
        raise Refused(f"{ch.table} {key}: a lost {ch.kind} expects "
                      + ("no row" if ch.kind == INSERT else "the row as it was at the failover")
                      + f", but the new writer {what}")
    if ch.kind == INSERT:
        ttx.insert(ch.table, ch.new or {})
    elif ch.kind == UPDATE:
        ttx.update(ch.table, key, after_state(ch))  # type: ignore[arg-type]
    else:
        ttx.delete(ch.table, key)
    return 1


def replay_on(conn: psycopg.Connection[Any], report: Report, approved_by: str, writer: str,
              settings: Sequence[MergePolicySettings], dry_run: bool = False) -> ReplayOutcome:
    """Replay onto the writer behind ``conn`` with the settings' merge policies for the report's database,
    checked against the writer's tables first (a policy they cannot take is refused, naming it)."""
    tables = catalog.read_tables(conn)
    policies = merge.policies_for(settings, report.database)
    notes = merge.check_types(policies, {name: ({c.name: c.type for c in tables[name].columns}
                                                if name in tables else None) for name in policies})
    target = PgTarget(conn, tables)
    target.ensure_record()
    outcome = replay(report, target, approved_by, writer, policies, dry_run)
    outcome.notes.extend(notes)
    return outcome


class PgTarget:
    """The new writer over one psycopg connection (session settings from ``catalog.connect``)."""

    def __init__(self, conn: psycopg.Connection[Any], tables: dict[str, TableInfo]) -> None:
        self.conn = conn
        self.tables = tables

    def columns(self, table: str) -> tuple[str, ...] | None:
        info = self.tables.get(table)
        return None if info is None else info.column_names

    def ensure_record(self) -> None:
        """The writer's table of replayed transactions (in the ``regionctl`` schema, which reports skip)."""
        self.conn.execute("create schema if not exists regionctl")
        self.conn.execute(f"create table if not exists {RECORD} (report_id text not null, transaction_id text "
                          "not null, approved_by text not null, replayed_at timestamptz not null default now(), "
                          "primary key (report_id, transaction_id))")

    def replayed(self, report_id: str) -> set[str]:
        exists = self.conn.execute("select to_regclass(%s) is not null as found", (RECORD,)).fetchone()
        if not exists or not exists["found"]:
            return set()
        rows = self.conn.execute(f"select transaction_id from {RECORD} where report_id = %s", (report_id,))
        return {r["transaction_id"] for r in rows.fetchall()}

    @contextmanager
    def session(self, dry_run: bool) -> Iterator[None]:
        if not dry_run:
            yield
            return
        with self.conn.transaction():  # each lost transaction becomes a savepoint inside it
            yield
            raise psycopg.Rollback()

    @contextmanager
    def transaction(self) -> Iterator[TargetTx]:
        with self.conn.transaction():
            self.conn.execute("set local session_replication_role = replica")
            yield _PgTx(self.conn, self.tables)

    def advance_sequence(self, name: str, value: int) -> bool:
        row = self.conn.execute(sql.SQL("select last_value, is_called from {}").format(
            sql.Identifier(*split_qualified(name)))).fetchone()
        if row is None or (row["last_value"] >= value and row["is_called"]):
            return False
        self.conn.execute("select setval(%s::regclass, %s, true)", (name, value))
        return True


class _PgTx:
    def __init__(self, conn: psycopg.Connection[Any], tables: dict[str, TableInfo]) -> None:
        self.conn = conn
        self.tables = tables

    def _where(self, key: Row) -> sql.Composable:
        return sql.SQL(" and ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in key)

    def read(self, table: str, key: Row) -> Row | None:
        info = self.tables[table]
        cols = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in info.column_names)
        row = self.conn.execute(sql.SQL("select {} from {} where {} for update").format(
            cols, info.ident(), self._where(key)), list(key.values())).fetchone()
        return None if row is None else dict(zip(info.column_names, row.values(), strict=True))

    def insert(self, table: str, row: Row) -> None:
        info = self.tables[table]
        writable = [c for c in row if c in set(info.writable_columns)]
        self.conn.execute(sql.SQL("insert into {} ({}) overriding system value values ({})").format(
            info.ident(), sql.SQL(", ").join(map(sql.Identifier, writable)),
            sql.SQL(", ").join(sql.Placeholder() for _ in writable)), [row[c] for c in writable])

    def update(self, table: str, key: Row, values: Row) -> None:
        info = self.tables[table]
        writable = [c for c in values if c in set(info.writable_columns)]
        self.conn.execute(sql.SQL("update {} set {} where {}").format(
            info.ident(), sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in writable),
            self._where(key)), [values[c] for c in writable] + list(key.values()))

    def delete(self, table: str, key: Row) -> None:
        info = self.tables[table]
        self.conn.execute(sql.SQL("delete from {} where {}").format(info.ident(), self._where(key)),
                          list(key.values()))

    def record(self, report_id: str, transaction_id: str, approved_by: str) -> None:
        self.conn.execute(f"insert into {RECORD} (report_id, transaction_id, approved_by) values (%s, %s, %s)",
                          (report_id, transaction_id, approved_by))
