"""Snapshots: base backups of the writer plus continuous WAL archiving, both copied to the other region.

Each region's writer archives its WAL into that region's archive (basic_archive: atomic, fsynced). The writer's
agent takes a snapshot on its host; every other region's agent then pulls it, and pulls the archives it lacks,
from the origin's agent through the link, so a region whose disk is gone can still be restored from what its
neighbour holds. A snapshot is a plain-format ``pg_basebackup`` plus ``snapshot.json``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, fields, replace
from typing import Any

from regionctl.errors import ConflictError, Unreachable
from regionctl.globaldb.members import Cluster
from regionctl.globaldb.state import StateStore, load_state


@dataclass(frozen=True)
class Snapshot:
    id: str
    database: str
    taken_in: str  # region of the writer it was taken from
    held_in: tuple[str, ...]  # regions holding a copy
    start_lsn: str
    end_lsn: str
    timeline: int
    started_at: float
    finished_at: float  # the snapshot is consistent no later than this
    bytes: int
    seconds: float
    label: str | None = None  # a caller's name for it (runbooks); taking a label twice returns the first

    @classmethod
    def from_agent(cls, raw: dict[str, Any], held_in: tuple[str, ...]) -> Snapshot:
        values: dict[str, Any] = {f.name: raw.get(f.name) for f in fields(cls)}
        return cls(**{**values, "held_in": held_in})


@dataclass(frozen=True)
class RestoredInstance:
    id: str
    database: str
    region: str
    snapshot: str
    target: str
    address: str  # as the global plane reaches it
    dsn: str
    recovered_to_lsn: str
    archiving: str
    seconds: float


def ship_archive(cluster: Cluster, origin: str, to_region: str) -> int:
    """Have ``to_region``'s agent pull the WAL files archived in ``origin`` that it lacks; return how many."""
    done = cluster.member(to_region).pull_archive(origin, cluster.agents.url_from(to_region, origin))
    return int(done["details"].get("copied", 0))


def take_snapshot(cluster: Cluster, store: StateStore, label: str | None = None) -> Snapshot:
    existing = [s for s in list_snapshots(cluster) if label is not None and s.label == label]
    if existing:
        return existing[0]
    state = load_state(store, cluster.name)
    writer = cluster.member(state.writer)
    if not writer.running:
        raise ConflictError(f"{cluster.name} writer {writer.name} is not running; a snapshot needs it")
    snap_id = f"snap-{cluster.name}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:4]}"
    raw = writer.snapshot(snap_id, label)
    held = [state.writer]
    for other in cluster.regions:
        if other != state.writer:
            cluster.member(other).pull_snapshot(snap_id, state.writer, cluster.agents.url_from(other, state.writer))
            ship_archive(cluster, state.writer, other)
            held.append(other)
    return Snapshot.from_agent(raw, tuple(r for r in cluster.regions if r in held))


def list_snapshots(cluster: Cluster) -> list[Snapshot]:
    """Every snapshot held in a region that answers, with the regions holding it."""
    found: dict[str, Snapshot] = {}
    for region in cluster.regions:
        try:
            held = cluster.member(region).snapshots()
        except Unreachable:
            continue
        for raw in held:
            snap = found.get(raw["id"]) or Snapshot.from_agent(raw, ())
            found[raw["id"]] = replace(snap, held_in=(*snap.held_in, region))
    return sorted(found.values(), key=lambda s: s.finished_at)
