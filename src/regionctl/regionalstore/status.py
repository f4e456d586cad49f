"""What replication is doing, read from the two databases themselves (no replicator needs to be up).

Per direction A->B: the cursor and totals live in B (``inbound``), the pause flag and the replicator's last word in
A (``outbound``), the backlog is counted in A after B's cursor, the lag over B's most recent applies. A database
that cannot be reached leaves its fields empty and says why in ``problems``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from regionctl.errors import RegionctlError
from regionctl.regionalstore import replication as rep
from regionctl.regionalstore import schema
from regionctl.regionalstore.pool import connect, describe_dsn

Conn = psycopg.Connection[Any]
LAG = """
select count(*) as n,
       percentile_cont(0.5) within group (order by lag_ms) as p50,
       percentile_cont(0.99) within group (order by lag_ms) as p99,
       max(lag_ms) as max, min(applied_at) as since
from (select lag_ms, applied_at from regionalstore.applies where source_region = %s
      order by id desc limit %s) recent"""


@dataclass(frozen=True)
class DirectionStatus:
    source: str
    target: str
    paused: bool | None = None
    pause_reason: str = ""
    last_shipped_seq: int | None = None
    last_shipped_xid: int | None = None
    backlog: int | None = None
    lag_p50_ms: float | None = None
    lag_p99_ms: float | None = None
    lag_max_ms: float | None = None
    lag_samples: int = 0
    lag_since: datetime | None = None
    received_total: int | None = None  # versions shipped and decided at the target (applied or not)
    applied_total: int | None = None  # of which won and were stored
    conflicts_total: int | None = None
    last_apply_at: datetime | None = None
    replicator_seen_at: datetime | None = None
    replicator_error: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def direction(self) -> str:
        return f"{self.source}->{self.target}"


@dataclass(frozen=True)
class ReplicationStatus:
    directions: tuple[DirectionStatus, ...]
    problems: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ConflictRecord:
    id: int
    detected_at: datetime
    region: str  # where it was detected (the target of the direction)
    source_region: str
    table: str
    key: str
    winner: str
    reason: str
    incoming: dict[str, Any]
    local: dict[str, Any]


def replication_status(dsn_a: str, dsn_b: str, recent: int = 1000) -> ReplicationStatus:
    """Both directions between the stores at ``dsn_a`` and ``dsn_b``; lag over the last ``recent`` applies.

    With one store unreachable, what the other knows is still reported (its flags, its backlog counted after the
    cursor the target last acknowledged) and the rest is left empty, with the reason in ``problems``.
    """
    conns: dict[str, Conn] = {}
    regions: dict[str, str] = {}
    problems: list[str] = []
    try:
        for dsn in (dsn_a, dsn_b):
            try:
                conn = connect(dsn, connect_timeout=3)
            except RegionctlError as exc:
                problems.append(str(exc))
                continue
            conns[dsn] = conn
            region = schema.store_region(conn)
            if region is None:
                problems.append(f"{describe_dsn(dsn)} has no regional store yet (never migrated)")
                continue
            regions[dsn] = region
        if not regions:
            return ReplicationStatus((), tuple(problems))
        if len(regions) == 1:
            [(known_dsn, known)] = regions.items()
            other = _peer_region(conns[known_dsn])
            if other is None:
                return ReplicationStatus((), tuple(problems))
            regions[dsn_b if known_dsn == dsn_a else dsn_a] = other
        a, b = regions[dsn_a], regions[dsn_b]
        ca, cb = conns.get(dsn_a), conns.get(dsn_b)
        return ReplicationStatus((_direction(ca, cb, a, b, recent), _direction(cb, ca, b, a, recent)),
                                 tuple(problems))
    finally:
        for conn in conns.values():
            conn.close()


def _peer_region(conn: Conn) -> str | None:
    row = conn.execute("select target_region as r from regionalstore.outbound union "
                       "select source_region from regionalstore.inbound limit 1").fetchone()
    return row["r"] if row else None


def _direction(source: Conn | None, target: Conn | None, src: str, dst: str, recent: int) -> DirectionStatus:
    problems: list[str] = []
    out: dict[str, Any] = {}
    inb: dict[str, Any] = {}
    lag: dict[str, Any] = {}
    if source is None:
        problems.append(f"{src}'s store is unreachable: pause flag and backlog unknown")
    else:
        out = _one(source, "select * from regionalstore.outbound where target_region = %s", (dst,), problems) or {}
    if target is None:
        problems.append(f"{dst}'s store is unreachable: cursor and lag unknown; backlog after the last ack")
        cursor = rep.Cursor(int(out.get("acked_xid") or 0), int(out.get("acked_seq") or 0))
    else:
        inb = _one(target, "select * from regionalstore.inbound where source_region = %s", (src,), problems) or {}
        lag = _one(target, LAG, (src, recent), problems) or {}
        cursor = rep.Cursor(int(inb.get("last_xid") or 0), int(inb.get("last_seq") or 0))
    n_backlog = None
    if source is not None:
        try:
            n_backlog = rep.backlog(source, src, cursor)
        except psycopg.Error as exc:
            problems.append(f"backlog: {str(exc).strip()}")
    return DirectionStatus(
        source=src, target=dst,
        paused=bool(out.get("paused", False)) if source is not None else None, pause_reason=out.get("reason") or "",
        last_shipped_seq=inb.get("last_seq"), last_shipped_xid=inb.get("last_xid"), backlog=n_backlog,
        lag_p50_ms=_round(lag.get("p50")), lag_p99_ms=_round(lag.get("p99")), lag_max_ms=_round(lag.get("max")),
        lag_samples=int(lag.get("n") or 0), lag_since=lag.get("since"),
        received_total=inb.get("received_total"), applied_total=inb.get("applied_total"),
        conflicts_total=inb.get("conflicts_total"),
        last_apply_at=inb.get("last_apply_at"), replicator_seen_at=out.get("seen_at"),
        replicator_error=out.get("last_error"), problems=tuple(problems),
    )


def _one(conn: Conn, sql: str, params: tuple[Any, ...], problems: list[str]) -> dict[str, Any] | None:
    try:
        row = conn.execute(sql, params).fetchone()
    except psycopg.Error as exc:
        problems.append(str(exc).strip().splitlines()[0])
        return None
    return dict(row) if row else None


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def list_conflicts(dsn: str, limit: int = 50, table: str | None = None, key: str | None = None) -> list[ConflictRecord]:
    """The conflicts detected in one region's store, newest first."""
    sql = "select * from regionalstore.conflicts where true"
    params: list[Any] = []
    if table is not None:
        sql += " and tbl = %s"
        params.append(table)
    if key is not None:
        sql += " and key = %s"
        params.append(key)
    sql += " order by id desc limit %s"
    params.append(max(1, limit))
    with connect(dsn, connect_timeout=3) as conn:
        region = schema.store_region(conn)
        if region is None:
            return []
        rows = conn.execute(sql, params).fetchall()
    return [ConflictRecord(r["id"], r["detected_at"], region, r["source_region"], r["tbl"], r["key"], r["winner"],
                           r["reason"], r["incoming"], r["local"]) for r in rows]
