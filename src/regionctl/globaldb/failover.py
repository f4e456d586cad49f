"""Unplanned failover, data loss allowed: fence the old writer through its region's agent, promote the target,
and record where the timelines diverged and how far behind the target was just before.

The target is promoted only once the failover holds the writer lease (``lease.py``, invariant 7): at once when
the old writer's agent stopped it (or the lease was free), else after the old lease expired, which a writer
that cannot renew never outlives (its fencer stops it first). The record says how the fence was known.

The divergence point comes from the new timeline's history file: it is the end of the last record the target
replayed, so every transaction whose commit ends after it on the old timeline was lost. The old writer is
recorded as diverged: it is never restarted as a writer, and its data directory is preserved before any rebuild.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from regionctl.errors import ConflictError, DatabaseError, Unreachable
from regionctl.globaldb import lease
from regionctl.globaldb.lsn import format_lsn, maybe_lsn
from regionctl.globaldb.member import Member
from regionctl.globaldb.members import Cluster
from regionctl.globaldb.state import DatabaseState, PromotionRecord, StateStore, load_state, new_promotion_id, resumable
from regionctl.globaldb.status import DatabaseStatus, read_status


@dataclass(frozen=True)
class FailoverResult:
    database: str
    from_region: str
    to_region: str
    promotion_id: str
    fenced: bool
    fence: str  # how the old writer is known to be fenced
    lease_wait_s: float  # how long the promotion waited for the old writer's lease
    old_timeline: int | None
    new_timeline: int
    divergence_lsn: str
    lag_before: dict[str, Any]
    promote_to_first_write_ms: float
    reason: str


def check_failover(state: DatabaseState, roles: dict[str, str], to_region: str) -> str:
    if to_region == state.writer:
        raise ConflictError(f"{state.name} writer is already in {to_region}; nothing to fail over")
    if to_region in state.diverged:
        raise ConflictError(f"{state.name} member in {to_region} diverged in an earlier failover; rebuild it first")
    if roles.get(to_region) != "standby":
        raise ConflictError(f"{state.name} member in {to_region} is {roles.get(to_region)}; only a running standby "
                            "can be promoted")
    return f"{to_region} is a running standby; the writer in {state.writer} is {roles.get(state.writer)}"


def lag_before(status: DatabaseStatus, cluster: Cluster, to_region: str) -> dict[str, Any]:
    """What the target had, measured just before promotion (the RPO we expect to lose)."""
    target = status.member(to_region)
    writer = status.member(status.writer)
    lag: dict[str, Any] = {"target_replay_lsn": target.lsn, "target_receive_lsn": target.receive_lsn,
                           "writer_lsn": writer.lsn if writer.role == "writer" else None,
                           "lag_bytes": target.lag_bytes, "lag_ms": target.lag_ms}
    try:
        age = cluster.member(to_region).scalar(
            "select extract(epoch from now() - pg_last_xact_replay_timestamp()) * 1000"
        )
        lag["last_replayed_commit_age_ms"] = None if age is None else round(float(age), 1)
    except DatabaseError:
        pass
    writer_lsn, replay = maybe_lsn(lag["writer_lsn"]), maybe_lsn(target.lsn)
    if writer_lsn is not None and replay is not None:
        lag["lag_bytes"] = max(0, writer_lsn - replay)
    return lag


def failover(cluster: Cluster, store: StateStore, to_region: str) -> FailoverResult:
    """Fail over to ``to_region``; run again after its process died, it finishes the same promotion."""
    cluster.topo.settings.require_region(to_region)
    with store.locked(cluster.name):
        state = load_state(store, cluster.name)
        interrupted = resumable(state, "failover", to_region)
        if interrupted is not None:
            return _promote_or_abort(cluster, store, interrupted, f"resumed failover {interrupted.id}, interrupted "
                                     "before it finished (its intent was recorded)", resumed=True)
        status = read_status(cluster, state)
        reason = check_failover(state, {m.region: m.role for m in status.members}, to_region)
        old = state.writer
        record = PromotionRecord(
            id=new_promotion_id("failover", cluster.name), kind="failover", database=cluster.name,
            from_region=old, to_region=to_region, started_at=time.time(),
            old_timeline=status.member(to_region).timeline, lag_before=lag_before(status, cluster, to_region),
        )
        # Intent first: from here on the old writer is fenced and the target is the writer.
        store.save(replace(state, writer=to_region, diverged=tuple(sorted({*state.diverged, old})),
                           in_progress=record.id, history=(*state.history, record)))
        return _promote_or_abort(cluster, store, record, reason)


def _promote_or_abort(cluster: Cluster, store: StateStore, record: PromotionRecord, reason: str,
                      resumed: bool = False) -> FailoverResult:
    """Promote; if the old writer's lease never expired, nothing was promoted: take the intent back (the old
    writer keeps its role, and is no longer marked diverged) and say so."""
    try:
        return _promote(cluster, store, record, reason, resumed)
    except lease.LeaseHeld as exc:
        store.update_record(cluster.name, replace(record, finished_at=time.time(),
                                                  details={**record.details, "aborted": str(exc)}))
        state = load_state(store, cluster.name)
        still_diverged = {d for d in state.diverged if d != record.from_region}
        store.save(replace(state, writer=record.from_region, diverged=tuple(sorted(still_diverged)), in_progress=None))
        raise ConflictError(f"failover of {cluster.name} aborted, nothing was promoted: {exc}") from None


def _promote(cluster: Cluster, store: StateStore, record: PromotionRecord, reason: str,
             resumed: bool = False) -> FailoverResult:
    """Fence, take the lease, promote (unless a first, interrupted run already did), record the divergence
    point. Each part checks before acting, so it is safe to run again."""
    old, new = record.from_region, record.to_region
    said: list[str] = []

    def fence_by_agent() -> bool:
        stopped, how = fence_old_writer(cluster.member(old))
        said[:] = [how]
        return stopped

    taken = lease.take(cluster.topo, cluster.network, cluster.name, new, fence_by_agent)
    fenced, fence = True, "; ".join([*said, taken.how])
    record = replace(record, details={**record.details, "fence": fence, "lease_wait_s": taken.waited_s})
    store.update_record(cluster.name, record)  # how the old writer was fenced survives an interruption here
    target = cluster.member(new)
    promote_start = time.monotonic()
    promoted_now = _in_recovery(target)
    if promoted_now:
        target.promote()
    cluster.wait_writable(new)
    first_write_ms = (time.monotonic() - promote_start) * 1000
    last_replayed = _last_replayed_commit(cluster, new)
    new_timeline, history = cluster.latest_history(new)
    divergence = format_lsn(history[-1][1]) if history else None
    cluster.ensure_recon_slot(new)
    cluster.ensure_standby_slot(new, old)
    details: dict[str, Any] = {**record.details, "fenced": fenced,
                               "promote_to_first_write_ms": round(first_write_ms, 1),
                               "last_replayed_commit_at": last_replayed}
    if resumed:
        details |= {"resumed": True, "promoted_by_resumed_run": promoted_now}
    done = replace(record, finished_at=time.time(), new_timeline=new_timeline, divergence_lsn=divergence,
                   details=details)
    store.update_record(cluster.name, done)
    store.save(replace(load_state(store, cluster.name), in_progress=None))
    return FailoverResult(
        database=cluster.name, from_region=old, to_region=new, promotion_id=record.id, fenced=fenced, fence=fence,
        lease_wait_s=taken.waited_s,
        old_timeline=record.old_timeline, new_timeline=new_timeline, divergence_lsn=divergence or "unknown",
        lag_before=record.lag_before, promote_to_first_write_ms=round(first_write_ms, 1),
        reason=f"{reason}; old writer: {fence}; transactions "
               f"committed on timeline {record.old_timeline} after {divergence} are kept in {old}'s diverged copy",
    )


def fence_old_writer(member: Member) -> tuple[bool, str]:
    """Stop the old writer through its agent: (fenced, how). Fenced means the agent saw no postmaster left."""
    try:
        stopped = member.stop("immediate")
    except Unreachable as exc:
        return False, f"its agent cannot be reached ({exc})"
    return True, ("fenced: stopped (immediate) by its agent" if stopped
                  else "fenced: its agent reports it was not running")


def _in_recovery(member: Member) -> bool:
    """Whether the target still has to be promoted (a promotion asked for by a dead run may be under way)."""
    try:
        return member.in_recovery()
    except DatabaseError:
        return True  # not answering yet: promote (pg_promote on a promoting server is harmless) or fail loudly


def _last_replayed_commit(cluster: Cluster, region: str) -> str | None:
    """Commit time (old writer's clock) of the last transaction the new writer replayed: where the lost window
    starts. Read right after promotion, while the startup process's value is still in shared memory."""
    try:
        value = cluster.member(region).scalar("select pg_last_xact_replay_timestamp()")
    except DatabaseError:
        return None
    return None if value is None else value.isoformat()
