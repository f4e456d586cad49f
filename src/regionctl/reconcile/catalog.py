"""What a database holds, read once: user tables with their columns, keys and files; sequences; constraints.

Both sides (the copy and the new writer) are read the same way so their schemas can be compared and rows
fetched by the same column lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from regionctl.reconcile.testdecoding import qualified, split_qualified

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "regionctl")  # regionctl: replay's own record
SESSION_SETTINGS = {
    # Values print the same in decoding, in the copy and on the new writer only under the same settings.
    "TimeZone": "UTC", "DateStyle": "ISO, MDY", "IntervalStyle": "postgres", "extra_float_digits": "1",
    "bytea_output": "hex", "statement_timeout": "0",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type with typmod: what a cast or a schema diff needs
    not_null: bool
    default: str | None
    generated: bool = False  # GENERATED ... STORED: never written directly


@dataclass(frozen=True)
class TableInfo:
    name: str  # schema-qualified, quoted as PostgreSQL would
    oid: int
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # primary key columns; () when the table has none
    filenode: int | None
    tablespace: int
    replica_identity: str  # d(efault) n(othing) f(ull) i(ndex)
    rows_estimate: int

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def writable_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.generated)

    def types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.columns}

    def ident(self) -> sql.Composable:
        schema, rel = split_qualified(self.name)
        return sql.Identifier(schema, rel)


def connect(conninfo: str, **kw: Any) -> psycopg.Connection[Any]:
    """A session whose value formatting matches test_decoding's (see SESSION_SETTINGS)."""
    options = " ".join(f"-c {k.lower()}={v.replace(' ', chr(92) + ' ')}" for k, v in SESSION_SETTINGS.items())
    return psycopg.connect(conninfo, autocommit=True, row_factory=dict_row, options=options, **kw)


def read_tables(conn: psycopg.Connection[Any]) -> dict[str, TableInfo]:
    rows = conn.execute(
        """
        select c.oid, n.nspname, c.relname, pg_relation_filenode(c.oid) as filenode, c.reltablespace,
               c.relreplident, greatest(c.reltuples, 0)::bigint as rows_estimate,
               coalesce((select array_agg(a.attname order by k.ord)
                         from pg_index i cross join lateral unnest(i.indkey) with ordinality k(attnum, ord)
                         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                         where i.indrelid = c.oid and i.indisprimary), '{}') as key
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p') and n.nspname <> all(%s) and n.nspname not like 'pg_temp%%'
        order by n.nspname, c.relname
        """,
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    columns = _columns(conn)
    return {
        qualified(r["nspname"], r["relname"]): TableInfo(
            name=qualified(r["nspname"], r["relname"]), oid=r["oid"], columns=tuple(columns.get(r["oid"], ())),
            key=tuple(r["key"]), filenode=r["filenode"], tablespace=r["reltablespace"],
            replica_identity=r["relreplident"], rows_estimate=r["rows_estimate"],
        )
        for r in rows
    }


def _columns(conn: psycopg.Connection[Any]) -> dict[int, list[Column]]:
    rows = conn.execute(
        """
        select a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid) as default, a.attgenerated <> '' as generated
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p') and n.nspname <> all(%s)
        order by a.attrelid, a.attnum
        """,
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    found: dict[int, list[Column]] = {}
    for r in rows:
        found.setdefault(r["attrelid"], []).append(Column(r["attname"], r["type"], r["attnotnull"], r["default"],
                                                          r["generated"]))
    return found


def read_constraints(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], str]:
    rows = conn.execute(
        """
        select n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid) as def
        from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname <> all(%s)
        """,
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    return {(qualified(r["nspname"], r["relname"]), r["conname"]): r["def"] for r in rows}


def read_indexes(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], str]:
    rows = conn.execute(
        "select schemaname, tablename, indexname, indexdef from pg_indexes "
        "where schemaname <> all(%s)",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    return {(qualified(r["schemaname"], r["tablename"]), r["indexname"]): r["indexdef"] for r in rows}


def read_sequences(conn: psycopg.Connection[Any]) -> dict[str, int | None]:
    rows = conn.execute(
        "select schemaname, sequencename, last_value from pg_sequences "
        "where schemaname <> all(%s)",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    return {qualified(r["schemaname"], r["sequencename"]): r["last_value"] for r in rows}


def database_oid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("select oid from pg_database where datname = current_database()").fetchone()
    assert row is not None
    return int(row["oid"])
