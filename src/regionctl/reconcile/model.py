"""The missing-transaction report as data: dataclasses (plain slots for the per-row ones), JSON in and out.

Row values are PostgreSQL's text output of each column (``None`` is SQL NULL), exactly what test_decoding
prints and what ``col::text`` returns, so values from decoding, from the copy and from the new writer compare
as strings. A transaction is identified by where its commit ended on the old timeline, never by its xid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

Row = dict[str, "str | None"]
Key = tuple["str | None", ...]

INSERT, UPDATE, DELETE = "insert", "update", "delete"
KINDS = (INSERT, UPDATE, DELETE)


@dataclass(slots=True)  # tens of thousands per report: plain slots build ~6x faster than frozen ones
class RowChange:
    """One row changed by a lost transaction.

    ``new`` is the after-image (insert, update), ``old`` the before-image (update, delete): from decoding when
    the table logs full old rows, else the new writer's values when it still holds that version untouched
    (``old_source``). ``unchanged`` lists columns decoding could not print (unchanged TOAST values).
    """

    table: str
    kind: str
    key: Row | None
    new: Row | None = None
    old: Row | None = None
    old_key: Row | None = None  # an update that changed the primary key: the key before it
    old_source: str | None = None  # decoded | new_writer | None (unknown)
    unchanged: tuple[str, ...] = ()
    note: str | None = None
    action: str = "apply"  # apply | covered (a later lost change carries its effect) | manual (never replayed)

    def key_tuple(self, columns: tuple[str, ...]) -> Key | None:
        return None if self.key is None else tuple(self.key.get(c) for c in columns)


@dataclass(slots=True)
class LostTransaction:
    """A transaction committed on the old timeline after the divergence point.

    ``commit_lsn`` is the END of its commit record (what test_decoding prints; lost exactly when it is past
    the divergence point). ``xid`` is informational: the new writer reuses xids.
    """

    id: str
    commit_lsn: str | None
    commit_time: str | None
    xid: int | None
    tables: tuple[str, ...]
    changes: tuple[RowChange, ...]
    note: str | None = None


@dataclass(frozen=True)
class Conflict:
    """A row the new writer changed since the failover that a lost transaction also changed."""

    table: str
    key: Row
    transactions: tuple[str, ...]
    lost_kinds: tuple[str, ...]
    new_writer: str  # changed | deleted | inserted | present
    new_row: Row | None
    reason: str
    resolution: dict[str, Any] | None = None  # what replay would do under the merge policies (merge.propose)


@dataclass(frozen=True)
class ColumnDiff:
    table: str
    column: str
    copy: str | None  # "type [not null] [default ...]" on the copy; None: absent
    new_writer: str | None


@dataclass(frozen=True)
class SchemaDiff:
    tables_only_in_copy: tuple[str, ...] = ()
    tables_only_in_new_writer: tuple[str, ...] = ()
    columns: tuple[ColumnDiff, ...] = ()
    constraints: tuple[dict[str, Any], ...] = ()
    indexes: tuple[dict[str, Any], ...] = ()
    sequences_ahead_in_copy: tuple[dict[str, Any], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.tables_only_in_copy or self.tables_only_in_new_writer or self.columns
                    or self.constraints or self.indexes)


@dataclass(frozen=True)
class TableMeta:
    """A table as the copy knows it: column types and primary key (used to render and replay)."""

    columns: dict[str, str]
    key: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    id: str
    database: str
    former_writer: str
    new_writer: str
    promotion_id: str | None
    created_at: str
    method: str  # slot | wal | diff
    method_trail: tuple[str, ...]
    complete: bool
    divergence_lsn: str | None
    old_timeline: int | None
    new_timeline: int | None
    source: dict[str, Any]
    window: dict[str, Any]
    lag_before: dict[str, Any]
    counts: dict[str, dict[str, int]]
    tables: dict[str, TableMeta]
    transactions: tuple[LostTransaction, ...]
    conflicts: tuple[Conflict, ...]
    schema: SchemaDiff
    lenses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def change_count(self) -> int:
        return sum(len(t.changes) for t in self.transactions)

    def summary(self) -> dict[str, Any]:
        return {
            "report_id": self.id, "database": self.database, "former_writer": self.former_writer,
            "new_writer": self.new_writer, "method": self.method, "complete": self.complete,
            "created_at": self.created_at, "divergence_lsn": self.divergence_lsn,
            "lost_transactions": len(self.transactions), "row_changes": self.change_count,
            "conflicts": len(self.conflicts), "schema_differences": not self.schema.empty,
            "rpo_seconds": self.window.get("rpo_seconds"), "promotion_id": self.promotion_id,
            "resolutions": self.resolution_counts(),
        }

    def resolution_counts(self) -> dict[str, int]:
        """How many conflicts replay would apply, resolve without writing, or refuse under the merge policies
        the report was made with (its proposals): what an operator weighs before approving."""
        counts: dict[str, int] = {}
        for conflict in self.conflicts:
            outcome = (conflict.resolution or {}).get("outcome", "refused")
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return orjson.loads(self.to_bytes())

    def to_json(self) -> str:
        return self.to_bytes().decode()

    def to_bytes(self) -> bytes:
        """UTF-8 JSON; orjson writes the nested dataclasses in C: reports hold tens of thousands of changes."""
        return orjson.dumps(self)


def _row(value: Any) -> Row | None:
    return None if value is None else {str(k): v for k, v in value.items()}


def change_from_dict(raw: dict[str, Any]) -> RowChange:
    return RowChange(
        table=raw["table"], kind=raw["kind"], key=_row(raw.get("key")), new=_row(raw.get("new")),
        old=_row(raw.get("old")), old_key=_row(raw.get("old_key")), old_source=raw.get("old_source"),
        unchanged=tuple(raw.get("unchanged", ())), note=raw.get("note"), action=raw.get("action", "apply"),
    )


def report_from_json(text: str | bytes) -> Report:
    raw = orjson.loads(text)
    raw["transactions"] = tuple(
        LostTransaction(**{**t, "tables": tuple(t["tables"]),
                           "changes": tuple(change_from_dict(c) for c in t["changes"])})
        for t in raw["transactions"]
    )
    raw["conflicts"] = tuple(
        Conflict(**{**c, "transactions": tuple(c["transactions"]), "lost_kinds": tuple(c["lost_kinds"])})
        for c in raw["conflicts"]
    )
    schema = raw["schema"]
    raw["schema"] = SchemaDiff(
        tables_only_in_copy=tuple(schema.get("tables_only_in_copy", ())),
        tables_only_in_new_writer=tuple(schema.get("tables_only_in_new_writer", ())),
        columns=tuple(ColumnDiff(**c) for c in schema.get("columns", ())),
        constraints=tuple(schema.get("constraints", ())), indexes=tuple(schema.get("indexes", ())),
        sequences_ahead_in_copy=tuple(schema.get("sequences_ahead_in_copy", ())),
    )
    raw["tables"] = {name: TableMeta(t["columns"], tuple(t["key"])) for name, t in raw["tables"].items()}
    for name in ("method_trail", "warnings"):
        raw[name] = tuple(raw.get(name, ()))
    return Report(**raw)
