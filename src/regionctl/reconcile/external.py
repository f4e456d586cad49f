"""Reconciling from two connection strings alone: the path to real regions.

At scale there is no preserved data directory here: there is a copy of the old writer someone restored (the
reference's `rds:unplanned-global-failover-*` snapshot, restored as a cluster) and the new writer. ``compare``
reads both over SQL and builds the same report as a local reconciliation: from the old copy's reconciliation slot
when it has one and the divergence point is known (given, or read from the new writer's timeline history), else
by the keyed diff. ``replay_to`` applies a stored report to a writer given by its connection string.

Connection strings may name a libpq service or rely on a password file: the report and every message show only
host, port and database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from regionctl.config import MergePolicySettings
from regionctl.errors import ConflictError, DatabaseError, InputError, first_line
from regionctl.globaldb.state import PromotionRecord
from regionctl.reconcile import catalog, lens
from regionctl.reconcile import replay as replay_mod
from regionctl.reconcile.capture import CaptureSource
from regionctl.reconcile.model import Report
from regionctl.reconcile.service import Progress, build_report, collector_paused, quiet
from regionctl.reconcile.store import ReportStore
from regionctl.regionalstore.pool import describe_dsn

METHODS = ("auto", "slot", "diff")
LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
OLD, NEW = "old", "new"  # what the report calls the two sides (no regions are known here)


def _connect(dsn: str, side: str) -> psycopg.Connection[Any]:
    """A reconciliation session on one side, or DatabaseError naming the side by host, port and database."""
    try:
        return catalog.connect(dsn, connect_timeout=10)
    except psycopg.Error as exc:
        raise DatabaseError(f"the {side} database at {describe_dsn(dsn)} cannot be reached: {first_line(exc)}"
                            ) from None


def timeline(conn: psycopg.Connection[Any]) -> int:
    """The timeline a server writes (or replays) on."""
    row = conn.execute("select case when pg_is_in_recovery() then (select timeline_id from pg_control_checkpoint())"
                       " else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end "
                       "as tli").fetchone()
    assert row is not None
    return int(row["tli"])


def divergence_from_history(conn: psycopg.Connection[Any], old_timeline: int) -> tuple[str | None, str]:
    """Where the new writer's timeline forked from ``old_timeline``, from its history file; or None and why."""
    tli = timeline(conn)
    if tli <= old_timeline:
        return None, f"the new writer is on timeline {tli}, not after the old copy's {old_timeline}"
    try:
        row = conn.execute("select pg_read_file(%s) as history", (f"pg_wal/{tli:08X}.history",)).fetchone()
    except psycopg.Error as exc:
        return None, f"the new writer's timeline history cannot be read ({first_line(exc)})"
    for line in (row["history"] if row else "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == str(old_timeline):
            return fields[1], f"timeline {old_timeline} ended at {fields[1]} (history of timeline {tli})"
    return None, f"timeline {old_timeline} is not in the new writer's history: they do not share a past"


def compare(old_dsn: str, new_dsn: str, database: str, root: Path, *, divergence_lsn: str | None = None,
            method: str = "auto", lenses: Sequence[lens.LensConfig] = (), progress: Progress = quiet,
            sides: tuple[str, str] = (OLD, NEW)) -> Report:
    """Build and store the report of what ``old_dsn`` (a copy of the former writer) has that ``new_dsn`` lost.
    ``sides`` names the former and the new writer in the report (regions, when the caller knows them)."""
    old_side, new_side = sides
    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)} for two connection strings, not {method!r}")
    if divergence_lsn is not None and not LSN.match(divergence_lsn):
        raise InputError(f"--divergence-lsn {divergence_lsn!r} is not an LSN like 0/3000160")
    with _connect(old_dsn, OLD) as old_conn, _connect(new_dsn, NEW) as new_conn:
        old_tl, new_tl = timeline(old_conn), timeline(new_conn)
        found_how = "given"
        if divergence_lsn is None:
            divergence_lsn, found_how = divergence_from_history(new_conn, old_tl)
    if divergence_lsn is None and method == "slot":
        raise ConflictError(f"the slot method needs the divergence point: {found_how}; pass --divergence-lsn")
    record = PromotionRecord(id=f"external-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}", kind="failover",
                             database=database, from_region=old_side, to_region=new_side, started_at=time.time(),
                             old_timeline=old_tl, new_timeline=new_tl, divergence_lsn=divergence_lsn,
                             details={"divergence": found_how})
    source = CaptureSource(kind="external", name=describe_dsn(old_dsn), instance=None, waldump=None, wal_end=None,
                           details={"old": describe_dsn(old_dsn), "new": describe_dsn(new_dsn),
                                    "divergence": found_how})
    store = ReportStore(root)
    report_id = f"report-{record.id}"
    with store.locked(report_id):
        progress(f"comparing {describe_dsn(old_dsn)} with {describe_dsn(new_dsn)}")
        with collector_paused():
            result = build_report(report_id, database, new_side, record, source, old_dsn, new_dsn, method, progress,
                                  lenses)
            progress(f"storing {len(result.transactions):,} lost transactions")
            store.save(result)
    return result


def replay_to(new_dsn: str, root: Path, report_id: str, approved_by: str,
              policies: Sequence[MergePolicySettings] = (), dry_run: bool = False) -> dict[str, Any]:
    """Apply a stored report's lost transactions that do not conflict (or that ``policies`` merge) to the writer
    at ``new_dsn``; ``dry_run`` keeps nothing and returns what it would have written."""
    if not approved_by or not approved_by.strip():
        raise InputError("a replay needs the name of the operator who approved it (--approver)")
    store = ReportStore(root)
    loaded = store.load(report_id)
    with store.locked(report_id), _connect(new_dsn, NEW) as conn:
        if conn.execute("select pg_is_in_recovery() as standby").fetchone()["standby"]:  # type: ignore[index]
            raise ConflictError(f"{describe_dsn(new_dsn)} is a standby: replay needs the writer")
        outcome = replay_mod.replay_on(conn, loaded, approved_by.strip(), describe_dsn(new_dsn), policies,
                                       dry_run).to_dict()
        if not dry_run:
            store.save_replay(report_id, outcome)
    return outcome
