"""Put a report together from what the methods found: counts, the lost window (measured RPO), the rest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from regionctl.globaldb.lsn import format_lsn, parse_lsn
from regionctl.reconcile.model import KINDS, LostTransaction


def counts(transactions: Sequence[LostTransaction]) -> dict[str, dict[str, int]]:
    """Row changes per table and kind (every recorded change, covered ones included)."""
    seen = Counter((change.table, change.kind) for tx in transactions for change in tx.changes)
    out: dict[str, dict[str, int]] = {}
    for (table, kind), n in seen.items():
        out.setdefault(table, {k: 0 for k in (*KINDS, "truncate")})[kind] = n
    return dict(sorted(out.items()))


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def window(transactions: Sequence[LostTransaction], divergence_lsn: str | None,
           last_replicated_commit_at: str | None) -> dict[str, Any]:
    """When the lost commits happened: the data-loss window actually measured, from the old writer's clock.

    ``rpo_seconds`` runs from the last commit the new writer replayed (when known) to the last lost commit.
    """
    times = sorted(t for t in (_time(tx.commit_time) for tx in transactions) if t is not None)
    lsns = sorted(parse_lsn(tx.commit_lsn) for tx in transactions if tx.commit_lsn)
    start = _time(last_replicated_commit_at)
    first, last = (times[0], times[-1]) if times else (None, None)
    origin = start or first
    return {
        "transactions": len(transactions),
        "last_replicated_commit_at": last_replicated_commit_at,
        "first_lost_commit_at": None if first is None else first.isoformat(),
        "last_lost_commit_at": None if last is None else last.isoformat(),
        "lost_commits_span_seconds": None if first is None or last is None else (last - first).total_seconds(),
        "rpo_seconds": None if origin is None or last is None else round((last - origin).total_seconds(), 6),
        "first_lost_commit_lsn": None if not lsns else format_lsn(lsns[0]),
        "last_lost_commit_lsn": None if not lsns else format_lsn(lsns[-1]),
        "lost_wal_bytes": None if not lsns or not divergence_lsn else lsns[-1] - parse_lsn(divergence_lsn),
    }

