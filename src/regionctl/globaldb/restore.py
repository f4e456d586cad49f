"""Point-in-time restore into a new instance that never archives and never replicates (invariant 4).

The latest snapshot consistent before the target is copied, started with ``recovery.signal`` and a
``restore_command`` reading every archive the region holds, and promoted when it reaches the target. A restored
instance picks the next timeline number the real cluster may pick too, so it must never write to a shared archive:
``archive_mode=off`` and no ``primary_conninfo`` are passed on its command line.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from regionctl.errors import ConflictError, DatabaseError, InputError, NotFoundError, OperationTimeout
from regionctl.globaldb.lsn import format_lsn, parse_lsn
from regionctl.globaldb.members import Cluster, copy_datadir
from regionctl.globaldb.snapshots import (
    RestoredInstance,
    Snapshot,
    archive_sources,
    list_snapshots,
    ship_archive,
    snapshot_root,
)
from regionctl.globaldb.state import StateStore
from regionctl.globaldb.switchover import _load
from regionctl.runtime.postgres import PgInstance

RESTORE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RESTORE_SETTINGS = {"archive_mode": "off", "primary_conninfo": "", "primary_slot_name": "", "hot_standby": "on"}


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
        meta = cluster.topo.paths.restores / name / "restore.json"
        if meta.exists():
            return RestoredInstance(**json.loads(meta.read_text()))
    if (target_time is None) == (target_lsn is None):
        raise InputError("give exactly one of --time or --lsn")
    if target_time is not None and target_time.tzinfo is None:
        raise InputError(f"target time {target_time.isoformat()} has no timezone; add one, e.g. +00:00")
    if target_time is not None and target_time.timestamp() > time.time():
        raise InputError(f"target time {target_time.isoformat()} is in the future")
    lsn = parse_lsn(target_lsn) if target_lsn is not None else None
    state = _load(store, cluster.name)
    region = cluster.topo.settings.require_region(region or state.writer)
    snap = pick_snapshot(list_snapshots(cluster), region, target_time, lsn)
    started = time.monotonic()
    _archive_current_wal(cluster, state.writer)
    for origin in cluster.regions:
        if origin != region and cluster.archive_dir(origin).exists():
            ship_archive(cluster, origin, region)
    restore_id = name or f"restore-{cluster.name}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:4]}"
    instance = _prepare(cluster, region, snap, restore_id)
    target = target_time.isoformat() if target_time is not None else format_lsn(lsn or 0)
    settings = {
        **RESTORE_SETTINGS,
        "restore_command": _restore_command(archive_sources(cluster, region)),
        "recovery_target_timeline": "latest",
        "recovery_target_action": "promote",
        ("recovery_target_time" if target_time is not None else "recovery_target_lsn"): target,
    }
    return _recover(cluster, instance, settings, region, snap, target, started,
                    lambda: str(instance.scalar("select pg_current_wal_lsn()::text")))


def _recover(cluster: Cluster, instance: PgInstance, settings: dict[str, str], region: str, snap: Snapshot,
             target: str, started: float, recovered_to: Callable[[], str]) -> RestoredInstance:
    """Start a prepared instance in recovery, wait for its promotion and record it (or stop it and say why)."""
    try:
        instance.start(settings, timeout=600)
        _wait_promoted(instance, timeout=600)
    except (DatabaseError, OperationTimeout) as exc:
        instance.stop("immediate")
        raise DatabaseError(f"restore to {target} failed: {exc}; log: {instance.log_tail(3)}") from None
    result = RestoredInstance(
        id=instance.name, database=cluster.name, region=region, snapshot=snap.id, target=target,
        address=f"{instance.host}:{instance.port}", dsn=instance.conninfo(cluster.name),
        datadir=str(instance.datadir), recovered_to_lsn=recovered_to(),
        archiving=str(instance.scalar("show archive_mode")), seconds=round(time.monotonic() - started, 3),
    )
    (instance.datadir.parent / "restore.json").write_text(json.dumps(asdict(result), indent=2))
    return result


def restored_instance(cluster: Cluster, restore_id: str) -> PgInstance:
    directory = cluster.topo.paths.restores / restore_id
    meta = directory / "restore.json"
    if not meta.exists():
        raise NotFoundError(f"no restored instance {restore_id!r}")
    region = json.loads(meta.read_text())["region"]
    return _instance(cluster, region, restore_id)


def list_restores(cluster: Cluster) -> list[dict[str, object]]:
    found = []
    for meta in sorted(cluster.topo.paths.restores.glob("*/restore.json")):
        raw = json.loads(meta.read_text())
        if raw["database"] != cluster.name:
            continue
        raw["running"] = _instance(cluster, raw["region"], raw["id"]).running
        found.append(raw)
    return found


def drop_restore(cluster: Cluster, restore_id: str) -> str:
    instance = restored_instance(cluster, restore_id)
    instance.stop("fast")
    shutil.rmtree(instance.datadir.parent)
    cluster.topo.ports.release(f"restore/{restore_id}")
    return restore_id


def _instance(cluster: Cluster, region: str, restore_id: str) -> PgInstance:
    directory = cluster.topo.paths.restores / restore_id
    host = cluster.topo.settings.region_address(region)
    return PgInstance(
        name=restore_id, datadir=directory / "data", host=host,
        port=cluster.topo.ports.get(f"restore/{restore_id}", host), log_file=directory / "postgres.log",
        bins=cluster.topo.bins, runas=cluster.topo.runas,
    )


def _prepare(cluster: Cluster, region: str, snap: Snapshot, restore_id: str) -> PgInstance:
    instance = _instance(cluster, region, restore_id)
    copy_datadir(snapshot_root(cluster, region) / snap.id / "data", instance.datadir)
    for name in ("standby.signal", "postmaster.pid"):
        (instance.datadir / name).unlink(missing_ok=True)
    auto = instance.datadir / "postgresql.auto.conf"
    if auto.exists():
        auto.write_text("".join(x for x in auto.read_text().splitlines(True) if not x.startswith("primary_")))
    signal = instance.datadir / "recovery.signal"
    signal.touch()
    instance.runas.chown(signal)
    instance.datadir.parent.chmod(0o755)
    return instance


def _restore_command(sources: list[Path]) -> str:
    tries = [f"cp {p}/%f %p" for p in sources]
    return " || ".join(tries) if tries else "false"


def _archive_current_wal(cluster: Cluster, writer: str) -> None:
    """Close the writer's current WAL segment and wait until it is archived, so recent targets are reachable."""
    member = cluster.member(writer)
    if not member.running:
        return
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
        return
    raise ConflictError(f"{member.name} did not archive {segment} within 30s; check its archive directory")


def _wait_promoted(instance: PgInstance, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not instance.running:
            raise DatabaseError(f"{instance.name} stopped during recovery")
        try:
            if not instance.in_recovery():
                return
        except DatabaseError:
            pass
        time.sleep(0.05)
    raise OperationTimeout(f"{instance.name} did not reach its recovery target within {timeout:.0f}s")


def restore_timeline_end(cluster: Cluster, timeline: int, region: str, taken_before: float) -> RestoredInstance:
    """Restore the newest snapshot taken before ``taken_before`` and replay every archived WAL file of
    ``timeline`` to its end: the old writer's last archived state, when its own disk is gone.

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
    for origin in cluster.regions:
        if origin != region and cluster.topo.paths.archive(origin, cluster.name).exists():
            ship_archive(cluster, origin, region)
    restore_id = f"restore-{cluster.name}-tl{timeline}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    instance = _prepare(cluster, region, snap, restore_id)
    settings = {
        **RESTORE_SETTINGS,
        "restore_command": _restore_command(archive_sources(cluster, region)),
        "recovery_target_timeline": str(timeline),
    }
    return _recover(cluster, instance, settings, region, snap, f"end of timeline {timeline}", started,
                    lambda: _recovered_to(instance))


def _recovered_to(instance: PgInstance) -> str:
    """The end of the WAL replayed from the archive (the promotion's switchpoint in the new history file)."""
    rows = instance.query("select name from pg_ls_waldir() where name like '%%.history' order by name desc limit 1")
    if rows:
        text = str(instance.scalar("select pg_read_file(%s)", (f"pg_wal/{rows[0]['name']}",)))
        lines = [line.split() for line in text.splitlines() if line.strip() and line.split()[0].isdigit()]
        if lines:
            return lines[-1][1]
    return str(instance.scalar("select pg_current_wal_lsn()::text"))
