"""Schema differences between the copy and the new writer.

DDL is invisible to test_decoding: a lost ``ALTER TABLE ... ADD COLUMN`` shows up only as a column the copy has
and the new writer lacks, so lost rows carrying it cannot be replayed until the schema is reconciled. Sequences
the copy advanced further matter too: replayed rows hold values the new writer's sequences would hand out again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regionctl.reconcile.catalog import Column, TableInfo
from regionctl.reconcile.model import ColumnDiff, SchemaDiff


def describe(column: Column) -> str:
    text = column.type + (" not null" if column.not_null else "")
    return text + (f" default {column.default}" if column.default is not None else "")


def schema_diff(copy: Mapping[str, TableInfo], new: Mapping[str, TableInfo],
                copy_constraints: Mapping[tuple[str, str], str], new_constraints: Mapping[tuple[str, str], str],
                copy_indexes: Mapping[tuple[str, str], str], new_indexes: Mapping[tuple[str, str], str],
                copy_sequences: Mapping[str, int | None], new_sequences: Mapping[str, int | None]) -> SchemaDiff:
    columns = []
    for name in sorted(set(copy) & set(new)):
        mine = {c.name: describe(c) for c in copy[name].columns}
        theirs = {c.name: describe(c) for c in new[name].columns}
        for col in sorted(set(mine) | set(theirs)):
            if mine.get(col) != theirs.get(col):
                columns.append(ColumnDiff(name, col, mine.get(col), theirs.get(col)))
    return SchemaDiff(
        tables_only_in_copy=tuple(sorted(set(copy) - set(new))),
        tables_only_in_new_writer=tuple(sorted(set(new) - set(copy))),
        columns=tuple(columns),
        constraints=_definitions(copy_constraints, new_constraints, "constraint"),
        indexes=_definitions(copy_indexes, new_indexes, "index"),
        sequences_ahead_in_copy=tuple(
            {"sequence": seq, "copy": value, "new_writer": new_sequences.get(seq)}
            for seq, value in sorted(copy_sequences.items())
            if value is not None and (new_sequences.get(seq) is None or value > (new_sequences.get(seq) or 0))
        ),
    )


def _definitions(copy: Mapping[tuple[str, str], str], new: Mapping[tuple[str, str], str],
                 label: str) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"table": table, label: name, "copy": copy.get((table, name)), "new_writer": new.get((table, name))}
        for table, name in sorted(set(copy) | set(new)) if copy.get((table, name)) != new.get((table, name))
    )
