"""Start a reconciliation instance: a throwaway copy of a preserved failover copy, never archiving, never replicating.

The preserved copy itself is never started (starting it would change it); its copy runs crash recovery on start
and then answers queries and logical decoding over the old timeline's transactions (invariant 4). When the old
writer's disk is gone (no preserved copy, no data directory), the last snapshot plus the archived WAL is restored
to the end of the old timeline instead: that instance has no reconciliation slot (base backups leave slots out)
and holds only what had been archived and shipped, which the report says.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regionctl.errors import ConflictError
from regionctl.globaldb.lsn import parse_lsn
from regionctl.globaldb.members import copy_datadir
from regionctl.globaldb.preserve import PreservedCopy
from regionctl.globaldb.state import PromotionRecord
from regionctl.runtime.postgres import PgInstance
from regionctl.runtime.topology import Topology

ISOLATION_SETTINGS = {
    "archive_mode": "off",
    "primary_conninfo": "",
    "primary_slot_name": "",
    "restore_command": "",
    "max_wal_senders": "0",
    "hot_standby": "on",
    "autovacuum": "off",  # keep dead tuples and the copy's files as the old writer left them
    "max_slot_wal_keep_size": "-1",  # never invalidate the reconciliation slot on this copy
    "default_transaction_read_only": "on",
}


def start_recon_instance(topo: Topology, copy: PreservedCopy, label: str | None = None) -> PgInstance:
    """Copy ``copy`` into a scratch directory and start it on a free port of the copy's region."""
    name = label or f"recon-{copy.database}-{int(time.time() * 1000)}"
    directory = topo.paths.root / "recon" / name
    host = topo.settings.region_address(copy.region)
    instance = PgInstance(
        name=name, datadir=directory / "data", host=host, port=topo.ports.get(f"recon/{name}", host),
        log_file=directory / "postgres.log", bins=topo.bins, runas=topo.runas,
    )
    if instance.running:
        return instance
    if not instance.datadir.exists():
        copy_datadir(Path(copy.path), instance.datadir)
        for stale in ("standby.signal", "recovery.signal", "postmaster.pid"):
            (instance.datadir / stale).unlink(missing_ok=True)
        directory.chmod(0o755)
    instance.start(ISOLATION_SETTINGS, timeout=300)
    return instance


def drop_recon_instance(topo: Topology, instance: PgInstance) -> None:
    instance.stop("fast")
    shutil.rmtree(instance.datadir.parent, ignore_errors=True)
    topo.ports.release(f"recon/{instance.name}")


@dataclass
class CaptureSource:
    """Where the old timeline's data is read from, for one report."""

    kind: str  # preserved_copy | snapshot_restore | external (two connection strings, no files: see external.py)
    name: str
    instance: PgInstance | None  # None for an external source: nothing of it runs here
    wal_dirs: tuple[Path, ...]  # where pg_waldump finds the old timeline's WAL, best first
    wal_end: int | None  # end of the copy's own WAL when it started: decoding never reads past it
    details: dict[str, Any] = field(default_factory=dict)
    drop: Callable[[], None] = lambda: None

    def describe(self) -> dict[str, Any]:
        where = None if self.instance is None else f"{self.instance.host}:{self.instance.port}"
        return {"kind": self.kind, "name": self.name, "instance": where, "wal_dirs": [str(p) for p in self.wal_dirs],
                **self.details}


def pick_copy(copies: list[PreservedCopy], record: PromotionRecord) -> PreservedCopy | None:
    """The copy kept for this failover, if its files are still there."""
    for copy in copies:
        if copy.promotion_id == record.id and (Path(copy.path) / "PG_VERSION").exists():
            return copy
    return None


def open_source(gdbs: Any, database: str, record: PromotionRecord) -> CaptureSource:
    """A running instance holding the old timeline: the preserved copy (kept now if it was not yet), else the
    last snapshot plus archived WAL restored to the end of the old timeline."""
    cluster = gdbs.cluster(database)
    region = record.from_region
    copy = pick_copy(gdbs.preserved(database), record)
    state = gdbs.state(database)
    if copy is None and region in state.diverged and cluster.member(region).exists:
        copy = gdbs.preserve(database, region)
    if copy is not None:
        return _from_copy(gdbs.topo, cluster, copy, record)
    if record.old_timeline is None:
        raise ConflictError(f"failover {record.id} recorded no old timeline; cannot restore it from the archive")
    return _from_archive(cluster, record)


def _from_copy(topo: Topology, cluster: Any, copy: PreservedCopy, record: PromotionRecord) -> CaptureSource:
    instance = start_recon_instance(topo, copy, f"recon-{copy.database}-{int(time.time() * 1000)}")
    end = instance.scalar("select pg_current_wal_insert_lsn()::text")
    archives = [topo.paths.archive(copy.region, cluster.name)]
    return CaptureSource(
        kind="preserved_copy", name=copy.name, instance=instance,
        wal_dirs=(Path(copy.path) / "pg_wal", *(p for p in archives if p.exists())),
        wal_end=parse_lsn(end), details={"copy_path": copy.path, "promotion_id": record.id},
        drop=lambda: drop_recon_instance(topo, instance),
    )


def _from_archive(cluster: Any, record: PromotionRecord) -> CaptureSource:
    from regionctl.globaldb import restore
    from regionctl.globaldb.snapshots import archive_sources

    survivor = record.to_region
    restored = restore.restore_timeline_end(cluster, int(record.old_timeline or 0), survivor, record.started_at)
    instance = restore.restored_instance(cluster, restored.id)
    return CaptureSource(
        kind="snapshot_restore", name=restored.id, instance=instance,
        wal_dirs=tuple(archive_sources(cluster, survivor)), wal_end=None,
        details={"snapshot": restored.snapshot, "recovered_to_lsn": restored.recovered_to_lsn,
                 "promotion_id": record.id},
        drop=lambda: None if restore.drop_restore(cluster, restored.id) else None,
    )
