"""Pausing and resuming one replication direction (what chaos calls "pause DynamoDB replication").

The flag lives in the SOURCE database, per target region, so it is per direction and survives restarts of the
replicator. ``pause`` commits the flag, then waits (bounded) for the batch in flight, if any: when it returns with
``drained=True`` nothing more is shipped until ``resume``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from regionctl.errors import DatabaseError, InputError
from regionctl.regionalstore import replication as rep
from regionctl.regionalstore import schema
from regionctl.regionalstore.items import check_region
from regionctl.regionalstore.pool import connect, describe_dsn


@dataclass(frozen=True)
class Direction:
    source: str
    target: str

    def __post_init__(self) -> None:
        check_region(self.source)
        check_region(self.target)
        if self.source == self.target:
            raise InputError(f"a replication direction needs two regions, not {self.source!r} twice")

    @classmethod
    def parse(cls, text: str) -> Direction:
        """``us-east-1->us-west-2`` (or with ``:`` or ``,``)."""
        parts = [p.strip() for p in re.split(r"->|:|,", text)]
        if len(parts) != 2 or not all(parts):
            raise InputError(f"direction {text!r} is not SOURCE->TARGET, e.g. us-east-1->us-west-2")
        return cls(parts[0], parts[1])

    def __str__(self) -> str:
        return f"{self.source}->{self.target}"


@dataclass(frozen=True)
class PauseChange:
    direction: str
    paused: bool
    changed: bool  # False when it already was in that state
    drained: bool  # no batch in flight when we returned (always True for resume)
    reason: str


def set_paused(source_dsn: str, direction: Direction, paused: bool, reason: str = "",
               drain_timeout_s: float = 10.0) -> PauseChange:
    try:
        with connect(source_dsn) as conn:
            _check_region(conn, source_dsn, direction.source)
            with conn.transaction():
                rep.ensure_outbound(conn, direction.target)
                row = conn.execute("select paused from regionalstore.outbound where target_region = %s for update",
                                   (direction.target,)).fetchone()
                changed = not row or bool(row["paused"]) != paused
                if changed:  # pausing twice keeps the first reason and time
                    conn.execute("update regionalstore.outbound set paused = %s, reason = %s, changed_at = now() "
                                 "where target_region = %s", (paused, reason if paused else "", direction.target))
            drained = True if not paused else _drain(conn, direction.target, drain_timeout_s)
    except psycopg.Error as exc:
        raise DatabaseError(f"regional store at {describe_dsn(source_dsn)}: {str(exc).strip()}") from None
    state = "paused" if paused else "resumed"
    why = f"{direction} {state}" + ("" if changed else " (it already was)")
    if paused and not drained:
        why += f"; a batch was still in flight after {drain_timeout_s:.0f}s"
    return PauseChange(str(direction), paused, changed, drained, why)


def pause(source_dsn: str, direction: Direction, reason: str = "paused by operator",
          drain_timeout_s: float = 10.0) -> PauseChange:
    return set_paused(source_dsn, direction, True, reason, drain_timeout_s)


def resume(source_dsn: str, direction: Direction) -> PauseChange:
    return set_paused(source_dsn, direction, False)


def _drain(conn: psycopg.Connection[Any], target: str, timeout_s: float) -> bool:
    """Wait for the replicator's in-flight batch: it holds the direction's lock shared while shipping."""
    try:
        with conn.transaction():
            conn.execute(f"set local lock_timeout = '{int(timeout_s * 1000)}ms'")
            conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (rep.OUTBOUND_LOCK, target))
        return True
    except psycopg.errors.LockNotAvailable:
        return False


def _check_region(conn: psycopg.Connection[Any], dsn: str, expected: str) -> None:
    actual = schema.store_region(conn)
    if actual is None:
        schema.migrate(conn, expected)
    elif actual != expected:
        raise InputError(f"{describe_dsn(dsn)} is the regional store of {actual}, not {expected}")
