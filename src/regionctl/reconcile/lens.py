"""Domain lenses: a business view of the lost changes, configured by table names only.

The platform never imports the shop; its settings (``workload.lenses``) say which tables hold a "document" (an
order) and its lines (the order's items), and which columns to show. A lens turns row changes into one entry per
document: what happened to it, its fields as the old writer last had them, its lines, the transactions involved
and whether it conflicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from regionctl.config import LensSettings
from regionctl.reconcile.model import DELETE, INSERT, Conflict, LostTransaction, Row, RowChange
from regionctl.reconcile.testdecoding import normalise_table


@dataclass(frozen=True)
class LensConfig:
    name: str
    root_table: str  # "customer_order" or "public.customer_order"
    root_key: str
    fields: tuple[str, ...]
    child_table: str | None = None
    child_fk: str | None = None
    child_fields: tuple[str, ...] = ()


def configured(lenses: Sequence[LensSettings], database: str) -> tuple[LensConfig, ...]:
    """The lenses the settings (``workload.lenses``) give this database's reports."""
    return tuple(LensConfig(c.name, c.root_table, c.root_key, tuple(c.fields), c.child_table, c.child_fk,
                            tuple(c.child_fields)) for c in lenses if c.database == database)


def _table(name: str) -> str:
    return normalise_table(name if "." in name else f"public.{name}")


def _state(change: RowChange) -> Row | None:
    """The row as this change left it (deletes: as it was before)."""
    if change.kind == DELETE:
        return change.old
    if change.old is None:
        return change.new
    return {**change.old, **(change.new or {})}


def _status(kinds: list[str]) -> str:
    if kinds[0] == INSERT and kinds[-1] == DELETE:
        return "created and deleted"
    if kinds[-1] == DELETE:
        return "deleted"
    return "created" if kinds[0] == INSERT else "changed"


def build(config: LensConfig, transactions: Sequence[LostTransaction], conflicts: Sequence[Conflict]
          ) -> list[dict[str, Any]]:
    """One entry per document; its loop runs once per lost row change, so lookups are hoisted out of it."""
    root, child = _table(config.root_table), _table(config.child_table) if config.child_table else None
    root_key, child_fk = config.root_key, config.child_fk
    fields, child_fields = config.fields, config.child_fields
    docs: dict[str | None, _Doc] = {}
    for tx in transactions:
        for change in tx.changes:
            table = change.table
            if table == root:
                state = (change.new if change.old is None and change.kind != DELETE else _state(change)) or {}
                key = (change.key or {}).get(root_key)
                if key is None:  # the lens's key need not be the primary key
                    key = state.get(root_key)
                entry = docs.get(key)
                if entry is None:
                    entry = docs[key] = _Doc()
                entry.kinds.append(change.kind)
                entry.fields = {f: state[f] for f in fields if f in state} or entry.fields
            elif table == child and child_fk:
                state = (change.new if change.old is None and change.kind != DELETE else _state(change)) or {}
                parent = state.get(child_fk)
                entry = docs.get(parent)
                if entry is None:
                    entry = docs[parent] = _Doc()
                entry.lines[tuple((change.key or state).values())] = {
                    "change": change.kind, **{f: state[f] for f in child_fields if f in state}}
            else:
                continue
            entry.transactions[tx.id] = None
    conflicting = {c.key.get(root_key) for c in conflicts if c.table == root}
    conflicting |= {(c.new_row or c.key).get(child_fk or "") for c in conflicts if c.table == child}
    return [
        {root_key: key, "status": _status(d.kinds) if d.kinds else "lines changed", **d.fields,
         "lines": list(d.lines.values()), "transactions": list(d.transactions), "conflict": key in conflicting}
        for key, d in docs.items() if key is not None
    ]


@dataclass(slots=True)
class _Doc:
    kinds: list[str] = field(default_factory=list)
    fields: Row = field(default_factory=dict)
    lines: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    transactions: dict[str, None] = field(default_factory=dict)  # ordered set


def build_all(configs: Sequence[LensConfig], transactions: Sequence[LostTransaction],
              conflicts: Sequence[Conflict]) -> dict[str, list[dict[str, Any]]]:
    return {c.name: build(c, transactions, conflicts) for c in configs}
