"""Open a reconciliation source: a throwaway copy of a preserved failover copy, never archiving, never replicating.

The preserved copy itself is never started (starting it would change it); the old region's agent starts a copy
of it, which runs crash recovery and then answers queries and logical decoding over the old timeline's
transactions (invariant 4). When no preserved copy can be had (the old region cannot be reached, or its disk is
gone), the last snapshot plus the archived WAL held by the surviving region is restored to the end of the old
timeline instead: that instance has no reconciliation slot (base backups leave slots out) and holds only what
had been archived and shipped, which the report says. Everything is reached over the network: SQL through the
link, WAL records streamed by the agent that holds them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from regionctl.errors import ConflictError, Pending, Unreachable
from regionctl.globaldb.lsn import format_lsn, parse_lsn
from regionctl.globaldb.preserve import PreservedCopy
from regionctl.globaldb.state import PromotionRecord
from regionctl.runtime.pgsql import PgEndpoint
from regionctl.runtime.process import GLOBAL_PLANE

RECON = "recon"

WalReader = Callable[[int, int], Iterator[str]]  # (start LSN, timeline) -> pg_waldump's lines


@dataclass
class CaptureSource:
    """Where the old timeline's data is read from, for one report."""

    kind: str  # preserved_copy | snapshot_restore | external (two connection strings, no agent: see external.py)
    name: str
    instance: PgEndpoint | None  # None for an external source
    waldump: WalReader | None  # None when no agent holds the old timeline's WAL
    wal_end: int | None  # end of the copy's own WAL when it started: decoding never reads past it
    details: dict[str, Any] = field(default_factory=dict)
    drop: Callable[[], None] = lambda: None

    def describe(self) -> dict[str, Any]:
        where = None if self.instance is None else f"{self.instance.host}:{self.instance.port}"
        return {"kind": self.kind, "name": self.name, "instance": where, **self.details}


def pick_copy(copies: list[PreservedCopy], record: PromotionRecord) -> PreservedCopy | None:
    """The copy kept for this failover, if its region still holds it."""
    return next((c for c in copies if c.promotion_id == record.id), None)


def open_source(gdbs: Any, database: str, record: PromotionRecord) -> CaptureSource:
    """A running instance holding the old timeline: the preserved copy (kept now if it was not yet), else the
    last snapshot plus archived WAL restored to the end of the old timeline."""
    cluster = gdbs.cluster(database)
    region = record.from_region
    copy = pick_copy(gdbs.preserved(database), record)
    state = gdbs.state(database)
    if copy is None and region in state.diverged:
        try:
            if cluster.member(region).exists:
                copy = gdbs.preserve(database, region)
        except Unreachable:
            # Building it from the archive now would miss whatever was never shipped: wait for the region.
            raise Pending(f"the {database} report is pending: {region} cannot be reached, and the diverged copy "
                          "of its writer is there", f"regionctl reconcile report {database} --region {region}") \
                from None
    if copy is None and record.preserved_copy:  # kept, but its region does not answer now
        raise Pending(f"the {database} report is pending: the preserved copy {record.preserved_copy} is in "
                      f"{region}, which cannot be reached", f"regionctl reconcile report {database} --region {region}")
    if copy is not None:
        return from_copy(cluster, copy)
    if record.old_timeline is None:
        raise ConflictError(f"failover {record.id} recorded no old timeline; cannot restore it from the archive")
    return _from_archive(cluster, record)


def from_copy(cluster: Any, copy: PreservedCopy) -> CaptureSource:
    """A running copy of ``copy`` started by the agent of the region that holds it (``drop`` removes it)."""
    member = cluster.member(copy.region)
    name = f"recon-{copy.database}-{int(time.time() * 1000)}"
    started = member.start_recon(copy.name, name)
    host, port = cluster.network.reach(GLOBAL_PLANE, copy.region, f"recon/{name}", (started["host"],
                                                                                    int(started["port"])))
    return CaptureSource(
        kind="preserved_copy", name=copy.name,
        instance=PgEndpoint(name, host, port, str(cluster.topo.login.passfile)),
        waldump=lambda start, timeline: member.waldump(RECON, name, copy.name, format_lsn(start), timeline),
        wal_end=parse_lsn(started["wal_end"]), details={"copy_path": copy.path, "promotion_id": copy.promotion_id},
        drop=lambda: None if member.drop_scratch(RECON, name) else None,
    )


def _from_archive(cluster: Any, record: PromotionRecord) -> CaptureSource:
    from regionctl.globaldb import restore

    survivor = record.to_region
    restored = restore.restore_timeline_end(cluster, int(record.old_timeline or 0), survivor, record.started_at)
    member = cluster.member(survivor)
    return CaptureSource(
        kind="snapshot_restore", name=restored.id, instance=restore.restored_instance(cluster, restored.id),
        waldump=lambda start, timeline: member.waldump(restore.RESTORES, restored.id, None, format_lsn(start),
                                                       timeline),
        wal_end=None,
        details={"snapshot": restored.snapshot, "recovered_to_lsn": restored.recovered_to_lsn,
                 "promotion_id": record.id},
        drop=lambda: None if restore.drop_restore(cluster, restored.id) else None,
    )
