"""Bring a global database to its intended shape: create what is missing, start members in their roles.

Idempotent: ``up`` calls it every time. A fresh deployment gets a writer in the primary region and a standby
cloned from it over the link; an existing one restarts each member in the role its state records. A former
writer fenced by a failover stays stopped until it is rebuilt (it must never come back as a writer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from regionctl.errors import DatabaseError, Unreachable
from regionctl.globaldb.members import Cluster, standby_slot
from regionctl.globaldb.state import DatabaseState, StateStore


@dataclass(frozen=True)
class MemberAction:
    region: str
    action: str  # created | cloned | started | running | held | unreachable
    reason: str


@dataclass(frozen=True)
class EnsureResult:
    database: str
    writer: str
    actions: tuple[MemberAction, ...]
    seconds: float


def ensure(cluster: Cluster, store: StateStore, down_regions: frozenset[str] = frozenset(),
           blocking: bool = True) -> EnsureResult | None:
    """Create or restart members in their recorded roles, leaving regions marked down alone.

    With ``blocking=False`` (the supervisor's periodic call) returns None when an operation holds the lock.
    """
    started = time.monotonic()
    with store.locked(cluster.name, blocking) as held:
        if not held:
            return None
        state = store.load(cluster.name)
        if state is None:
            state = DatabaseState(name=cluster.name, writer=cluster.topo.settings.primary_region)
            store.save(state)
        actions = []
        for region in (state.writer, *(r for r in cluster.regions if r != state.writer)):
            if region in down_regions:
                actions.append(MemberAction(region, "held", "region is marked down"))
                continue
            try:
                actions.append(_ensure_writer(cluster, state) if region == state.writer
                               else _ensure_standby(cluster, state, region))
            except Unreachable as exc:  # cut off or its agent is down: leave it exactly as it is
                actions.append(MemberAction(region, "unreachable", str(exc)))
    return EnsureResult(cluster.name, state.writer, tuple(actions), round(time.monotonic() - started, 3))


def _ensure_writer(cluster: Cluster, state: DatabaseState) -> MemberAction:
    region = state.writer
    member = cluster.member(region)
    if member.running:
        return MemberAction(region, "running", "writer already running")
    promoted = _promoted_by_interrupted_switchover(cluster, state)
    if promoted is not None:  # starting the recorded writer now would make two writers
        return MemberAction(region, "held", f"switchover {state.in_progress} already promoted {promoted} and did "
                                            "not finish; run it again to finish it")
    created = member.init()["action"] == "created"
    cluster.start_writer(region)
    cluster.wait_writable(region)
    if not member.scalar("select count(*) from pg_database where datname = %s", (cluster.name,)):
        member.query(f'create database "{cluster.name}"')
    cluster.ensure_recon_slot(region)
    for other in cluster.regions:
        if other != region:
            cluster.ensure_standby_slot(region, other)
    return MemberAction(region, "created" if created else "started", "the recorded writer")


def _promoted_by_interrupted_switchover(cluster: Cluster, state: DatabaseState) -> str | None:
    """The target of a switchover that died after promoting it and before recording the new writer (or when
    it cannot tell: holding the old writer back is the safe side)."""
    record = state.interrupted()
    if record is None or record.kind != "switchover":
        return None
    target = cluster.member(record.to_region)
    try:
        if not target.running:
            return None  # not promoted (a promotion needs it running): restarting the old writer backs out
        return None if target.in_recovery() else record.to_region
    except (DatabaseError, Unreachable):
        return record.to_region


def _ensure_standby(cluster: Cluster, state: DatabaseState, region: str) -> MemberAction:
    member = cluster.member(region)
    if region in state.diverged:
        if member.running:  # a former writer came back on its own: fence it again
            member.stop("immediate")
        return MemberAction(region, "held", "diverged in a failover; run `db rebuild` (its copy is kept first)")
    if member.running:
        return MemberAction(region, "running", "standby already running")
    cloned = not member.exists
    if cloned:
        base_backup(cluster, source=state.writer, region=region)
    cluster.start_standby(region, state.writer)
    return MemberAction(region, "cloned" if cloned else "started", f"streams from {state.writer}")


def base_backup(cluster: Cluster, source: str, region: str) -> None:
    """Clone ``region``'s member from the writer in ``source`` through the link (pg_basebackup)."""
    cluster.ensure_standby_slot(source, region)
    cluster.member(region).base_backup(cluster.conninfo_from(region, source), standby_slot(region))
