"""Decode the reconciliation slot on the copy and keep exactly the transactions the new writer never had.

A transaction is lost exactly when the END of its commit record (what test_decoding prints as the COMMIT row's
LSN) is past the divergence point (the end of the last record the new writer replayed). The slot's own position
is never trusted for that: its advance is persisted only at checkpoints, so after a crash it lags; the filter is
applied to every transaction whatever the slot says.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

from psycopg.rows import tuple_row

from regionctl.globaldb.lsn import format_lsn, parse_lsn
from regionctl.globaldb.members import RECON_SLOT
from regionctl.reconcile.testdecoding import DecodedChange, parse_change, parse_commit

PEEK_OPTIONS = ("include-xids", "1", "include-timestamp", "1", "skip-empty-xacts", "1")


@dataclass(slots=True)  # one per decoded transaction (see DecodedChange)
class DecodedTransaction:
    xid: int | None
    commit_lsn: int  # end of the commit record
    commit_time: str | None
    changes: tuple[DecodedChange, ...]


@dataclass(frozen=True)
class SlotVerdict:
    usable: bool
    reason: str
    confirmed_flush_lsn: str | None = None


@dataclass(frozen=True)
class SlotRead:
    lost: tuple[DecodedTransaction, ...]
    seen: int  # transactions decoded in total
    already_replicated: int  # decoded but committed at or before the divergence point
    last_replicated_commit_time: str | None
    slot_start: str | None
    upto: str | None


def is_lost(commit_end_lsn: int, divergence_lsn: int) -> bool:
    """The one rule: committed after the divergence point on the old timeline."""
    return commit_end_lsn > divergence_lsn


def judge_slot(row: dict[str, Any] | None, database: str, divergence_lsn: int) -> SlotVerdict:
    """Can this slot show every lost transaction? Each refusal names why (and the report records it)."""
    if row is None:
        return SlotVerdict(False, f"the copy has no slot {RECON_SLOT!r}")
    if row.get("database") != database:
        return SlotVerdict(False, f"slot {RECON_SLOT!r} belongs to database {row.get('database')!r}, "
                                  f"not {database!r}, so it never decoded this database")
    if row.get("plugin") != "test_decoding":
        return SlotVerdict(False, f"slot {RECON_SLOT!r} uses plugin {row.get('plugin')!r}, not test_decoding")
    if row.get("wal_status") == "lost" or row.get("invalidation_reason"):
        return SlotVerdict(False, f"slot {RECON_SLOT!r} was invalidated "
                                  f"({row.get('invalidation_reason') or 'wal_status=lost'}); its WAL is gone")
    confirmed = row.get("confirmed_flush_lsn")
    if confirmed is None:
        return SlotVerdict(False, f"slot {RECON_SLOT!r} has no confirmed position")
    if parse_lsn(confirmed) > divergence_lsn:
        return SlotVerdict(False, f"slot {RECON_SLOT!r} is at {confirmed}, past the divergence point "
                                  f"{format_lsn(divergence_lsn)}: it would hide lost transactions", confirmed)
    return SlotVerdict(True, f"slot {RECON_SLOT!r} at {confirmed} is at or before the divergence point "
                             f"{format_lsn(divergence_lsn)}", confirmed)


def split_lost(rows: Iterable[tuple[str, str]], divergence_lsn: int) -> Iterator[DecodedTransaction | tuple[str, Any]]:
    """Group peeked rows (lsn, data) into transactions and yield the lost ones, parsed.

    Changes of transactions that were replicated are not parsed at all (most of the stream when the slot
    lags). Yields ("replicated", commit_time) markers for the others so the caller can count them. Runs once
    per decoded row, so BEGIN and COMMIT are told apart by their first letters before any regex.
    """
    pending: list[str] = []
    in_tx = False
    for lsn, data in rows:
        first = data[:1]
        if first == "B" and data.startswith("BEGIN"):
            pending, in_tx = [], True
            continue
        if first == "C" and data.startswith("COMMIT"):
            commit = parse_commit(data)
            if commit is not None:
                end = parse_lsn(lsn)
                if is_lost(end, divergence_lsn):
                    changes = tuple(c for c in map(parse_change, pending) if c is not None)
                    if changes:
                        yield DecodedTransaction(commit.xid, end, commit.at, changes)
                else:
                    yield ("replicated", commit.at)
                pending, in_tx = [], False
                continue
        if in_tx:
            pending.append(data)


def read_lost(conn: Any, database: str, divergence_lsn: int, upto_lsn: int | None,
              advance: bool = True) -> SlotRead:
    """Peek the slot on the reconciliation instance (never consume it: the copy can be read again).

    When the slot is behind the divergence point it is first advanced to it on this throwaway copy: decoding
    the already-replicated stretch without output is much cheaper than printing and discarding it. On a live
    writer (``advance=False``, at risk now) the slot is left where its advancer keeps it.
    """
    row = conn.execute(
        "select restart_lsn::text, confirmed_flush_lsn::text from pg_replication_slots where slot_name = %s",
        (RECON_SLOT,),
    ).fetchone()
    start = row["confirmed_flush_lsn"] if row else None
    if advance and start is not None and parse_lsn(start) < divergence_lsn:
        conn.execute("select pg_replication_slot_advance(%s, %s::pg_lsn)", (RECON_SLOT, format_lsn(divergence_lsn)))
    upto = format_lsn(upto_lsn) if upto_lsn is not None else None
    lost: list[DecodedTransaction] = []
    seen = replicated = 0
    last_replicated: str | None = None
    with conn.transaction(), conn.cursor(name="recon_peek", row_factory=tuple_row) as cur:
        cur.itersize = 10_000
        cur.execute(
            "select lsn::text as lsn, data from pg_logical_slot_peek_changes(%s, %s::pg_lsn, NULL, "
            + ", ".join(["%s"] * len(PEEK_OPTIONS)) + ")",
            (RECON_SLOT, upto, *PEEK_OPTIONS),
        )
        batches = iter(lambda: cur.fetchmany(10_000), [])  # a list per fetch: iterating the cursor costs per row
        for item in split_lost(chain.from_iterable(batches), divergence_lsn):
            seen += 1
            if isinstance(item, DecodedTransaction):
                lost.append(item)
            else:
                replicated += 1
                last_replicated = item[1] or last_replicated
    return SlotRead(tuple(lost), seen, replicated, last_replicated, start, upto)
