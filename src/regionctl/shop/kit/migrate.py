"""Idempotent, versioned schema migrations applied to the writer at start, retried until the writer answers.

Both regions' services migrate the same global database through the same writer; an advisory lock makes them
take turns, and a versions table makes a second run a no-op. Readiness stays false until the schema is there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from regionctl.shop.kit.db import Conn, Database
from regionctl.shop.kit.retry import backoff_s

log = logging.getLogger(__name__)
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
            conn.execute(self.sql)  # type: ignore[arg-type]  # our own constant SQL
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


class MigrationRunner:
    """Applies migrations in a background thread, retrying forever with backoff until they succeed."""

    def __init__(self, db: Database, component: str, migrations: Sequence[Migration], max_delay_s: float = 2.0):
        self.db = db
        self.component = component
        self.migrations = list(migrations)
        self.max_delay_s = max_delay_s
        self.done = threading.Event()
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def target_version(self) -> int:
        return max(m.version for m in self.migrations)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"migrate-{self.component}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> bool:
        try:
            applied = apply_migrations(self.db, self.component, self.migrations)
        except Exception as exc:
            self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("migrations of %s not applied yet: %s", self.component, self.last_error)
            return False
        self.last_error = None
        self.done.set()
        log.info("schema of %s is current", self.component, extra={"applied": str(applied)})
        return True

    def _loop(self) -> None:
        attempt = 0
        while not self._stop.is_set() and not self.run_once():
            attempt += 1
            self._stop.wait(backoff_s(attempt, base_s=0.2, cap_s=self.max_delay_s))

    def status(self) -> str:
        """For readiness: raises while the schema is not applied, naming the last error."""
        if self.done.is_set():
            return f"schema v{self.target_version}"
        raise RuntimeError(f"migrations pending: {self.last_error or 'not attempted yet'}")
