"""Merge policies: how a lost change that meets a row the new writer changed since is resolved.

A table without a policy keeps replay's own rule (``manual``): the row must still look as the lost change
expects, or the whole transaction is refused. A table with a policy is merged column by column, three ways:
what the old writer had before the lost change, what the change wrote, what the new writer holds now. A column
the change did not touch keeps the new writer's value; one where the new writer still holds the before takes the
lost value; one that already holds the lost value needs nothing; anything else is a conflict its rule resolves:

    manual     refused (the operator decides)
    delta      numeric: now + (lost after - lost before): both sides' increments count (a new row's before is 0)
    keep-new   the new writer's value stays; the lost change is listed as resolved, not applied
    keep-lost  the lost value is written over the new writer's
    lww        the side whose ``timestamp`` column is later wins; a tie keeps the new writer's
    skip       (a whole table) every change is listed, never applied: the application re-derives the table

A lost delete of a row the new writer changed, or a lost update of a row it deleted, is a whole-row question:
the table's rule decides (keep-new, keep-lost, lww on the timestamp; delta and manual refuse). Pure functions:
``resolve`` is what the property tests and ``replay --dry-run`` exercise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from regionctl.config import MergePolicySettings
from regionctl.errors import InputError
from regionctl.reconcile.model import DELETE, INSERT, Conflict, LostTransaction, Row, RowChange

MANUAL, DELTA, KEEP_NEW, KEEP_LOST, LWW, SKIP = "manual", "delta", "keep-new", "keep-lost", "lww", "skip"
MERGES = (MANUAL, DELTA, KEEP_NEW, KEEP_LOST, LWW, SKIP)
COLUMN_MERGES = (MANUAL, DELTA, KEEP_NEW, KEEP_LOST, LWW)  # skip is for a whole table
NUMERIC_TYPES = frozenset({"smallint", "integer", "bigint", "numeric", "real", "double precision", "money"})


@dataclass(frozen=True)
class Rule:
    merge: str
    timestamp: str | None = None  # lww: the column that orders the two sides

    def describe(self) -> str:
        return f"{self.merge} on {self.timestamp}" if self.merge == LWW else self.merge


@dataclass(frozen=True)
class TablePolicy:
    """A table's rule (for columns without one of their own) and its columns' rules."""

    table: Rule = Rule(MANUAL)
    columns: Mapping[str, Rule] = field(default_factory=dict)

    @property
    def is_manual(self) -> bool:
        return self.table.merge == MANUAL and not self.columns

    def rule(self, column: str) -> Rule:
        return self.columns.get(column, self.table)


@dataclass(frozen=True)
class Resolution:
    """What to do with one lost change: ``apply`` (``write``: the values an update sets, the row an insert adds;
    a delete writes nothing), ``done`` (the writer already holds its effect), ``resolved`` (a policy keeps the
    writer as it is), ``skipped`` (the table is re-derived), ``conflict`` (refused). ``why`` says per column."""

    outcome: str
    action: str = "none"  # insert | update | delete | none
    write: Row = field(default_factory=dict)
    why: tuple[str, ...] = ()


class _Unknown:
    pass


UNKNOWN_BEFORE = _Unknown()


def resolve(kind: str, before: Row | None | _Unknown, after: Row | None, current: Row | None,
            policy: TablePolicy) -> Resolution:
    """The resolution of a lost ``kind`` change (before/after images; ``UNKNOWN_BEFORE`` when the before-image
    could not be recovered) against the row the new writer holds now (None: absent), under ``policy``."""
    if policy.table.merge == SKIP:
        return Resolution("skipped", why=("the application re-derives this table (skip)",))
    if kind == DELETE:
        return _delete(before, current, policy)
    if kind == INSERT or before is None:
        before = {}
    assert after is not None
    if current is None:
        return _absent(kind, after, policy)
    if isinstance(before, _Unknown):
        return _whole_row(after, current, policy)
    return _columns(before, after, current, policy)


def _columns(before: Row, after: Row, current: Row, policy: TablePolicy) -> Resolution:
    write: Row = {}
    why: list[str] = []
    conflicts: list[str] = []
    kept = False
    for column, lost in after.items():
        old, now = before.get(column), current.get(column)
        if column in before and old == lost:
            continue  # the lost change did not touch it
        rule = policy.rule(column)
        if rule.merge == DELTA:  # an increment is never "already there": equal values may be two increments
            value, reason = _merge_column(rule, column, old, lost, now, after, current)
            if value is _CONFLICT:
                conflicts.append(reason)
            elif value != now:
                write[column] = value  # type: ignore[assignment]
                why.append(reason)
            continue
        if now == lost:
            continue  # already there
        if now == old and column in current:
            write[column] = lost  # only the lost side changed it
            continue
        value, reason = _merge_column(rule, column, old if column in before else None, lost, now, after, current)
        if value is _CONFLICT:
            conflicts.append(reason)
        elif value is _KEEP:
            kept = True
            why.append(reason)
        else:
            write[column] = value  # type: ignore[assignment]
            why.append(reason)
    if conflicts:
        return Resolution("conflict", why=tuple(conflicts))
    if write:
        return Resolution("apply", "update", write, tuple(why))
    return Resolution("resolved" if kept else "done", why=tuple(why))


class _Marker:
    pass


_CONFLICT, _KEEP = _Marker(), _Marker()


def _merge_column(rule: Rule, column: str, old: str | None, lost: str | None, now: str | None, after: Row,
                  current: Row) -> tuple[str | None | _Marker, str]:
    if rule.merge == DELTA:
        total = delta(old, lost, now)
        if total is None:
            return _CONFLICT, (f"{column}: delta needs numbers on both sides (before {old!r}, lost {lost!r}, "
                               f"now {now!r})")
        return total, f"{column}: delta {now} + ({lost} - {old or 0}) = {total}"
    if rule.merge == KEEP_NEW:
        return _KEEP, f"{column}: keep-new keeps {now!r} (the lost change wrote {lost!r})"
    if rule.merge == KEEP_LOST:
        return lost, f"{column}: keep-lost writes {lost!r} over {now!r}"
    if rule.merge == LWW:
        assert rule.timestamp is not None
        later = later_side(after.get(rule.timestamp), current.get(rule.timestamp))
        if later is None:
            return _CONFLICT, f"{column}: lww cannot order {rule.timestamp} {after.get(rule.timestamp)!r} and " \
                              f"{current.get(rule.timestamp)!r}"
        if later == "lost":
            return lost, f"{column}: lww on {rule.timestamp}: the lost change is later, writes {lost!r}"
        return _KEEP, f"{column}: lww on {rule.timestamp}: the new writer is as late or later, keeps {now!r}"
    return _CONFLICT, f"{column}: the new writer holds {now!r}, the lost change expects {old!r} (manual)"


def _whole_row(after: Row, current: Row, policy: TablePolicy) -> Resolution:
    """A lost update whose before-image is unknown: which columns it touched cannot be told, so only a rule for
    the whole row decides (keep-new, keep-lost, lww); a column rule (delta) needs the before."""
    if _holds(current, after):
        return Resolution("done")
    rule = policy.table
    if rule.merge == KEEP_NEW:
        return Resolution("resolved", why=("keep-new: the new writer's row stays",))
    if rule.merge == KEEP_LOST:
        changed = {c: v for c, v in after.items() if current.get(c) != v}
        return Resolution("apply", "update", changed, ("keep-lost: the lost row is written over the new writer's",))
    if rule.merge == LWW and rule.timestamp is not None:
        if later_side(after.get(rule.timestamp), current.get(rule.timestamp)) == "lost":
            changed = {c: v for c, v in after.items() if current.get(c) != v}
            return Resolution("apply", "update", changed, (f"lww on {rule.timestamp}: the lost row is later",))
        return Resolution("resolved", why=(f"lww on {rule.timestamp}: the new writer's row is as late or later",))
    return Resolution("conflict", why=("the row as it was before the lost change is not known (a delta needs it: "
                                       "give the table REPLICA IDENTITY FULL)",))


def _absent(kind: str, after: Row, policy: TablePolicy) -> Resolution:
    if kind == INSERT:
        return Resolution("apply", "insert", dict(after))
    rule = policy.table  # a lost update of a row the new writer deleted
    if rule.merge == KEEP_LOST:
        return Resolution("apply", "insert", dict(after), ("keep-lost: the row the new writer deleted is restored",))
    if rule.merge == KEEP_NEW:
        return Resolution("resolved", why=("keep-new: the row stays deleted",))
    return Resolution("conflict", why=(f"the new writer deleted the row this lost update changes ({rule.describe()})",))


def _delete(before: Row | None | _Unknown, current: Row | None, policy: TablePolicy) -> Resolution:
    if current is None:
        return Resolution("done")
    if isinstance(before, dict) and _holds(current, before):
        return Resolution("apply", "delete")
    rule = policy.table
    if rule.merge == KEEP_LOST:
        return Resolution("apply", "delete", why=("keep-lost: deleted although the new writer changed it",))
    if rule.merge == KEEP_NEW:
        return Resolution("resolved", why=("keep-new: the row the new writer changed stays",))
    if rule.merge == LWW and isinstance(before, dict) and rule.timestamp is not None:
        if later_side(before.get(rule.timestamp), current.get(rule.timestamp)) == "lost":
            return Resolution("apply", "delete", why=(f"lww on {rule.timestamp}: the lost delete is later",))
        return Resolution("resolved", why=(f"lww on {rule.timestamp}: the new writer changed it later",))
    return Resolution("conflict", why=(f"the new writer changed the row this lost delete removes ({rule.describe()})",))


def _holds(current: Row, expected: Row) -> bool:
    return all(current.get(c) == v for c, v in expected.items() if c in current)


def delta(before: str | None, lost: str | None, now: str | None) -> str | None:
    """``now + (lost - before)`` in exact decimal arithmetic, as text; None when a side is not a number (a
    before of None is a row that did not exist: 0)."""
    try:
        base = Decimal(0) if before is None else Decimal(before)
        if lost is None or now is None:
            return None
        total = Decimal(now) + (Decimal(lost) - base)
    except InvalidOperation:
        return None
    if not total.is_finite():
        return None
    return format(total, "f")


def later_side(lost: str | None, now: str | None) -> str | None:
    """"lost" or "new" (also on a tie): which timestamp is later; None when they cannot be ordered."""
    a, b = _instant(lost), _instant(now)
    if a is None or b is None or type(a) is not type(b):
        return None
    return "lost" if a > b else "new"  # type: ignore[operator]


def _instant(text: str | None) -> Decimal | datetime | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        pass
    value = text.strip().replace(" ", "T", 1)
    if len(value) >= 3 and value[-3] in "+-" and value[-2:].isdigit():
        value += ":00"  # PostgreSQL prints "+00"; Python wants "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def propose(transactions: Sequence[LostTransaction], conflicts: Sequence[Conflict],
            policies: Mapping[str, TablePolicy]) -> tuple[Conflict, ...]:
    """Each conflict with the resolution replay would make of it now: its row's lost changes resolved in commit
    order from the new writer's row (``policy``, ``outcome``, the values it would ``write``, ``why``)."""
    changes: dict[tuple[str, str], list[RowChange]] = {}
    for tx in transactions:
        for ch in tx.changes:
            key = ch.old_key or ch.key
            if ch.action == "apply" and key is not None:
                changes.setdefault((ch.table, repr(sorted(key.items()))), []).append(ch)
    out = []
    for conflict in conflicts:
        policy = policies.get(conflict.table, TablePolicy())
        steps = changes.get((conflict.table, repr(sorted(conflict.key.items()))), [])
        out.append(replace(conflict, resolution=_proposal(steps, conflict.new_row, policy)))
    return tuple(out)


def _proposal(steps: Sequence[RowChange], new_row: Row | None, policy: TablePolicy) -> dict[str, Any]:
    described = ", ".join([policy.table.describe(), *(f"{c}: {r.describe()}" for c, r in policy.columns.items())])
    if policy.is_manual:
        return {"policy": "manual", "outcome": "refused", "write": {},
                "why": ["no merge policy for this table: replay refuses the transaction"]}
    current, outcome = new_row, "done"
    why: list[str] = []
    for ch in steps:
        before: Row | None | _Unknown = None if ch.kind == INSERT else ch.old
        if ch.kind != INSERT and (ch.old is None or ch.old_source not in ("new_writer", "lost_transaction",
                                                                           "decoded")):
            before = UNKNOWN_BEFORE
        after = None if ch.kind == DELETE else {**(ch.old or {}), **(ch.new or {})}
        result = resolve(ch.kind, before, after, current, policy)
        why += result.why
        if result.outcome == "conflict":
            return {"policy": described, "outcome": "refused", "write": {}, "why": why}
        if result.outcome == "apply":
            outcome = "apply"
            current = (None if result.action == "delete" else dict(result.write) if result.action == "insert"
                       else {**(current or {}), **result.write})
        elif outcome != "apply":
            outcome = result.outcome
    write = {} if current is None else {c: v for c, v in current.items() if (new_row or {}).get(c) != v}
    return {"policy": described, "outcome": "delete" if outcome == "apply" and current is None else outcome,
            "write": write, "why": why}


def policies_for(entries: Sequence[MergePolicySettings], database: str) -> dict[str, TablePolicy]:
    """``reconcile.policies`` of the settings folded per table of ``database`` (qualified ``schema.table``)."""
    tables: dict[str, tuple[Rule, dict[str, Rule]]] = {}
    for entry in entries:
        if entry.database != database:
            continue
        table = entry.table if "." in entry.table else f"public.{entry.table}"
        rule = Rule(entry.merge, entry.timestamp)
        own, columns = tables.get(table, (Rule(MANUAL), {}))
        if entry.columns:
            columns.update({c: rule for c in entry.columns})
        else:
            own = rule
        tables[table] = (own, columns)
    return {t: TablePolicy(own, columns) for t, (own, columns) in tables.items()}


def check_types(policies: Mapping[str, TablePolicy], types: Mapping[str, Mapping[str, str] | None]) -> list[str]:
    """Refuse, naming the policy, one the writer's tables cannot take: an unknown column, a delta on a column
    that is not a number. A table the writer lacks is only noted (returned): the default policies name the
    shop's tables, which another workload does not have. ``types``: table -> column -> type (None: absent)."""
    problems, notes = [], []
    for table, policy in policies.items():
        columns = types.get(table)
        if columns is None:
            notes.append(f"reconcile.policies: {table} does not exist on the writer; its rule applies to nothing")
            continue
        named = [*policy.columns, *(r.timestamp for r in (policy.table, *policy.columns.values()) if r.timestamp)]
        problems += [f"reconcile.policies: {table} has no column {c}" for c in named if c not in columns]
        for column, rule in policy.columns.items():
            kind = columns.get(column, "").split("(")[0].strip()
            if rule.merge == DELTA and column in columns and kind not in NUMERIC_TYPES:
                problems.append(f"reconcile.policies: delta on {table}.{column}, a {columns[column]}: "
                                "only numeric columns can take a difference")
    if problems:
        raise InputError("; ".join(problems), "reconcile.policies")
    return notes
