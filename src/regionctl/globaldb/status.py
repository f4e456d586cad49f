"""Read a global database once into an immutable snapshot: roles, timelines, LSNs, lag, slots, problems."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypedDict

from regionctl.errors import DatabaseError, Unreachable
from regionctl.globaldb import lease
from regionctl.globaldb.lsn import format_lsn, maybe_lsn
from regionctl.globaldb.members import RECON_SLOT, Cluster
from regionctl.globaldb.state import DatabaseState


@dataclass(frozen=True)
class SlotStatus:
    name: str
    kind: str
    active: bool
    wal_status: str | None
    restart_lsn: str | None
    confirmed_flush_lsn: str | None


@dataclass(frozen=True)
class MemberStatus:
    region: str
    name: str
    address: str
    role: str  # writer | standby | stopped | unreachable (its agent does not answer: state unknown)
    intended: str  # writer | standby | diverged
    timeline: int | None = None
    lsn: str | None = None  # writer: current WAL position; standby: replayed position
    receive_lsn: str | None = None
    lag_bytes: int | None = None
    lag_ms: float | None = None
    streaming: bool | None = None
    slots: tuple[SlotStatus, ...] = ()
    error: str | None = None


class _Identity(TypedDict):
    """The MemberStatus fields known before the member is asked anything."""

    region: str
    name: str
    address: str
    intended: str


@dataclass(frozen=True)
class DatabaseStatus:
    name: str
    writer: str
    members: tuple[MemberStatus, ...]
    recon_slot: dict[str, Any] | None
    healthy: bool
    problems: tuple[str, ...]
    lease_holder: str | None = None  # the region etcd's writer lease names ("unknown": etcd did not answer)

    def member(self, region: str) -> MemberStatus:
        return next(m for m in self.members if m.region == region)


def read_status(cluster: Cluster, state: DatabaseState) -> DatabaseStatus:
    members = tuple(_member_status(cluster, state, region) for region in cluster.regions)
    writer = next((m for m in members if m.region == state.writer), None)
    replication = _replication_rows(cluster, state.writer) if writer and writer.role == "writer" else {}
    members = tuple(_with_lag(m, replication) for m in members)
    recon = _recon_slot(writer, replication)
    holder = _lease_holder(cluster)
    problems = _problems(state, members, recon)
    if holder not in (state.writer, "unknown") and not state.in_progress and writer and writer.role == "writer":
        problems = (*problems, f"the writer lease names {holder}, not the writer {state.writer}")
    return DatabaseStatus(state.name, state.writer, members, recon, not problems, problems, holder)


def _lease_holder(cluster: Cluster) -> str | None:
    try:
        return lease.holder(cluster.topo, cluster.network, cluster.name)
    except Unreachable:
        return "unknown"


def _member_status(cluster: Cluster, state: DatabaseState, region: str) -> MemberStatus:
    member = cluster.member(region)
    intended = "writer" if region == state.writer else "diverged" if region in state.diverged else "standby"
    base = _Identity(region=region, name=member.name, address=f"{member.host}:{member.port}", intended=intended)
    seen = member.reachable_state()
    if seen is None:
        return MemberStatus(role="unreachable", error=f"the agent of {region} cannot be reached", **base)
    if not seen["running"]:
        return MemberStatus(role="stopped", **base)
    try:
        with member.connect(connect_timeout=2) as conn:
            info = conn.execute(
                "select pg_is_in_recovery() as standby, "
                "case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end::text "
                "as lsn, pg_last_wal_receive_lsn()::text as receive_lsn, "
                "(select timeline_id from pg_control_checkpoint()) as checkpoint_tl, "
                "(select received_tli from pg_stat_wal_receiver) as received_tli, "
                "(select status from pg_stat_wal_receiver) as receiver"
            ).fetchone()
            slots = conn.execute(
                "select slot_name, slot_type, active, wal_status, restart_lsn::text, confirmed_flush_lsn::text "
                "from pg_replication_slots order by slot_name"
            ).fetchall()
    except DatabaseError as exc:
        return MemberStatus(role="unreachable", error=str(exc), **base)
    assert info is not None
    try:
        timeline = cluster.latest_history(region)[0] if not info["standby"] else (
            info["received_tli"] or info["checkpoint_tl"]
        )
    except DatabaseError as exc:  # answered once, then not (a link that just healed or broke again)
        return MemberStatus(role="unreachable", error=str(exc), **base)
    return MemberStatus(
        role="standby" if info["standby"] else "writer",
        timeline=timeline,
        lsn=info["lsn"],
        receive_lsn=info["receive_lsn"],
        streaming=(info["receiver"] == "streaming") if info["standby"] else None,
        slots=tuple(
            SlotStatus(s["slot_name"], s["slot_type"], s["active"], s["wal_status"], s["restart_lsn"],
                       s["confirmed_flush_lsn"]) for s in slots
        ),
        **base,
    )


def _replication_rows(cluster: Cluster, writer: str) -> dict[str, dict[str, Any]]:
    try:
        rows = cluster.member(writer).query(
            "select application_name, state, replay_lsn::text as replay_lsn, "
            "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint as lag_bytes, "
            "extract(epoch from replay_lag) * 1000 as lag_ms from pg_stat_replication"
        )
    except DatabaseError:
        return {}
    return {r["application_name"]: r for r in rows}


def _with_lag(member: MemberStatus, replication: dict[str, dict[str, Any]]) -> MemberStatus:
    row = replication.get(member.name)
    if member.role != "standby" or row is None:
        return member
    lag_ms = float(row["lag_ms"]) if row["lag_ms"] is not None else 0.0
    return replace(member, lag_bytes=int(row["lag_bytes"] or 0), lag_ms=round(lag_ms, 3))


def _recon_slot(writer: MemberStatus | None, replication: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if writer is None or writer.role != "writer":
        return None
    slot = next((s for s in writer.slots if s.name == RECON_SLOT), None)
    if slot is None:
        return {"exists": False}
    replays = [maybe_lsn(r["replay_lsn"]) for r in replication.values() if r["replay_lsn"]]
    confirmed = maybe_lsn(slot.confirmed_flush_lsn)
    behind = (min(x for x in replays if x is not None) - confirmed) if replays and confirmed is not None else None
    return {
        "exists": True,
        "wal_status": slot.wal_status,
        "confirmed_flush_lsn": slot.confirmed_flush_lsn,
        "behind_standby_bytes": behind,
        "standby_replay_lsn": format_lsn(min(x for x in replays if x is not None)) if replays else None,
    }


def _problems(state: DatabaseState, members: tuple[MemberStatus, ...], recon: dict[str, Any] | None) -> tuple[str, ...]:
    problems = []
    for m in members:
        if m.intended == "writer" and m.role != "writer":
            problems.append(f"writer {m.name} is {m.role}")
        elif m.intended == "standby" and m.role != "standby":
            problems.append(f"standby {m.name} is {m.role}")
        elif m.intended == "standby" and not m.streaming:
            problems.append(f"standby {m.name} is not streaming")
        elif m.intended == "diverged":
            problems.append(f"{m.name} diverged in a failover and waits for `db rebuild`")
    if recon is not None and not recon.get("exists"):
        problems.append("reconciliation slot is missing on the writer")
    elif recon is not None and recon.get("wal_status") == "lost":
        problems.append("reconciliation slot lost its WAL (wal_status=lost)")
    if state.in_progress:
        problems.append(f"operation {state.in_progress} did not finish")
    return tuple(problems)
