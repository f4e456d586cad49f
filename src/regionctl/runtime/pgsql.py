"""SQL to one PostgreSQL server by address: all the global plane needs to talk to a member (invariant 8).

No data directory and no binaries here: a ``PgEndpoint`` is where a server answers, seen from the caller (through
the link, for the global plane), and works the same whether the server runs on this host or another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from regionctl.errors import DatabaseError


@dataclass(frozen=True)
class PgEndpoint:
    """``passfile``: the libpq password file holding the superuser's SCRAM password (``runtime.pgpass``)."""

    name: str
    host: str
    port: int
    passfile: str | None = None

    def conninfo(self, dbname: str = "postgres", **extra: Any) -> str:
        parts = {"host": self.host, "port": self.port, "user": "postgres", "dbname": dbname, **extra}
        if self.passfile:
            parts["passfile"] = self.passfile
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def connect(self, dbname: str = "postgres", connect_timeout: float = 5, **kw: Any) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self.conninfo(dbname, connect_timeout=max(1, int(connect_timeout))),
                autocommit=True, row_factory=dict_row, **kw,
            )
        except psycopg.Error as exc:
            raise DatabaseError(f"{self.name} at {self.host}:{self.port}: {str(exc).strip()}") from None

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None,
              dbname: str = "postgres") -> list[dict[str, Any]]:
        with self.connect(dbname) as conn:
            try:
                cur = conn.execute(sql, params)
            except psycopg.Error as exc:
                raise DatabaseError(f"{self.name}: {str(exc).strip()}") from None
            return list(cur.fetchall()) if cur.description else []

    def scalar(self, sql: str, params: Sequence[Any] | None = None, dbname: str = "postgres") -> Any:
        rows = self.query(sql, params, dbname)
        return next(iter(rows[0].values())) if rows else None

    def in_recovery(self) -> bool:
        return bool(self.scalar("select pg_is_in_recovery()"))
