"""Planned switchover, RPO 0: stop writes at the writer, prove the target replayed everything, promote it,
and bring the old writer back as a standby without a rebuild.

A fast shutdown makes the writer ship its final shutdown checkpoint to the standby before exiting; once the
target has replayed past that checkpoint it holds every committed transaction, so promotion loses nothing.
If the target does not catch up in time the old writer is restarted as the writer and nothing changed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from regionctl.errors import ConflictError, DatabaseError, OperationTimeout
from regionctl.globaldb import lease
from regionctl.globaldb.lsn import format_lsn, parse_lsn
from regionctl.globaldb.member import AgentMember
from regionctl.globaldb.members import Cluster
from regionctl.globaldb.state import (
    DatabaseState,
    PromotionRecord,
    StateStore,
    load_state,
    new_promotion_id,
    resumable,
)
from regionctl.globaldb.status import read_status


@dataclass(frozen=True)
class SwitchoverResult:
    database: str
    from_region: str
    to_region: str
    promotion_id: str
    shutdown_checkpoint_lsn: str
    target_replayed_lsn: str
    replayed_everything: bool
    new_timeline: int
    write_outage_ms: float
    old_writer_streaming: bool
    reason: str


def check_switchover(state: DatabaseState, status_roles: dict[str, str], to_region: str) -> str:
    """Decide whether a switchover may start; return the reason it may, or raise naming why not."""
    if to_region == state.writer:
        raise ConflictError(f"{state.name} writer is already in {to_region}; nothing to switch over")
    if state.diverged:
        raise ConflictError(f"{state.name} has diverged members {', '.join(state.diverged)}; rebuild them first")
    if status_roles.get(state.writer) != "writer":
        raise ConflictError(
            f"{state.name} writer in {state.writer} is {status_roles.get(state.writer)}; a switchover needs a "
            "running writer (use failover for an unplanned promotion)"
        )
    if status_roles.get(to_region) != "standby":
        raise ConflictError(f"{state.name} member in {to_region} is {status_roles.get(to_region)}, not a standby")
    return f"writer {state.writer} and standby {to_region} are both up"


def switchover(cluster: Cluster, store: StateStore, to_region: str, catchup_timeout: float = 30.0) -> SwitchoverResult:
    """Switch over to ``to_region``; run again after its process died, it finishes the same promotion."""
    cluster.topo.settings.require_region(to_region)
    with store.locked(cluster.name):
        state = load_state(store, cluster.name)
        interrupted = resumable(state, "switchover", to_region)
        if interrupted is not None:
            return _resume(cluster, store, interrupted, catchup_timeout)
        status = read_status(cluster, state)
        reason = check_switchover(state, {m.region: m.role for m in status.members}, to_region)
        record = PromotionRecord(
            id=new_promotion_id("switchover", cluster.name), kind="switchover", database=cluster.name,
            from_region=state.writer, to_region=to_region, started_at=time.time(),
            old_timeline=status.member(state.writer).timeline,
        )
        store.save(replace(state, in_progress=record.id, history=(*state.history, record)))
        return _switch(cluster, store, record, catchup_timeout, reason)


def _switch(
    cluster: Cluster, store: StateStore, record: PromotionRecord, timeout: float, reason: str
) -> SwitchoverResult:
    old, new = record.from_region, record.to_region
    outage_start = time.monotonic()
    cluster.member(old).stop("fast")
    checkpoint = parse_lsn(cluster.control_data(old)["Latest checkpoint location"])
    try:
        replayed = cluster.wait_replayed(new, checkpoint, timeout)
    except OperationTimeout:
        if lease.holder(cluster.topo, cluster.network, cluster.name) == new:  # a resumed run had moved it
            lease.take(cluster.topo, cluster.network, cluster.name, old, fence=lambda: True)  # new: a standby
        cluster.start_writer(old)  # back out: the old writer keeps its role, nothing was lost
        state = load_state(store, cluster.name)
        store.save(replace(state, in_progress=None))
        store.update_record(cluster.name, replace(record, finished_at=time.time(), details={"aborted": True}))
        raise ConflictError(
            f"switchover aborted: {cluster.member(new).name} did not replay past the shutdown checkpoint "
            f"{format_lsn(checkpoint)} within {timeout:.0f}s; {old} is the writer again"
        ) from None
    lease.take(cluster.topo, cluster.network, cluster.name, new, fence=lambda: True)  # the old one is stopped
    cluster.member(new).promote()
    cluster.wait_writable(new)
    outage_ms = (time.monotonic() - outage_start) * 1000
    return _finish(cluster, store, record, checkpoint, replayed, {"write_outage_ms": round(outage_ms, 1)},
                   f"{reason}; {new} replayed past the shutdown checkpoint, so no committed transaction was lost")


def _resume(cluster: Cluster, store: StateStore, record: PromotionRecord, timeout: float) -> SwitchoverResult:
    """Finish a switchover whose process died. Promotion only ever follows a full replay of the old writer's
    shutdown checkpoint, so a target that is already writable lost nothing: finish around it. Otherwise start
    the switch again from the top (the old writer may have been restarted meanwhile)."""
    old, new = record.from_region, record.to_region
    said = f"resumed switchover {record.id}, interrupted before it finished"
    if not _promoted(cluster.member(new)):
        return _switch(cluster, store, record, timeout, f"{said} before its promotion")
    cluster.wait_writable(new)
    cluster.member(old).stop("fast")
    lease.take(cluster.topo, cluster.network, cluster.name, new, fence=lambda: True)  # the target's, normally
    checkpoint = parse_lsn(cluster.control_data(old)["Latest checkpoint location"])
    switchpoint = cluster.latest_history(new)[1]
    replayed = switchpoint[-1][1] if switchpoint else checkpoint
    return _finish(cluster, store, record, checkpoint, replayed, {"resumed": True},
                   f"{said} after promoting {new}, which it does only once every committed transaction is there")


def _promoted(member: AgentMember) -> bool:
    try:
        return member.running and not member.in_recovery()
    except DatabaseError:
        return False


def _finish(cluster: Cluster, store: StateStore, record: PromotionRecord, checkpoint: int, replayed: int,
            details: dict[str, Any], reason: str) -> SwitchoverResult:
    """Record the new writer, then rejoin the old one as a standby; each part safe to run again."""
    old, new = record.from_region, record.to_region
    store.save(replace(load_state(store, cluster.name), writer=new))  # intent: the writer is now `new`
    cluster.ensure_standby_slot(new, old)
    cluster.ensure_recon_slot(new)
    if not cluster.member(old).running:
        cluster.start_standby(old, new)
    cluster.drop_stale_slots(old)
    streaming = _streams(cluster, new, old)
    timeline = cluster.latest_history(new)[0]
    done = replace(
        record, finished_at=time.time(), new_timeline=timeline,
        details={"shutdown_checkpoint_lsn": format_lsn(checkpoint), "replayed_lsn": format_lsn(replayed),
                 "old_writer_streaming": streaming, **details},
    )
    store.update_record(cluster.name, done)
    store.save(replace(load_state(store, cluster.name), in_progress=None))
    return SwitchoverResult(
        database=cluster.name, from_region=old, to_region=new, promotion_id=record.id,
        shutdown_checkpoint_lsn=format_lsn(checkpoint), target_replayed_lsn=format_lsn(replayed),
        replayed_everything=replayed >= checkpoint, new_timeline=timeline,
        write_outage_ms=float(details.get("write_outage_ms", 0.0)), old_writer_streaming=streaming, reason=reason,
    )


def _streams(cluster: Cluster, writer: str, standby: str) -> bool:
    try:
        cluster.wait_streaming(writer, standby, timeout=30)
        return True
    except OperationTimeout:
        return False

