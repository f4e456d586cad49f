"""Keep a former writer's diverged data directory before anything rebuilds it.

The reference keeps an ``rds:unplanned-global-failover-*`` snapshot of the old primary; pg_rewind erases the
lost transactions, so this copy must exist first (invariant 2). The old writer's agent makes the copy on its own
host while the member is stopped (it was fenced by the failover, or is stopped now); the copy is never started in
place: reconciliation starts a throwaway copy of it. A region that cannot be reached cannot be preserved: the
call fails (Unreachable) and nothing else may rebuild it meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from regionctl.errors import ConflictError, NotFoundError, Unreachable
from regionctl.globaldb.members import Cluster
from regionctl.globaldb.state import StateStore, load_state

COPY_PREFIX = "unplanned-failover"


@dataclass(frozen=True)
class PreservedCopy:
    name: str
    database: str
    region: str
    promotion_id: str
    divergence_lsn: str | None
    old_timeline: int | None
    path: str  # on the host of ``region``'s agent
    bytes: int
    created_at: float
    seconds: float

    @classmethod
    def from_agent(cls, raw: dict[str, Any]) -> PreservedCopy:
        values: dict[str, Any] = {f.name: raw.get(f.name) for f in fields(cls)}
        return cls(**values)


def list_copies(cluster: Cluster) -> list[PreservedCopy]:
    """Copies held in every region that answers (one that cannot be reached is left out)."""
    found = []
    for region in cluster.regions:
        try:
            found += [PreservedCopy.from_agent(c) for c in cluster.member(region).copies()]
        except Unreachable:
            continue
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
        state = load_state(store, cluster.name)
        record = state.last_failover_from(region)
        if region not in state.diverged or record is None:
            raise ConflictError(f"{cluster.name} member in {region} has not diverged in a failover; nothing to keep")
        if record.preserved_copy:
            return get_copy(cluster, record.preserved_copy)
        name = f"{COPY_PREFIX}-{region}-{record.id}"  # one name per failover: a retried call finds its copy
        meta = {"promotion_id": record.id, "divergence_lsn": record.divergence_lsn,
                "old_timeline": record.old_timeline}
        copy = PreservedCopy.from_agent(cluster.member(region).preserve(name, meta))
        store.update_record(cluster.name, replace(record, preserved_copy=copy.name))
        return copy
