"""Idempotent, versioned schema migrations applied to the writer at start, retried until the writer answers.

Both regions' services migrate the same global database through the same writer; an advisory lock makes them
take turns, and a versions table makes a second run a no-op. Readiness stays false until the schema is there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from regionctl.shop.kit.background import StartupTask
from regionctl.shop.kit.db import Conn, Database

VERSIONS_TABLE = "shop_schema_migrations"


@dataclass(frozen=True)
class Migration:
    """A schema step: constant SQL, or a function for steps that need parameters (seed data)."""

    version: int
    name: str
    sql: str = ""
    fn: Callable[[Conn], None] | None = None

    def apply(self, conn: Conn) -> None:
        if self.sql:
            conn.execute(self.sql)  # our own constant SQL
        if self.fn is not None:
            self.fn(conn)


def pending(applied: set[int], migrations: Sequence[Migration]) -> list[Migration]:
    """The migrations not yet applied, in version order (versions must be unique)."""
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {versions}")
    return sorted((m for m in migrations if m.version not in applied), key=lambda m: m.version)


def schema_version(conn: Conn, component: str) -> int | None:
    """The highest applied version for ``component`` on this member (reader or writer), None if none."""
    row = conn.execute("select to_regclass(%s) is not null as present", (VERSIONS_TABLE,)).fetchone()
    if not row or not row["present"]:
        return None
    row = conn.execute(f"select max(version) as v from {VERSIONS_TABLE} where component = %s", (component,)).fetchone()
    return None if row is None or row["v"] is None else int(row["v"])


def apply_migrations(db: Database, component: str, migrations: Sequence[Migration]) -> list[int]:
    """Apply what is missing in one transaction under an advisory lock; return the versions applied."""

    def migrate(conn: Conn) -> list[int]:
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"regionctl-shop-migrate:{component}",))
        conn.execute(
            f"create table if not exists {VERSIONS_TABLE} (component text not null, version int not null, "
            "name text not null, applied_at timestamptz not null default now(), primary key (component, version))"
        )
        rows = conn.execute(f"select version from {VERSIONS_TABLE} where component = %s", (component,)).fetchall()
        done = []
        for migration in pending({int(r["version"]) for r in rows}, migrations):
            migration.apply(conn)
            conn.execute(f"insert into {VERSIONS_TABLE} (component, version, name) values (%s, %s, %s)",
                         (component, migration.version, migration.name))
            done.append(migration.version)
        return done

    return db.run(migrate)


def migration_task(db: Database, component: str, migrations: Sequence[Migration]) -> StartupTask:
    """Migrations applied at start in the background, retried until the writer answers."""
    return StartupTask(f"migrations of {component}", lambda: apply_migrations(db, component, migrations))
