"""Where the control panel lives: a small protocol, a durable SQLite store and an in-memory fake.

The protocol is what a quorum store or AWS ARC would implement instead. A commit replaces the panel only if its
version is still the one the change was decided on (compare-and-swap), and writes the audit entry in the same
transaction, so a change is never applied without its record nor recorded without being applied.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from regionctl.errors import ConfigError, ConflictError
from regionctl.routing.model import (
    Panel,
    PanelSpec,
    RoutingControl,
    RuleConfig,
    RuleKind,
    RuleType,
    SafetyRule,
    new_panel,
)


@dataclass(frozen=True)
class AuditRecord:
    """Who did what, with what outcome, and everything needed to explain it later (``detail``)."""

    at: float
    actor: str
    action: str  # change | rule-put | rule-delete | panel-created
    outcome: str  # applied | refused | no-op
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    record: AuditRecord


class ControlStore(Protocol):
    def load(self) -> Panel: ...

    def commit(self, panel: Panel, expected_version: int, record: AuditRecord) -> AuditEntry:
        """Store ``panel`` (its version already bumped) if the stored version is ``expected_version``."""
        ...

    def append_audit(self, record: AuditRecord) -> AuditEntry: ...

    def audit(self, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        """Newest first."""
        ...


def rule_to_dict(rule: SafetyRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "kind": rule.kind.value,
        "controls": list(rule.watched),
        "targets": list(rule.targets),
        "type": rule.config.type.value,
        "threshold": rule.config.threshold,
        "inverted": rule.config.inverted,
        "wait_period_s": rule.wait_period_s,
    }


def rule_from_dict(data: dict[str, Any]) -> SafetyRule:
    return SafetyRule(
        name=str(data["name"]),
        kind=RuleKind(data["kind"]),
        watched=tuple(data["controls"]),
        targets=tuple(data.get("targets", ())),
        config=RuleConfig(RuleType(data["type"]), int(data.get("threshold", 1)), bool(data.get("inverted", False))),
        wait_period_s=float(data.get("wait_period_s", 5.0)),
    )


def check_matches_spec(panel: Panel, spec: PanelSpec, where: str) -> None:
    """A stored panel whose controls differ from this deployment's regions is refused, never silently merged."""
    if set(panel.controls) != set(spec.controls):
        raise ConfigError(
            f"the routing store at {where} has controls {sorted(panel.controls)} but this deployment needs "
            f"{sorted(spec.controls)}; move the store away to start a new control panel"
        )


class MemoryControlStore:
    """The in-memory fake used by unit tests; same contract as the SQLite store."""

    def __init__(self, spec: PanelSpec) -> None:
        self._panel = new_panel(spec)
        self._audit: list[AuditEntry] = []
        self._lock = threading.Lock()

    def load(self) -> Panel:
        return self._panel

    def commit(self, panel: Panel, expected_version: int, record: AuditRecord) -> AuditEntry:
        with self._lock:
            if self._panel.version != expected_version:
                raise ConflictError(f"the control panel changed meanwhile (version {self._panel.version}); retry")
            self._panel = replace(panel, version=expected_version + 1)
            return self._append(record)

    def append_audit(self, record: AuditRecord) -> AuditEntry:
        with self._lock:
            return self._append(record)

    def _append(self, record: AuditRecord) -> AuditEntry:
        entry = AuditEntry(len(self._audit) + 1, record)
        self._audit.append(entry)
        return entry

    def audit(self, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        entries = [e for e in reversed(self._audit) if before_id is None or e.id < before_id]
        return entries[:limit]


SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS controls (name TEXT PRIMARY KEY, is_on INTEGER NOT NULL, changed_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rules (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    outcome TEXT NOT NULL, summary TEXT NOT NULL, detail TEXT NOT NULL
);
"""


class SqliteControlStore:
    """The control panel in one SQLite file (WAL, synchronous=FULL): durable across restarts of the control API."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open(cls, path: Path, spec: PanelSpec, now: float) -> SqliteControlStore:
        """Open the store, creating the panel from ``spec`` on first use (recorded in the audit log)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(path)
        schema = sqlite3.connect(path, timeout=10)
        try:
            schema.executescript(SCHEMA)  # executescript commits by itself, so it runs outside our transaction
        finally:
            schema.close()
        with store._tx() as db:
            if db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone() is None:
                panel = new_panel(spec)
                store._write_panel(db, panel)
                store._insert_audit(db, AuditRecord(
                    now, "regionctl", "panel-created", "applied",
                    f"control panel created: {', '.join(f'{c.name} {c.state}' for c in panel.controls.values())}",
                    {"rules": [rule_to_dict(r) for r in panel.rules.values()]},
                ))
        check_matches_spec(store.load(), spec, str(path))
        return store

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def load(self) -> Panel:
        with self._tx() as db:
            return self._read_panel(db)

    @staticmethod
    def _read_panel(db: sqlite3.Connection) -> Panel:
        version = int(db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])
        controls = {
            name: RoutingControl(name, bool(is_on), float(changed_at))
            for name, is_on, changed_at in db.execute("SELECT name, is_on, changed_at FROM controls")
        }
        rules = {name: rule_from_dict(json.loads(body)) for name, body in db.execute("SELECT name, body FROM rules")}
        return Panel(controls=controls, rules=rules, version=version)

    @staticmethod
    def _write_panel(db: sqlite3.Connection, panel: Panel) -> None:
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('version', ?)", (str(panel.version),))
        db.execute("DELETE FROM controls")
        db.executemany(
            "INSERT INTO controls (name, is_on, changed_at) VALUES (?, ?, ?)",
            [(c.name, int(c.on), c.changed_at) for c in panel.controls.values()],
        )
        db.execute("DELETE FROM rules")
        db.executemany(
            "INSERT INTO rules (name, body) VALUES (?, ?)",
            [(r.name, json.dumps(rule_to_dict(r))) for r in panel.rules.values()],
        )

    @staticmethod
    def _insert_audit(db: sqlite3.Connection, record: AuditRecord) -> AuditEntry:
        cursor = db.execute(
            "INSERT INTO audit (at, actor, action, outcome, summary, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (record.at, record.actor, record.action, record.outcome, record.summary, json.dumps(record.detail)),
        )
        return AuditEntry(int(cursor.lastrowid or 0), record)

    def commit(self, panel: Panel, expected_version: int, record: AuditRecord) -> AuditEntry:
        with self._tx() as db:
            current = int(db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])
            if current != expected_version:
                raise ConflictError(f"the control panel changed meanwhile (version {current}); retry")
            self._write_panel(db, replace(panel, version=expected_version + 1))
            return self._insert_audit(db, record)

    def append_audit(self, record: AuditRecord) -> AuditEntry:
        with self._tx() as db:
            return self._insert_audit(db, record)

    def audit(self, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, at, actor, action, outcome, summary, detail FROM audit WHERE id < ? ORDER BY id DESC "
                "LIMIT ?",
                (before_id if before_id is not None else 2**62, limit),
            ).fetchall()
        return [AuditEntry(int(r[0]), AuditRecord(r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))) for r in rows]
