"""Rebuild a former writer (or a broken standby) as a streaming standby of the current writer.

pg_rewind first (it copies only what changed since the divergence); a fresh base backup when rewinding is
impossible. A diverged former writer is preserved before either touches it: both erase its lost transactions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from regionctl.errors import ConflictError, ExternalError, Unreachable
from regionctl.globaldb.bootstrap import base_backup
from regionctl.globaldb.members import Cluster
from regionctl.globaldb.preserve import preserve
from regionctl.globaldb.state import StateStore, load_state


@dataclass(frozen=True)
class RebuildResult:
    database: str
    region: str
    writer: str
    method: str  # rewind | base_backup
    preserved_copy: str | None
    rewind_output: str
    seconds: float
    streaming: bool
    reason: str


def rebuild(cluster: Cluster, store: StateStore, region: str) -> RebuildResult:
    cluster.topo.settings.require_region(region)
    state = load_state(store, cluster.name)
    if region == state.writer:
        raise ConflictError(f"{cluster.name} writer is in {region}; rebuild makes a standby, pick the other region")
    copy_name = preserve(cluster, store, region).name if region in state.diverged else None
    started = time.monotonic()
    with store.locked(cluster.name):
        state = load_state(store, cluster.name)
        writer = state.writer
        member = cluster.member(region)
        if member.running:
            member.stop("immediate")
        method, output = _rewind_or_clone(cluster, region, writer)
        cluster.ensure_standby_slot(writer, region)
        cluster.start_standby(region, writer)
        cluster.wait_streaming(writer, region, timeout=60)
        cluster.drop_stale_slots(region)
        record = state.last_failover_from(region)
        if record is not None and region in state.diverged:
            store.update_record(cluster.name, replace(record, rebuilt=True))
        state = load_state(store, cluster.name)
        store.save(replace(state, diverged=tuple(r for r in state.diverged if r != region)))
    return RebuildResult(
        database=cluster.name, region=region, writer=writer, method=method, preserved_copy=copy_name,
        rewind_output=output, seconds=round(time.monotonic() - started, 3), streaming=True,
        reason=(f"kept {copy_name} first; " if copy_name else "")
        + f"{method.replace('_', ' ')} from {writer}; now streaming on the writer's timeline",
    )


def _rewind_or_clone(cluster: Cluster, region: str, writer: str) -> tuple[str, str]:
    """The member's agent rewinds it from the writer through the link; a clone when rewinding cannot work."""
    member = cluster.member(region)
    if member.exists:
        try:
            done = member.rewind(cluster.conninfo_from(region, writer, connect_timeout=10))
            return "rewind", str(done["details"].get("output", ""))
        except Unreachable:
            raise  # a clone cannot work either
        except ExternalError as exc:  # pg_rewind failed (ProcessError) or the agent refused
            reason = f"pg_rewind failed ({exc}); cloned with a fresh base backup instead"
    else:
        reason = "no data directory; cloned with a base backup"
    base_backup(cluster, source=writer, region=region)
    return "base_backup", reason
