"""The two halves of shipping one batch: read local changes at the source, apply them at the target.

The change feed is the items table itself, ordered by (xid, seq) of the last local change. Only rows whose writing
transaction is older than every running one that may write local items are read (the snapshot's xmin, leaving out
replicator sessions), so a slow transaction can never commit a change behind the cursor: nothing is skipped,
whatever the commit order. Local writes NOTIFY at commit, so the replicator wakes at once instead of polling.
Only versions that originated at the source are shipped (what arrived from elsewhere goes back nowhere: no
ping-pong).

The apply runs in one target transaction with the cursor update, so a batch is applied exactly once even if the
replicator dies at any point; a redelivered batch would be skipped as duplicates anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from regionctl.errors import ConflictError, DatabaseError
from regionctl.regionalstore.lww import Action, Decision, Version, decide

Conn = psycopg.Connection[Any]
Locals = dict[tuple[str, str], dict[str, Any] | None]  # the locked local row of each key, None if we inserted it
OUTBOUND_LOCK = 0x7273  # advisory lock class held (shared) by a replicator while it ships, (excl.) by pause()
INBOUND_LOCK = 0x7274  # advisory lock class: one replicator per direction applies into a target

CHANNEL = "regionalstore_changes"  # NOTIFYed at commit by local writes to items: wakes the replicator at once
SHIP_APP = "regionalstore-ship"  # application_name prefixes of replicator sessions (they never write local items)
APPLY_APP = "regionalstore-apply"
LISTEN_APP = "regionalstore-listen"
# The horizon: the oldest transaction still running that may write local items. Replicator sessions are left out
# (an apply only writes other regions' versions), so a long apply never holds local changes back.
READ_CHANGES = f"""
with horizon as (
    select coalesce(min(x::text::bigint), pg_snapshot_xmax(pg_current_snapshot())::text::bigint) as xid
    from pg_snapshot_xip(pg_current_snapshot()) x
    where (x::text::bigint %% 4294967296) not in (
        select backend_xid::text::bigint from pg_stat_activity
        where backend_xid is not null
          and (application_name like '{SHIP_APP} %%' or application_name like '{APPLY_APP} %%'))
)
select tbl, key, value, deleted, hlc, origin, vv, origin_ts, i.xid, seq
from regionalstore.items i, horizon
where origin = %(origin)s and (i.xid, seq) > (%(xid)s, %(seq)s) and i.xid < horizon.xid
order by i.xid, seq
limit %(limit)s"""
BACKLOG = "select count(*) as n from regionalstore.items where origin = %(origin)s and (xid, seq) > (%(xid)s, %(seq)s)"
RECORD = """tbl text, key text, value jsonb, deleted boolean, hlc bigint, origin text, vv jsonb,
    origin_ts timestamptz"""
INSERT_OR_LOCK = f"""
with incoming as (select * from jsonb_to_recordset(%(batch)s) as t({RECORD})),
inserted as (
    insert into regionalstore.items (tbl, key, value, deleted, hlc, origin, vv, origin_ts, applied_at, seq, xid)
    select tbl, key, value, deleted, hlc, origin, vv, origin_ts, clock_timestamp(),
           nextval('regionalstore.change_seq'), pg_current_xact_id()::text::bigint
    from incoming order by tbl, key
    on conflict (tbl, key) do nothing
    returning tbl, key
),
locked as (
    select i.tbl, i.key, i.value, i.deleted, i.hlc, i.origin, i.vv, i.origin_ts
    from regionalstore.items i join incoming n on i.tbl = n.tbl collate "C" and i.key = n.key collate "C"
    order by i.tbl, i.key
    for update of i
)
select true as inserted, tbl, key, null::jsonb as value, null::boolean as deleted, null::bigint as hlc,
       null::text as origin, null::jsonb as vv, null::timestamptz as origin_ts from inserted
union all
select false, tbl, key, value, deleted, hlc, origin, vv, origin_ts from locked"""
LOCK_AGAIN = """
select tbl, key, value, deleted, hlc, origin, vv, origin_ts from regionalstore.items
where (tbl, key) in (select t.tbl collate "C", t.key collate "C"
                     from jsonb_to_recordset(%(keys)s) as t(tbl text, key text))
order by tbl, key for update"""
WRITE_BACK = f"""
with replaced as (
    update regionalstore.items i set value = u.value, deleted = u.deleted, hlc = u.hlc, origin = u.origin, vv = u.vv,
        origin_ts = u.origin_ts, applied_at = clock_timestamp(), seq = nextval('regionalstore.change_seq'),
        xid = pg_current_xact_id()::text::bigint
    from jsonb_to_recordset(%(replace)s) as u({RECORD})
    where i.tbl = u.tbl collate "C" and i.key = u.key collate "C"
    returning 1
),
kept as (
    update regionalstore.items i set vv = u.vv
    from jsonb_to_recordset(%(keep)s) as u(tbl text, key text, vv jsonb)
    where i.tbl = u.tbl collate "C" and i.key = u.key collate "C"
    returning 1
),
logged as (
    insert into regionalstore.conflicts (source_region, tbl, key, winner, reason, incoming, local)
    select %(source)s, c.tbl, c.key, c.winner, c.reason, c.incoming, c.local
    from jsonb_to_recordset(%(conflicts)s) as c(tbl text, key text, winner text, reason text, incoming jsonb,
                                                   local jsonb)
    returning 1
),
sampled as (
    insert into regionalstore.applies (source_region, lag_ms)
    select %(source)s, greatest(0, extract(epoch from clock_timestamp() - t.origin_ts) * 1000)
    from jsonb_to_recordset(%(applied_ts)s) as t(origin_ts timestamptz)
    returning 1
),
cursor_moved as (
    insert into regionalstore.inbound as b (source_region, last_xid, last_seq, received_total, applied_total,
                                            conflicts_total, last_apply_at, updated_at)
    values (%(source)s, %(xid)s, %(seq)s, %(received)s, %(applied)s, %(n_conflicts)s, clock_timestamp(),
            clock_timestamp())
    on conflict (source_region) do update set
        last_xid = excluded.last_xid, last_seq = excluded.last_seq,
        received_total = b.received_total + excluded.received_total,
        applied_total = b.applied_total + excluded.applied_total,
        conflicts_total = b.conflicts_total + excluded.conflicts_total,
        last_apply_at = excluded.last_apply_at, updated_at = excluded.updated_at
    returning 1
)
select (select count(*) from replaced) as replaced, (select count(*) from kept) as kept,
       (select count(*) from logged) as logged, (select count(*) from sampled) as sampled,
       (select count(*) from cursor_moved) as cursor_moved"""
TRIM_APPLIES = """delete from regionalstore.applies where source_region = %(source)s
    and id < (select max(id) from regionalstore.applies where source_region = %(source)s) - %(keep)s"""


@dataclass(frozen=True, order=True)
class Cursor:
    """Position in a source's change feed: the last shipped (xid, seq)."""

    xid: int = 0
    seq: int = 0


@dataclass(frozen=True)
class Change:
    """One item version as read at the source: its current state, not a diff."""

    table: str
    key: str
    value: dict[str, Any] | None
    deleted: bool
    hlc: int
    origin: str
    vv: dict[str, int]
    origin_ts: datetime
    xid: int
    seq: int

    @property
    def version(self) -> Version:
        return Version(self.hlc, self.origin, self.vv, self.deleted)

    @property
    def position(self) -> Cursor:
        return Cursor(self.xid, self.seq)

    def document(self, vv: dict[str, int] | None = None) -> dict[str, Any]:
        return {"tbl": self.table, "key": self.key, "value": self.value, "deleted": self.deleted, "hlc": self.hlc,
                "origin": self.origin, "vv": self.vv if vv is None else vv, "origin_ts": self.origin_ts.isoformat()}


@dataclass(frozen=True)
class Outcome:
    change: Change
    decision: Decision

    @property
    def applied(self) -> bool:
        return self.decision.action in (Action.INSERT, Action.REPLACE)


@dataclass(frozen=True)
class BatchResult:
    outcomes: tuple[Outcome, ...]
    cursor: Cursor

    @property
    def applied(self) -> int:
        return sum(o.applied for o in self.outcomes)

    @property
    def conflicts(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.decision.conflict)

    def count(self, action: Action) -> int:
        return sum(o.decision.action is action for o in self.outcomes)


# ----- source side --------------------------------------------------------------------------------------------
def read_changes(conn: Conn, origin: str, after: Cursor, limit: int) -> list[Change]:
    params = {"origin": origin, "xid": after.xid, "seq": after.seq, "limit": limit}
    return [Change(r["tbl"], r["key"], r["value"], r["deleted"], r["hlc"], r["origin"], r["vv"], r["origin_ts"],
                   r["xid"], r["seq"]) for r in conn.execute(READ_CHANGES, params).fetchall()]


def backlog(conn: Conn, origin: str, after: Cursor) -> int:
    row = conn.execute(BACKLOG, {"origin": origin, "xid": after.xid, "seq": after.seq}).fetchone()
    return int(row["n"]) if row else 0


def listen(conn: Conn) -> None:
    conn.execute(f"listen {CHANNEL}")


def ensure_outbound(conn: Conn, target: str) -> None:
    conn.execute("insert into regionalstore.outbound (target_region) values (%s) on conflict do nothing", (target,))


def lock_outbound_shared(conn: Conn, target: str) -> None:
    conn.execute("select pg_advisory_lock_shared(%s, hashtext(%s))", (OUTBOUND_LOCK, target))


def unlock_outbound_shared(conn: Conn, target: str) -> None:
    conn.execute("select pg_advisory_unlock_shared(%s, hashtext(%s))", (OUTBOUND_LOCK, target))


def outbound_paused(conn: Conn, target: str) -> bool:
    row = conn.execute("select paused from regionalstore.outbound where target_region = %s", (target,)).fetchone()
    return bool(row and row["paused"])


def acknowledge(conn: Conn, target: str, cursor: Cursor | None, error: str | None = None) -> None:
    """Tell the source what the target has applied (lets tombstones be purged) and that the replicator lives."""
    if cursor is None:
        conn.execute("update regionalstore.outbound set seen_at = clock_timestamp(), last_error = %s "
                     "where target_region = %s", (error, target))
        return
    conn.execute("update regionalstore.outbound set acked_xid = %s, acked_seq = %s, acked_at = clock_timestamp(), "
                 "seen_at = clock_timestamp(), last_error = %s where target_region = %s",
                 (cursor.xid, cursor.seq, error, target))


# ----- target side --------------------------------------------------------------------------------------------
STALE_HOLDER = """
select a.pid, extract(epoch from now() - a.state_change) as idle_s
from pg_locks l join pg_stat_activity a on a.pid = l.pid
where l.locktype = 'advisory' and l.granted and l.classid = %(cls)s
  and l.objid::bigint = (hashtext(%(source)s)::bigint & 4294967295) and l.objsubid = 2
  and a.pid <> pg_backend_pid() and a.state = 'idle'"""


def claim_direction(conn: Conn, source: str, stale_after_s: float = 15.0) -> None:
    """Hold, for this session, the right to apply ``source``'s changes here: one replicator per direction.

    A live replicator touches its target session at least every heartbeat. A holder idle for ``stale_after_s`` is
    the session of a replicator that died behind a partition (the server never saw the socket close): it is
    terminated, so a restarted replicator does not wait for TCP keepalives.
    """
    if _try_claim(conn, source):
        return
    stale = conn.execute(STALE_HOLDER, {"cls": INBOUND_LOCK, "source": source}).fetchone()
    if stale and stale["idle_s"] is not None and float(stale["idle_s"]) >= stale_after_s:
        conn.execute("select pg_terminate_backend(%s, 5000)", (stale["pid"],))
        if _try_claim(conn, source):
            return
    raise ConflictError(f"another replicator is already applying changes from {source} into this database")


def _try_claim(conn: Conn, source: str) -> bool:
    row = conn.execute("select pg_try_advisory_lock(%s, hashtext(%s)) as ok", (INBOUND_LOCK, source)).fetchone()
    return bool(row and row["ok"])


def read_cursor(conn: Conn, source: str) -> Cursor:
    conn.execute("insert into regionalstore.inbound (source_region) values (%s) on conflict do nothing", (source,))
    row = conn.execute("select last_xid, last_seq from regionalstore.inbound where source_region = %s",
                       (source,)).fetchone()
    return Cursor(int(row["last_xid"]), int(row["last_seq"])) if row else Cursor()


def trim_applies(conn: Conn, source: str, keep: int = 5000) -> None:
    """Keep only the most recent lag samples of ``source``'s applies."""
    conn.execute(TRIM_APPLIES, {"source": source, "keep": keep})


def apply_changes(conn: Conn, source: str, changes: list[Change]) -> BatchResult:
    """Apply one batch with LWW in a single transaction that also moves the durable cursor.

    Two round trips whatever the batch size (what matters across a slow link): BEGIN + insert-or-lock, then the
    write-back + COMMIT, pipelined. ``conn`` must be in autocommit mode (the transaction is explicit).
    """
    if not changes:
        raise ValueError("apply_changes needs at least one change")
    if not conn.autocommit:
        raise ValueError("apply_changes needs an autocommit connection")
    by_key = {(c.table, c.key): c for c in changes}
    cursor = max(c.position for c in changes)
    try:
        with conn.pipeline():
            conn.execute("begin")
            rows = conn.execute(INSERT_OR_LOCK, {"batch": Jsonb([c.document() for c in changes])}).fetchall()
            locals_ = _lock_missing(conn, by_key, {(r["tbl"], r["key"]): None if r["inserted"] else r for r in rows})
            outcomes = tuple(_outcome(c, locals_, locals_[k] is None) for k, c in by_key.items())
            conn.execute(WRITE_BACK, _write_back_params(source, outcomes, locals_, cursor))
            conn.execute("commit")  # both sent, and waited for, when the pipeline block ends
    except BaseException:
        _rollback_quietly(conn)
        raise
    return BatchResult(outcomes, cursor)


def _lock_missing(conn: Conn, by_key: dict[tuple[str, str], Change], locals_: Locals) -> Locals:
    """Items created by a local writer after our snapshot were neither inserted nor locked: lock them now."""
    missing = [k for k in by_key if k not in locals_]
    if not missing:
        return locals_
    keys = Jsonb([{"tbl": t, "key": k} for t, k in missing])
    for row in conn.execute(LOCK_AGAIN, {"keys": keys}).fetchall():
        locals_[(row["tbl"], row["key"])] = row
    if any(k not in locals_ for k in missing):  # purged meanwhile: roll back, the next attempt redoes it
        raise DatabaseError(f"items {missing[:3]} vanished while being applied; the batch will be retried")
    return locals_


def _rollback_quietly(conn: Conn) -> None:
    if conn.closed or conn.broken:
        return
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("rollback")
    except psycopg.Error:
        conn.close()


def _outcome(change: Change, locals_: Locals, inserted: bool) -> Outcome:
    if inserted:
        return Outcome(change, decide(change.version, None))
    row = locals_[(change.table, change.key)]
    assert row is not None
    return Outcome(change, decide(change.version, _version(row)))


def _version(row: dict[str, Any]) -> Version:
    return Version(row["hlc"], row["origin"], row["vv"], row["deleted"])


def _write_back_params(source: str, outcomes: tuple[Outcome, ...],
                       locals_: Locals, cursor: Cursor) -> dict[str, Any]:
    replace, keep, conflicts = [], [], []
    for o in outcomes:
        c, d = o.change, o.decision
        if d.action is Action.REPLACE:
            replace.append(c.document(vv=d.vv))
        elif d.action is Action.KEEP:
            keep.append({"tbl": c.table, "key": c.key, "vv": d.vv})
        if d.conflict:
            local = locals_[(c.table, c.key)] or {}
            conflicts.append({"tbl": c.table, "key": c.key, "winner": d.winner, "reason": d.reason,
                              "incoming": c.document(), "local": _local_document(local)})
    applied_ts = [{"origin_ts": o.change.origin_ts.isoformat()} for o in outcomes if o.applied]
    return {"source": source, "replace": Jsonb(replace), "keep": Jsonb(keep), "conflicts": Jsonb(conflicts),
            "applied_ts": Jsonb(applied_ts),
            "xid": cursor.xid, "seq": cursor.seq, "applied": sum(o.applied for o in outcomes),
            "received": len(outcomes),
            "n_conflicts": len(conflicts)}


def _local_document(row: dict[str, Any]) -> dict[str, Any]:
    doc = {k: row.get(k) for k in ("value", "deleted", "hlc", "origin", "vv")}
    ts = row.get("origin_ts")
    doc["origin_ts"] = ts.isoformat() if isinstance(ts, datetime) else ts
    return json.loads(json.dumps(doc, default=str))
