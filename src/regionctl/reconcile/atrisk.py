"""At risk now: what a failover right now would lose, named before anyone fails over.

The writer's reconciliation slot sits at (or just behind) what the standby has replayed; peeking it (never
consuming) decodes every transaction committed since. A promotion replays all the standby has received before
it ends recovery, so the transactions whose commit ends past the standby's *received* position are exactly
those a promotion now would leave behind: the same rule and the same decoder as the missing-transaction report
(``decode.py``), applied before the failover instead of after.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from regionctl.errors import ConflictError, DatabaseError
from regionctl.globaldb.lsn import format_lsn, parse_lsn
from regionctl.reconcile import decode
from regionctl.reconcile.lens import LensConfig
from regionctl.reconcile.testdecoding import normalise_table


@dataclass(frozen=True)
class AtRiskTransaction:
    commit_lsn: str
    commit_time: str | None
    changes: int
    tables: tuple[str, ...]


@dataclass(frozen=True)
class AtRisk:
    database: str
    writer: str
    standby: str
    writer_lsn: str
    standby_received_lsn: str
    window_bytes: int
    window_s: float | None  # age of the oldest transaction at risk (None: nothing at risk)
    transactions: tuple[AtRiskTransaction, ...]
    lenses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reason: str = ""

    @property
    def count(self) -> int:
        return len(self.transactions)


def read(database: str, writer: str, standby: str, writer_conninfo: str, received_lsn: str | None,
         lenses: tuple[LensConfig, ...]) -> AtRisk:
    """Decode what the standby has not received, from the writer's slot, without consuming it."""
    if received_lsn is None:
        raise ConflictError(f"{database}: the standby in {standby} reports no WAL position; nothing can be "
                            "compared (is it running?)")
    replayed = parse_lsn(received_lsn)
    try:
        with psycopg.connect(writer_conninfo, autocommit=True, row_factory=dict_row, connect_timeout=5) as conn:
            current = str(conn.execute("select pg_current_wal_lsn()::text as lsn").fetchone()["lsn"])  # type: ignore[index]
            read_ = decode.read_lost(conn, database, replayed, parse_lsn(current), advance=False)
    except psycopg.Error as exc:
        raise DatabaseError(f"{database}: reading the reconciliation slot on {writer}: {exc}".strip()) from None
    txs = tuple(AtRiskTransaction(format_lsn(t.commit_lsn), t.commit_time, len(t.changes),
                                  tuple(sorted({c.table for c in t.changes}))) for t in read_.lost)
    oldest = read_.lost[0].commit_time if read_.lost else None
    return AtRisk(
        database=database, writer=writer, standby=standby, writer_lsn=current, standby_received_lsn=received_lsn,
        window_bytes=max(0, parse_lsn(current) - replayed), window_s=_age(oldest), transactions=txs,
        lenses={lens.name: _lens_rows(lens, read_.lost) for lens in lenses},
        reason=(f"{len(txs)} transactions committed on {writer} after the standby's received position "
                f"{received_lsn}: a failover to {standby} now would lose them" if txs
                else f"the standby in {standby} has received every committed transaction"),
    )


def _lens_rows(lens: LensConfig, lost: tuple[decode.DecodedTransaction, ...]) -> list[dict[str, Any]]:
    """The lens's root rows the transactions at risk wrote (an order with its email and total, say)."""
    table = normalise_table(lens.root_table if "." in lens.root_table else f"public.{lens.root_table}")
    rows = []
    for tx in lost:
        for change in tx.changes:
            if normalise_table(change.table) == table and change.kind in ("insert", "update") and change.new:
                rows.append({lens.root_key: change.new.get(lens.root_key), "kind": change.kind,
                             **{f: change.new.get(f) for f in lens.fields}})
    return rows


def _age(commit_time: str | None) -> float | None:
    if commit_time is None:
        return None
    try:
        at = datetime.fromisoformat(commit_time)
    except ValueError:
        return None
    return round(max(0.0, time.time() - at.timestamp()), 3)
