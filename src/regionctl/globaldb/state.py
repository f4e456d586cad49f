"""The recorded intent of each global database: who the writer is, and every cross-region promotion.

Cross-region promotion is never a side effect: an operation writes what it is about to do here before acting,
and what it did after, so a crashed operation can be recognised and the supervisor never restarts a fenced former
writer as a writer.
"""

from __future__ import annotations

import fcntl
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from regionctl.errors import ConflictError


@dataclass(frozen=True)
class PromotionRecord:
    """One switchover or failover, as it happened."""

    id: str
    kind: str  # "switchover" | "failover"
    database: str
    from_region: str
    to_region: str
    started_at: float
    finished_at: float | None = None
    old_timeline: int | None = None
    new_timeline: int | None = None
    divergence_lsn: str | None = None  # failover: end of the last record the new writer had replayed
    lag_before: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    preserved_copy: str | None = None  # name of the diverged copy kept before any rebuild
    rebuilt: bool = False


@dataclass(frozen=True)
class DatabaseState:
    """What we intend: the writer region, and members that must not start until rebuilt."""

    name: str
    writer: str
    diverged: tuple[str, ...] = ()  # former writers fenced by a failover, waiting for preservation + rebuild
    in_progress: str | None = None  # id of a promotion that started and did not finish
    history: tuple[PromotionRecord, ...] = ()

    def record(self, promotion_id: str) -> PromotionRecord | None:
        return next((r for r in self.history if r.id == promotion_id), None)

    def interrupted(self) -> PromotionRecord | None:
        """The promotion that started and did not finish (its process died), if any."""
        record = self.record(self.in_progress) if self.in_progress else None
        return record if record is not None and record.finished_at is None else None

    def last_failover_from(self, region: str) -> PromotionRecord | None:
        matches = [r for r in self.history
                   if r.kind == "failover" and r.from_region == region and "aborted" not in r.details]
        return matches[-1] if matches else None


def resumable(state: DatabaseState, kind: str, to_region: str) -> PromotionRecord | None:
    """The interrupted promotion a new ``kind`` to ``to_region`` must finish instead of starting another one.

    Running an operation again after its process died completes the recorded promotion, so the history holds
    one promotion however often it is asked for. An interrupted promotion of another kind or target is refused:
    it has to be finished first (it may have promoted its own target already).
    """
    record = state.interrupted()
    if record is None:
        return None
    if record.kind == kind and record.to_region == to_region:
        return record
    raise ConflictError(f"{state.name}: {record.kind} {record.id} to {record.to_region} did not finish; run that "
                        f"{record.kind} again to complete it before a {kind} to {to_region}")


def load_state(store: StateStore, name: str) -> DatabaseState:
    """The recorded state of ``name``; ConflictError when the database was never created."""
    state = store.load(name)
    if state is None:
        raise ConflictError(f"{name} has not been created yet; run `regionctl up`")
    return state


def new_promotion_id(kind: str, database: str) -> str:
    return f"{kind}-{database}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


class StateStore:
    """One JSON file per database, replaced atomically, read-modify-write under a file lock."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def load(self, name: str) -> DatabaseState | None:
        path = self._path(name)
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        history = tuple(PromotionRecord(**r) for r in raw.pop("history", []))
        raw["diverged"] = tuple(raw.get("diverged", ()))
        return DatabaseState(**raw, history=history)

    def save(self, state: DatabaseState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self._path(state.name).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self._path(state.name))

    @contextmanager
    def locked(self, name: str, blocking: bool = True) -> Iterator[bool]:
        """Serialise operations on one database across processes (CLI, runbook engine, supervisor).

        Yields whether the lock is held: with ``blocking=False`` a busy lock yields False at once.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / f"{name}.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True

    def update_record(self, name: str, record: PromotionRecord) -> DatabaseState:
        state = load_state(self, name)
        history = tuple(record if r.id == record.id else r for r in state.history)
        if all(r.id != record.id for r in state.history):
            history = (*history, record)
        new = replace(state, history=history)
        self.save(new)
        return new
