"""The engine's durable memory: executions, step runs, decisions and an append-only history, in SQLite.

Each method is one transaction that also appends the matching history event, committed before the engine acts
on it; that is what lets a killed engine resume exactly where it was. WAL mode with ``synchronous=NORMAL``: a
commit survives the engine process being killed (it is in the WAL, handed to the OS); only a crash of the whole
machine may lose the last commits, and then a finished step may run again, which idempotent actions make safe.
FULL would fsync every transition (about 5 ms each here, 25 of them before RegionFailover promotes anything).

A step *run* is one visit of a step (a step visited twice through ``onFailure: step:X`` has two runs), numbered
``seq`` within its execution. Its ``attempt`` counts attempts consumed; status ``running``/``waiting`` means
attempt ``attempt`` is in flight, ``pending`` means the next attempt is ``attempt + 1``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regionctl.errors import NotFoundError
from regionctl.jsonable import to_jsonable

# execution statuses
RUNNING, PAUSING, PAUSED, CANCELLING = "running", "pausing", "paused", "cancelling"
SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
# step run statuses (plus RUNNING, SUCCEEDED, FAILED, CANCELLED)
PENDING, WAITING, SKIPPED = "pending", "waiting", "skipped"
STEP_DONE = (SUCCEEDED, FAILED, SKIPPED, CANCELLED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    runbook TEXT NOT NULL,
    source TEXT NOT NULL,
    parameters TEXT NOT NULL,
    status TEXT NOT NULL,
    actor TEXT NOT NULL,
    parent_id TEXT, parent_seq INTEGER, parent_attempt INTEGER,
    position INTEGER,
    transitions INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, started_at REAL, ended_at REAL,
    error TEXT, outputs TEXT,
    recovery TEXT, recovery_probing_since REAL, recovered_at REAL,
    UNIQUE (parent_id, parent_seq, parent_attempt)
);
CREATE TABLE IF NOT EXISTS step_runs (
    execution_id TEXT NOT NULL REFERENCES executions(id),
    seq INTEGER NOT NULL,
    step TEXT NOT NULL,
    parent_seq INTEGER,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    round_base INTEGER NOT NULL DEFAULT 0,
    inputs TEXT, result TEXT, outputs TEXT, error TEXT, wait TEXT,
    first_started_at REAL, started_at REAL, ended_at REAL,
    PRIMARY KEY (execution_id, seq)
);
CREATE TABLE IF NOT EXISTS decisions (
    execution_id TEXT NOT NULL, seq INTEGER NOT NULL, attempt INTEGER NOT NULL,
    approved INTEGER NOT NULL, approver TEXT NOT NULL, comment TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (execution_id, seq, attempt)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL, seq INTEGER, step TEXT,
    at REAL NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS events_by_execution ON events (execution_id, id);
CREATE INDEX IF NOT EXISTS executions_by_status ON executions (status);
"""


@dataclass(frozen=True)
class Execution:
    id: str
    runbook: str
    source: str
    parameters: dict[str, Any]
    status: str
    actor: str
    parent_id: str | None
    parent_seq: int | None
    parent_attempt: int | None
    position: int | None
    transitions: int
    created_at: float
    started_at: float | None
    ended_at: float | None
    error: str | None
    outputs: dict[str, Any] | None
    recovery: dict[str, Any] | None
    recovery_probing_since: float | None
    recovered_at: float | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def recovery_seconds(self) -> float | None:
        if self.recovered_at is None or self.started_at is None:
            return None
        return self.recovered_at - self.started_at


@dataclass(frozen=True)
class StepRun:
    execution_id: str
    seq: int
    step: str
    parent_seq: int | None
    status: str
    attempt: int
    round_base: int
    inputs: Any
    result: Any
    outputs: dict[str, Any] | None
    error: str | None
    wait: dict[str, Any] | None
    first_started_at: float | None
    started_at: float | None
    ended_at: float | None

    @property
    def done(self) -> bool:
        return self.status in STEP_DONE


@dataclass(frozen=True)
class Event:
    id: int
    execution_id: str
    seq: int | None
    step: str | None
    at: float
    kind: str
    message: str
    detail: Any


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(to_jsonable(value), sort_keys=True)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class Journal:
    """One SQLite file; safe to share between the engine's tasks (one lock, short transactions)."""

    def __init__(self, path: Path, clock: Any = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.clock = clock
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _event(self, db: sqlite3.Connection, execution_id: str, kind: str, message: str, seq: int | None = None,
               step: str | None = None, detail: Any = None) -> None:
        db.execute("INSERT INTO events (execution_id, seq, step, at, kind, message, detail) VALUES (?,?,?,?,?,?,?)",
                   (execution_id, seq, step, self.clock(), kind, message, _dump(detail)))

    # --- executions ---------------------------------------------------------------------------------------------

    def create_execution(self, runbook: str, source: str, parameters: Mapping[str, Any], actor: str,
                         recovery: Mapping[str, Any] | None = None,
                         parent: tuple[str, int, int] | None = None) -> Execution:
        execution_id = uuid.uuid4().hex[:12]
        now = self.clock()
        parent_id, parent_seq, parent_attempt = parent or (None, None, None)
        with self._tx() as db:
            db.execute(
                "INSERT INTO executions (id, runbook, source, parameters, status, actor, parent_id, parent_seq, "
                "parent_attempt, created_at, started_at, recovery) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (execution_id, runbook, source, _dump(parameters), RUNNING, actor, parent_id, parent_seq,
                 parent_attempt, now, now, _dump(recovery)),
            )
            self._event(db, execution_id, "execution.started", f"{runbook} started by {actor}",
                        detail={"parameters": parameters, "parent": parent_id})
        return self.execution(execution_id)

    def execution(self, execution_id: str) -> Execution:
        with self._lock:
            row = self._db.execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no execution {execution_id!r}")
        return _execution(row)

    def executions(self, status: str | None = None, limit: int = 100, top_level: bool = True) -> list[Execution]:
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if top_level:
            where.append("parent_id IS NULL")
        sql = "SELECT * FROM executions" + (" WHERE " + " AND ".join(where) if where else "")
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit)).fetchall()
        return [_execution(r) for r in rows]

    def unfinished(self) -> list[Execution]:
        """Top-level executions an engine should drive (children are driven by their parent's step)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM executions WHERE parent_id IS NULL AND status IN (?, ?, ?) ORDER BY created_at",
                (RUNNING, PAUSING, CANCELLING)).fetchall()
        return [_execution(r) for r in rows]

    def children(self, execution_id: str) -> list[Execution]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM executions WHERE parent_id = ? ORDER BY created_at",
                                    (execution_id,)).fetchall()
        return [_execution(r) for r in rows]

    def child_for(self, parent_id: str, seq: int, attempt: int) -> Execution | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM executions WHERE parent_id = ? AND parent_seq = ? AND parent_attempt = ?",
                (parent_id, seq, attempt)).fetchone()
        return None if row is None else _execution(row)

    def set_status(self, execution_id: str, status: str, message: str, actor: str | None = None,
                   error: str | None = None, outputs: Mapping[str, Any] | None = None) -> Execution:
        ended = self.clock() if status in FINISHED else None
        with self._tx() as db:
            db.execute("UPDATE executions SET status = ?, ended_at = ?, error = COALESCE(?, error), "
                       "outputs = COALESCE(?, outputs) WHERE id = ?",
                       (status, ended, error, _dump(outputs), execution_id))
            if status == RUNNING:
                db.execute("UPDATE executions SET error = NULL WHERE id = ?", (execution_id,))
            self._event(db, execution_id, f"execution.{status}", message, detail={"actor": actor} if actor else None)
        return self.execution(execution_id)

    def mark_recovery(self, execution_id: str, probing_since: float | None = None,
                      recovered_at: float | None = None, message: str = "") -> None:
        with self._tx() as db:
            if probing_since is not None:
                db.execute("UPDATE executions SET recovery_probing_since = COALESCE(recovery_probing_since, ?) "
                           "WHERE id = ?", (probing_since, execution_id))
            if recovered_at is not None:
                db.execute("UPDATE executions SET recovered_at = COALESCE(recovered_at, ?) WHERE id = ?",
                           (recovered_at, execution_id))
            self._event(db, execution_id, "recovery", message)

    # --- step runs ----------------------------------------------------------------------------------------------

    def new_run(self, execution_id: str, step: str, parent_seq: int | None = None, reason: str = "") -> StepRun:
        """A new visit of ``step``; for a top-level step it also becomes the execution's position."""
        with self._tx() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM step_runs WHERE execution_id = ?",
                             (execution_id,)).fetchone()[0]
            db.execute("INSERT INTO step_runs (execution_id, seq, step, parent_seq, status) VALUES (?,?,?,?,?)",
                       (execution_id, seq, step, parent_seq, PENDING))
            if parent_seq is None:
                db.execute("UPDATE executions SET position = ?, transitions = transitions + 1 WHERE id = ?",
                           (seq, execution_id))
            self._event(db, execution_id, "step.pending", reason or f"next: {step}", seq, step)
        return self.run(execution_id, seq)

    def run(self, execution_id: str, seq: int) -> StepRun:
        with self._lock:
            row = self._db.execute("SELECT * FROM step_runs WHERE execution_id = ? AND seq = ?",
                                   (execution_id, seq)).fetchone()
        if row is None:
            raise NotFoundError(f"execution {execution_id} has no step run {seq}")
        return _run(row)

    def runs(self, execution_id: str) -> list[StepRun]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM step_runs WHERE execution_id = ? ORDER BY seq",
                                    (execution_id,)).fetchall()
        return [_run(r) for r in rows]

    def child_runs(self, execution_id: str, parent_seq: int) -> list[StepRun]:
        return [r for r in self.runs(execution_id) if r.parent_seq == parent_seq]

    def start_attempt(self, execution_id: str, seq: int, attempt: int, inputs: Any, resumed: bool) -> StepRun:
        """Journaled before the action runs: from here on, a crash means "re-run this attempt"."""
        now = self.clock()
        with self._tx() as db:
            db.execute("UPDATE step_runs SET status = ?, attempt = ?, inputs = ?, started_at = ?, ended_at = NULL, "
                       "first_started_at = COALESCE(first_started_at, ?), wait = NULL "
                       "WHERE execution_id = ? AND seq = ?",
                       (RUNNING, attempt, _dump(inputs), now, now, execution_id, seq))
            step = self._step_name(db, execution_id, seq)
            what = "resumed in-flight attempt" if resumed else "attempt"
            self._event(db, execution_id, "step.running", f"{step}: {what} {attempt}", seq, step,
                        detail={"inputs": inputs})
        return self.run(execution_id, seq)

    def set_waiting(self, execution_id: str, seq: int, wait: Mapping[str, Any], message: str) -> None:
        with self._tx() as db:
            changed = db.execute("UPDATE step_runs SET status = ?, wait = ? WHERE execution_id = ? AND seq = ? "
                                 "AND status = ?", (WAITING, _dump(wait), execution_id, seq, RUNNING)).rowcount
            if changed:
                self._event(db, execution_id, "step.waiting", message, seq, self._step_name(db, execution_id, seq),
                            detail=wait)

    def attempt_failed(self, execution_id: str, seq: int, error: str, retry: bool) -> None:
        """The attempt in flight failed; with ``retry`` the run goes back to pending for the next one."""
        with self._tx() as db:
            step = self._step_name(db, execution_id, seq)
            if retry:
                db.execute("UPDATE step_runs SET status = ?, error = ? WHERE execution_id = ? AND seq = ?",
                           (PENDING, error, execution_id, seq))
            self._event(db, execution_id, "step.attempt_failed", f"{step}: {error}", seq, step)

    def unstart(self, execution_id: str, seq: int, message: str) -> None:
        """An interrupted attempt does not count: back to pending, attempt counter as before it."""
        with self._tx() as db:
            db.execute("UPDATE step_runs SET status = ?, attempt = MAX(attempt - 1, round_base), wait = NULL "
                       "WHERE execution_id = ? AND seq = ? AND status IN (?, ?)",
                       (PENDING, execution_id, seq, RUNNING, WAITING))
            self._event(db, execution_id, "step.interrupted", message, seq, self._step_name(db, execution_id, seq))

    def finish_run(self, execution_id: str, seq: int, status: str, message: str, result: Any = None,
                   outputs: Mapping[str, Any] | None = None, error: str | None = None) -> StepRun:
        now = self.clock()
        with self._tx() as db:
            db.execute("UPDATE step_runs SET status = ?, result = COALESCE(?, result), outputs = ?, error = ?, "
                       "ended_at = ?, first_started_at = COALESCE(first_started_at, ?), wait = NULL "
                       "WHERE execution_id = ? AND seq = ?",
                       (status, _dump(result), _dump(outputs), error, now, now, execution_id, seq))
            self._event(db, execution_id, f"step.{status}", message, seq, self._step_name(db, execution_id, seq),
                        detail={"outputs": outputs} if outputs else None)
        return self.run(execution_id, seq)

    def reopen_run(self, execution_id: str, seq: int, actor: str) -> None:
        """Operator retry: the run gets a fresh round of ``maxAttempts``; failed parallel children too."""
        with self._tx() as db:
            ids = [seq] + [r[0] for r in db.execute(
                "SELECT seq FROM step_runs WHERE execution_id = ? AND parent_seq = ? AND status IN (?, ?)",
                (execution_id, seq, FAILED, CANCELLED))]
            for s in ids:
                db.execute("UPDATE step_runs SET status = ?, round_base = attempt, ended_at = NULL "
                           "WHERE execution_id = ? AND seq = ?", (PENDING, execution_id, s))
            step = self._step_name(db, execution_id, seq)
            self._event(db, execution_id, "step.retry", f"{step}: retry requested by {actor}", seq, step)

    @staticmethod
    def _step_name(db: sqlite3.Connection, execution_id: str, seq: int) -> str:
        row = db.execute("SELECT step FROM step_runs WHERE execution_id = ? AND seq = ?",
                         (execution_id, seq)).fetchone()
        return str(row[0]) if row else "?"

    # --- decisions and history ----------------------------------------------------------------------------------

    def record_decision(self, execution_id: str, seq: int, attempt: int, approved: bool, approver: str,
                        comment: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO decisions (execution_id, seq, attempt, approved, approver, comment, at) "
                       "VALUES (?,?,?,?,?,?,?)",
                       (execution_id, seq, attempt, int(approved), approver, comment, self.clock()))
            step = self._step_name(db, execution_id, seq)
            verdict = "approved" if approved else "declined"
            self._event(db, execution_id, f"approval.{verdict}", f"{step}: {verdict} by {approver}: {comment}",
                        seq, step, detail={"approver": approver, "comment": comment})

    def decision(self, execution_id: str, seq: int, attempt: int) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(
                "SELECT * FROM decisions WHERE execution_id = ? AND seq = ? AND attempt = ?",
                (execution_id, seq, attempt)).fetchone()
        return row

    def note(self, execution_id: str, message: str, seq: int | None = None, step: str | None = None,
             kind: str = "note") -> None:
        with self._tx() as db:
            self._event(db, execution_id, kind, message, seq, step)

    def events(self, execution_id: str, after: int = 0) -> list[Event]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM events WHERE execution_id = ? AND id > ? ORDER BY id",
                                    (execution_id, after)).fetchall()
        return [Event(r["id"], r["execution_id"], r["seq"], r["step"], r["at"], r["kind"], r["message"],
                      _load(r["detail"])) for r in rows]


def _execution(row: sqlite3.Row) -> Execution:
    return Execution(
        id=row["id"], runbook=row["runbook"], source=row["source"], parameters=_load(row["parameters"]) or {},
        status=row["status"], actor=row["actor"], parent_id=row["parent_id"], parent_seq=row["parent_seq"],
        parent_attempt=row["parent_attempt"], position=row["position"], transitions=row["transitions"],
        created_at=row["created_at"], started_at=row["started_at"], ended_at=row["ended_at"], error=row["error"],
        outputs=_load(row["outputs"]), recovery=_load(row["recovery"]),
        recovery_probing_since=row["recovery_probing_since"], recovered_at=row["recovered_at"],
    )


def _run(row: sqlite3.Row) -> StepRun:
    return StepRun(
        execution_id=row["execution_id"], seq=row["seq"], step=row["step"], parent_seq=row["parent_seq"],
        status=row["status"], attempt=row["attempt"], round_base=row["round_base"], inputs=_load(row["inputs"]),
        result=_load(row["result"]), outputs=_load(row["outputs"]), error=row["error"], wait=_load(row["wait"]),
        first_started_at=row["first_started_at"], started_at=row["started_at"], ended_at=row["ended_at"],
    )
