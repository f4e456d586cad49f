"""Keep a former writer's diverged data directory before anything rebuilds it.

The reference keeps an ``rds:unplanned-global-failover-*`` snapshot of the old primary; pg_rewind erases the
lost transactions, so this copy must exist first (invariant 2). The copy is taken while the member is stopped
(it was fenced by the failover) and is never started in place: reconciliation starts a throwaway copy of it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from regionctl.errors import ConflictError, NotFoundError
from regionctl.globaldb.members import Cluster, copy_datadir
from regionctl.globaldb.state import StateStore
from regionctl.globaldb.switchover import _load

COPY_PREFIX = "unplanned-failover"


@dataclass(frozen=True)
class PreservedCopy:
    name: str
    database: str
    region: str
    promotion_id: str
    divergence_lsn: str | None
    old_timeline: int | None
    path: str
    bytes: int
    created_at: float
    seconds: float


def copies_dir(cluster: Cluster, region: str) -> Path:
    return cluster.topo.paths.snapshots(region, cluster.name) / "failover-copies"


def list_copies(cluster: Cluster) -> list[PreservedCopy]:
    found = []
    for region in cluster.regions:
        for meta in sorted(copies_dir(cluster, region).glob("*/copy.json")):
            found.append(PreservedCopy(**json.loads(meta.read_text())))
    return found


def get_copy(cluster: Cluster, name: str) -> PreservedCopy:
    for copy in list_copies(cluster):
        if copy.name == name:
            return copy
    raise NotFoundError(f"no preserved copy named {name!r} for {cluster.name}")


def preserve(cluster: Cluster, store: StateStore, region: str) -> PreservedCopy:
    """Copy the diverged member in ``region``; idempotent (returns the existing copy of the same failover)."""
    cluster.topo.settings.require_region(region)
    with store.locked(cluster.name):
        state = _load(store, cluster.name)
        record = state.last_failover_from(region)
        if region not in state.diverged or record is None:
            raise ConflictError(f"{cluster.name} member in {region} has not diverged in a failover; nothing to keep")
        if record.preserved_copy:
            return get_copy(cluster, record.preserved_copy)
        member = cluster.member(region)
        if member.running:
            member.stop("immediate")
        started = time.monotonic()
        name = f"{COPY_PREFIX}-{cluster.name}-{region}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
        target = copies_dir(cluster, region) / name
        size = copy_datadir(member.datadir, target / "data")
        copy = PreservedCopy(
            name=name, database=cluster.name, region=region, promotion_id=record.id,
            divergence_lsn=record.divergence_lsn, old_timeline=record.old_timeline, path=str(target / "data"),
            bytes=size, created_at=time.time(), seconds=round(time.monotonic() - started, 3),
        )
        (target / "copy.json").write_text(json.dumps(asdict(copy), indent=2))
        store.update_record(cluster.name, replace(record, preserved_copy=name))
        return copy
