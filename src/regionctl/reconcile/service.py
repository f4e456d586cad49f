"""Reconciliation as plain functions: build the missing-transaction report of a failover, replay it, list them.

The CLI (``regionctl reconcile``) and the runbook actions ``reconcile.report`` / ``reconcile.replay`` call these.
A report is built once per failover (asking again returns it, unless ``fresh``); the method is chosen in order
slot -> WAL -> keyed diff, and every step of that choice is recorded with its reason in ``method_trail``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from regionctl.config import MergePolicySettings
from regionctl.errors import ConflictError, InputError, RegionctlError
from regionctl.globaldb.lsn import parse_lsn
from regionctl.globaldb.members import RECON_SLOT
from regionctl.globaldb.state import PromotionRecord
from regionctl.reconcile import atrisk, catalog, decode, keyeddiff, lens, merge, waldump, walmethod
from regionctl.reconcile import replay as replay_mod
from regionctl.reconcile.assemble import counts, window
from regionctl.reconcile.capture import CaptureSource, open_source
from regionctl.reconcile.classify import Captured, classify, transaction_id
from regionctl.reconcile.model import Report, TableMeta
from regionctl.reconcile.schema import schema_diff
from regionctl.reconcile.store import ReportStore
from regionctl.reconcile.versions import PgRowSource
from regionctl.runtime.topology import Network, Topology

METHODS = ("auto", "slot", "wal", "diff")
Progress = Callable[[str], None]


def quiet(stage: str) -> None:
    """The default ``progress``: nobody is watching."""


@dataclass
class _Found:
    method: str
    captured: list[Captured]
    complete: bool
    trail: list[str]
    warnings: list[str]


def report(topo: Topology, network: Network, database: str, region: str, *, method: str = "auto",
           lenses: Sequence[lens.LensConfig] | None = None, fresh: bool = False,
           keep_instance: bool = False, progress: Progress = quiet) -> Report:
    """The missing-transaction report of the last failover away from ``region`` (the former writer);
    ``progress`` hears each stage as it starts."""
    from regionctl.globaldb.service import GlobalDatabases

    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    gdbs = GlobalDatabases(topo, network)
    topo.settings.require_region(region)
    state = gdbs.state(database)
    record = state.last_failover_from(region)
    if record is None or record.divergence_lsn is None:
        raise ConflictError(f"{database} has no recorded failover away from {region}; nothing was lost there")
    store = ReportStore(topo.paths.root)
    existing = store.for_promotion(record.id)
    if existing and not fresh:
        return store.load(existing[-1])
    report_id = f"report-{record.id}" + (f"-{len(existing) + 1}" if existing else "")
    writer = gdbs.cluster(database).member(state.writer)
    if not writer.running:
        raise ConflictError(f"the {database} writer {writer.name} is not running; the report compares against it")
    with store.locked(report_id):
        if store.exists(report_id) and not fresh:  # built by a concurrent caller while we waited for the lock
            return store.load(report_id)
        started = time.monotonic()
        progress(f"capturing the old timeline of {database} (copying the preserved copy, starting it)")
        source = open_source(gdbs, database, record)
        captured_at = time.monotonic()
        views = lenses if lenses is not None else lens.configured(topo.settings.workload.lenses, database)
        try:
            with collector_paused():
                if source.instance is None:
                    raise ConflictError(f"{source.kind} source {source.name} runs no instance to read")
                result = build_report(report_id, database, state.writer, record, source,
                                source.instance.conninfo(database), writer.conninfo(database), method, progress,
                                views, topo.settings.reconcile.policies)
        finally:
            built_at = time.monotonic()
            if not keep_instance:
                try:
                    progress("dropping the reconciliation instance")
                finally:
                    source.drop()
        result.seconds.update({"capture": round(captured_at - started, 3), "cleanup": round(
            time.monotonic() - built_at, 3)})
        stored_at = time.monotonic()
        progress(f"storing {len(result.transactions):,} lost transactions")
        with collector_paused():
            store.save(result)
        done = time.monotonic()
        # Figures of the save itself are known only after it: returned, not stored.
        result.seconds.update({"store": round(done - stored_at, 3),
                               "analysis": round(built_at - captured_at + done - stored_at, 3),
                               "total": round(done - started, 3)})
    return result


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a report is built: it makes hundreds of thousands of small objects
    that all stay alive until the report is stored, so every collection pass would walk them for nothing
    (measured: a quarter of the analysis time). The build makes no reference cycles worth collecting."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_report(report_id: str, database: str, new_writer: str, record: PromotionRecord, source: CaptureSource,
           copy_conninfo: str, writer_conninfo: str, method: str, progress: Progress,
           lenses: Sequence[lens.LensConfig], policies: Sequence[MergePolicySettings] = ()) -> Report:
    divergence = parse_lsn(record.divergence_lsn or "0/0")
    with catalog.connect(copy_conninfo) as copy_conn, catalog.connect(writer_conninfo) as new_conn:
        t0 = time.monotonic()
        copy_tables, new_tables = catalog.read_tables(copy_conn), catalog.read_tables(new_conn)
        copy_src, new_src = PgRowSource(copy_conn, copy_tables), PgRowSource(new_conn, new_tables)
        progress(f"finding the lost transactions (method {method})")
        found = find_lost(method, database, record, source, divergence, copy_conn, new_conn, copy_src, new_src)
        progress(f"classifying {len(found.captured):,} lost transactions ({found.method}) against the new writer")
        t1 = time.monotonic()
        meta = {n: TableMeta(t.types(), t.key) for n, t in copy_tables.items()}
        result = classify(found.captured, meta, new_src, copy_src)
        schema = schema_diff(copy_tables, new_tables, catalog.read_constraints(copy_conn),
                             catalog.read_constraints(new_conn), catalog.read_indexes(copy_conn),
                             catalog.read_indexes(new_conn), catalog.read_sequences(copy_conn),
                             catalog.read_sequences(new_conn))
        t2 = time.monotonic()
    warnings = list(found.warnings)
    if not copy_src.track_commit_ts or not new_src.track_commit_ts:
        warnings.append("track_commit_timestamp is off on one side: conflicts cannot be told from shared rows")
    if any(ch.action == "manual" for tx in result.transactions for ch in tx.changes):
        warnings.append("some changes cannot be replayed automatically (see their notes)")
    return Report(
        id=report_id, database=database, former_writer=record.from_region, new_writer=new_writer,
        promotion_id=record.id, created_at=datetime.now(UTC).isoformat(), method=found.method,
        method_trail=tuple(found.trail), complete=found.complete, divergence_lsn=record.divergence_lsn,
        old_timeline=record.old_timeline, new_timeline=record.new_timeline, source=source.describe(),
        window=window(result.transactions, record.divergence_lsn, record.details.get("last_replayed_commit_at")),
        lag_before=dict(record.lag_before), counts=counts(result.transactions), tables=meta,
        transactions=result.transactions, schema=schema,
        conflicts=merge.propose(result.transactions, result.conflicts, merge.policies_for(policies, database)),
        lenses=lens.build_all(lenses, result.transactions, result.conflicts), warnings=tuple(warnings),
        seconds={"find": round(t1 - t0, 3), "classify": round(t2 - t1, 3)},
    )


def find_lost(method: str, database: str, record: PromotionRecord, source: CaptureSource, divergence: int,
              copy_conn: psycopg.Connection[Any], new_conn: psycopg.Connection[Any], copy_src: PgRowSource,
              new_src: PgRowSource) -> _Found:
    """Try the methods in order (or the one asked for); each refusal is kept with its reason."""
    trail: list[str] = []
    warnings: list[str] = []
    if source.kind == "snapshot_restore":
        warnings.append(f"the old writer's disk is gone: restored {source.details.get('snapshot')} plus archived "
                        f"WAL to {source.details.get('recovered_to_lsn')}; commits after the last archived WAL "
                        "file cannot be listed")
    if method in ("auto", "slot") and record.divergence_lsn is None:
        trail.append("slot: the divergence point is unknown (give --divergence-lsn)")
    elif method in ("auto", "slot"):
        row = copy_conn.execute(
            "select database, plugin, wal_status, invalidation_reason, confirmed_flush_lsn::text "
            "from pg_replication_slots where slot_name = %s", (RECON_SLOT,)).fetchone()
        verdict = decode.judge_slot(row, database, divergence)
        trail.append(f"slot: {verdict.reason}")
        if verdict.usable:
            read = decode.read_lost(copy_conn, database, divergence, source.wal_end)
            captured = [Captured(transaction_id(record.old_timeline, t.commit_lsn), t.commit_lsn, t.commit_time,
                                 t.xid, t.changes) for t in read.lost]
            return _Found("slot", captured, source.kind == "preserved_copy", trail, warnings)
    if method in ("auto", "wal") and source.waldump is None:
        trail.append("wal: needs an agent holding the old timeline's WAL files (an external source has none)")
    elif method in ("auto", "wal"):
        try:
            return _wal(source, record, divergence, copy_conn, copy_src, new_src, trail, warnings)
        except RegionctlError as exc:
            trail.append(f"wal: {exc}")
    if method in ("auto", "diff"):
        result = keyeddiff.run(copy_conn, new_conn, copy_src, new_src)
        trail.append(f"diff: compared {len(result.tables)} tables; {result.new_writer_only} differences were "
                     "changes made on the new writer since the failover")
        warnings += list(result.warnings)
        warnings.append("keyed diff: transactions regrouped by commit time; deleted rows not tied to a transaction")
        return _Found("diff", list(result.captured), False, trail, warnings)
    raise ConflictError(f"method {method!r} cannot be used here: {'; '.join(trail)}")


def _wal(source: CaptureSource, record: PromotionRecord, divergence: int, copy_conn: psycopg.Connection[Any],
         copy_src: PgRowSource, new_src: PgRowSource, trail: list[str], warnings: list[str]) -> _Found:
    timeline = int(record.old_timeline or 0)
    if source.waldump is None:
        raise ConflictError("wal: no agent holds the old timeline's WAL files")
    segment = int(copy_conn.execute("select setting::bigint * case unit when 'MB' then 1048576 when 'kB' then 1024 "
                                    "else 1 end as b from pg_settings where name = 'wal_segment_size'"
                                    ).fetchone()["b"])  # type: ignore[index]
    scan = waldump.scan(source.waldump(divergence, timeline),
                        catalog.database_oid(copy_conn), segment)
    found = walmethod.capture(scan, copy_src, new_src, record.old_timeline)
    trail.append(f"wal: pg_waldump read {scan.records} records after the divergence point; "
                 f"{len(scan.committed)} transactions committed there")
    warnings += list(found.warnings)
    if found.manual:
        warnings.append(f"wal: {found.manual} row changes could not be tied to a row")
    return _Found("wal", list(found.captured), source.kind == "preserved_copy" and found.manual == 0, trail, warnings)


def replay(topo: Topology, network: Network, report_id: str, approved_by: str, dry_run: bool = False,
           policies: Sequence[MergePolicySettings] | None = None) -> dict[str, Any]:
    """Apply a report's lost transactions that do not conflict or that merge policies resolve (the settings'
    ``reconcile.policies`` unless ``policies`` says otherwise); record who approved it and what happened
    (``dry_run``: nothing kept, nothing recorded)."""
    from regionctl.globaldb.service import GlobalDatabases

    if not approved_by or not approved_by.strip():
        raise InputError("a replay needs the name of the operator who approved it (--approver)")
    store = ReportStore(topo.paths.root)
    loaded = store.load(report_id)
    gdbs = GlobalDatabases(topo, network)
    state = gdbs.state(loaded.database)
    writer = gdbs.cluster(loaded.database).member(state.writer)
    if not writer.running:
        raise ConflictError(f"the {loaded.database} writer {writer.name} is not running; nothing can be replayed")
    with store.locked(report_id), catalog.connect(writer.conninfo(loaded.database)) as conn:
        rules = topo.settings.reconcile.policies if policies is None else policies
        outcome = replay_mod.replay_on(conn, loaded, approved_by.strip(), state.writer, rules, dry_run).to_dict()
        if not dry_run:
            store.save_replay(report_id, outcome)
    return outcome


def at_risk(topo: Topology, network: Network, database: str) -> atrisk.AtRisk:
    """What a failover of ``database`` right now would lose (``atrisk.py``)."""
    from regionctl.globaldb.service import GlobalDatabases

    gdbs = GlobalDatabases(topo, network)
    status = gdbs.status(database)
    writer = status.member(status.writer)
    if writer.role != "writer":
        raise ConflictError(f"{database}: the writer in {status.writer} is {writer.role}; nothing to compare")
    standby = next(m for m in status.members if m.region != status.writer)
    conninfo = gdbs.cluster(database).member(status.writer).conninfo(database)
    received = max((x for x in (standby.lsn, standby.receive_lsn) if x), key=parse_lsn, default=None)
    return atrisk.read(database, status.writer, standby.region, conninfo, received,
                       lens.configured(topo.settings.workload.lenses, database))


def list_reports(topo: Topology, database: str | None = None) -> list[dict[str, Any]]:
    return ReportStore(topo.paths.root).list(database)


def show(topo: Topology, report_id: str) -> Report:
    return ReportStore(topo.paths.root).load(report_id)


@dataclass(frozen=True)
class Reconciler:
    """What the runbook engine's ``Reconciler`` port expects (``report`` carries ``report_id``)."""

    topo: Topology
    network: Network

    def report(self, database: str, region: str) -> dict[str, Any]:
        return report(self.topo, self.network, database, region).summary()

    def replay(self, report_id: str, approved_by: str) -> dict[str, Any]:
        return replay(self.topo, self.network, report_id, approved_by)
