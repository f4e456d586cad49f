"""Point-in-time restore into a new instance that never archives and never replicates (invariant 4).

The global plane picks the latest snapshot consistent before the target, has the writer close and archive its
current WAL segment, has the restoring region's agent pull the archives it lacks, and then asks that agent to
recover the snapshot into a throwaway instance (``agent/scratch.py``: ``archive_mode=off``, no
``primary_conninfo``). The instance is reached like a member: through the link.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from regionctl.errors import ConflictError, DatabaseError, ExternalError, InputError, NotFoundError, Unreachable
from regionctl.globaldb.lsn import format_lsn, parse_lsn
from regionctl.globaldb.members import Cluster
from regionctl.globaldb.snapshots import RestoredInstance, Snapshot, list_snapshots, ship_archive
from regionctl.globaldb.state import StateStore, load_state
from regionctl.runtime.pgsql import PgEndpoint
from regionctl.runtime.process import GLOBAL_PLANE

RESTORE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RESTORES = "restores"


def pick_snapshot(snapshots: list[Snapshot], region: str, target_time: datetime | None,
                  target_lsn: int | None) -> Snapshot:
    """The newest snapshot held in ``region`` that is consistent before the target; errors name the bounds."""
    held = [s for s in snapshots if region in s.held_in]
    if not held:
        raise NotFoundError(f"no snapshot is held in {region}; take one with `regionctl db snapshot`")
    if target_time is not None:
        usable = [s for s in held if s.finished_at <= target_time.timestamp()]
        if not usable:
            first = datetime.fromtimestamp(held[0].finished_at, UTC).isoformat()
            raise InputError(f"target time {target_time.isoformat()} is before the first snapshot ({first})")
    else:
        assert target_lsn is not None
        usable = [s for s in held if parse_lsn(s.end_lsn) <= target_lsn]
        if not usable:
            raise InputError(f"target LSN {format_lsn(target_lsn)} is before the first snapshot ends "
                             f"({held[0].end_lsn})")
    return usable[-1]


def restore(cluster: Cluster, store: StateStore, target_time: datetime | None, target_lsn: str | None,
            region: str | None = None, name: str | None = None) -> RestoredInstance:
    """Restore into a new instance; with ``name``, restoring the same name again returns the first one."""
    if name is not None:
        if not RESTORE_NAME.match(name):
            raise InputError(f"restore name {name!r} must be lower-case letters, digits and dashes")
        existing = [r for r in list_restores(cluster) if r["id"] == name]
        if existing:
            return _result(cluster, existing[0], str(existing[0].get("target", "")))
    if (target_time is None) == (target_lsn is None):
        raise InputError("give exactly one of --time or --lsn")
    if target_time is not None and target_time.tzinfo is None:
        raise InputError(f"target time {target_time.isoformat()} has no timezone; add one, e.g. +00:00")
    if target_time is not None and target_time.timestamp() > time.time():
        raise InputError(f"target time {target_time.isoformat()} is in the future")
    lsn = parse_lsn(target_lsn) if target_lsn is not None else None
    state = load_state(store, cluster.name)
    region = cluster.topo.settings.require_region(region or state.writer)
    snap = pick_snapshot(list_snapshots(cluster), region, target_time, lsn)
    started = time.monotonic()
    _archive_current_wal(cluster, state.writer)
    _ship_to(cluster, region)
    restore_id = name or f"restore-{cluster.name}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:4]}"
    target = target_time.isoformat() if target_time is not None else format_lsn(lsn or 0)
    raw = cluster.member(region).restore(restore_id, snap.id, {"time": target} if target_time else {"lsn": target})
    return _result(cluster, {**raw, "target": target}, target, started)


def _ship_to(cluster: Cluster, region: str) -> None:
    """Bring every other region's archive to ``region`` (a region that cannot be reached keeps its own)."""
    for origin in cluster.regions:
        if origin != region:
            try:
                ship_archive(cluster, origin, region)
            except ExternalError:  # the origin cut off (its agent, or the pull through the link, fails)
                continue


def _result(cluster: Cluster, raw: dict[str, Any], target: str, started: float | None = None) -> RestoredInstance:
    endpoint = _endpoint(cluster, raw)
    return RestoredInstance(
        id=raw["id"], database=cluster.name, region=raw["region"], snapshot=raw["snapshot"], target=target,
        address=f"{endpoint.host}:{endpoint.port}", dsn=endpoint.conninfo(cluster.name),
        recovered_to_lsn=raw["recovered_to_lsn"], archiving=raw["archiving"],
        seconds=round(time.monotonic() - started, 3) if started is not None else float(raw["seconds"]),
    )


def _endpoint(cluster: Cluster, raw: dict[str, Any]) -> PgEndpoint:
    """A restored instance as the global plane reaches it (through the link, like a member)."""
    host, port = cluster.network.reach(GLOBAL_PLANE, raw["region"], f"restore/{raw['id']}",
                                       (raw["host"], int(raw["port"])))
    return PgEndpoint(raw["id"], host, port, str(cluster.topo.login.passfile))


def restored_instance(cluster: Cluster, restore_id: str) -> PgEndpoint:
    for raw in list_restores(cluster):
        if raw["id"] == restore_id:
            return _endpoint(cluster, raw)
    raise NotFoundError(f"no restored instance {restore_id!r}")


def list_restores(cluster: Cluster) -> list[dict[str, Any]]:
    """Restored instances of every region that answers."""
    found = []
    for region in cluster.regions:
        try:
            found += cluster.member(region).restores()
        except Unreachable:
            continue
    return found


def drop_restore(cluster: Cluster, restore_id: str) -> str:
    for raw in list_restores(cluster):
        if raw["id"] == restore_id:
            cluster.member(raw["region"]).drop_scratch(RESTORES, restore_id)
            return restore_id
    raise NotFoundError(f"no restored instance {restore_id!r}")


def _archive_current_wal(cluster: Cluster, writer: str) -> None:
    """Close the writer's current WAL segment and wait until it is archived, so recent targets are reachable."""
    member = cluster.member(writer)
    try:
        # A commit first: recovery to a time stops only at a commit record after the target, and with no
        # activity since the last switch pg_switch_wal() would not switch at all.
        member.scalar("select txid_current()")
        segment = member.scalar("select pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            last = member.scalar("select last_archived_wal from pg_stat_archiver")
            if last is not None and str(last)[:24] >= str(segment):
                return
            time.sleep(0.05)
    except DatabaseError:
        return  # no running writer: what is archived already is what there is
    raise ConflictError(f"{member.name} did not archive {segment} within 30s; check its archive directory")


def restore_timeline_end(cluster: Cluster, timeline: int, region: str, taken_before: float) -> RestoredInstance:
    """Restore the newest snapshot taken before ``taken_before`` and replay every archived WAL file of
    ``timeline`` to its end: the old writer's last archived state, when its own disk cannot be read.

    Used by reconciliation after a failover: the recovery target timeline is the old one (never "latest",
    which would follow the new writer's history). With no recovery target the instance promotes at the end of
    the archive; it never archives, like every restored instance.
    """
    snaps = [s for s in list_snapshots(cluster)
             if region in s.held_in and s.timeline <= timeline and s.started_at <= taken_before]
    if not snaps:
        raise NotFoundError(f"no snapshot of {cluster.name} on timeline {timeline} or earlier is held in {region}")
    snap = snaps[-1]
    started = time.monotonic()
    _ship_to(cluster, region)
    restore_id = f"restore-{cluster.name}-tl{timeline}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    raw = cluster.member(region).restore(restore_id, snap.id, {"timeline": timeline})
    return _result(cluster, raw, f"end of timeline {timeline}", started)
