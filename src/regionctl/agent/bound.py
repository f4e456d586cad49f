"""The bound on data loss, enforced by the writer's own agent (so it holds when its region is cut off).

``sync``: the standby in the other region is always the synchronous standby (``synchronous_standby_names``):
every commit waits for it, RPO 0. ``bounded``: asynchronous while the standby keeps confirming. Every check
(``replication.check_interval_s``, 0.25 s) notes when it read the writer's WAL position; the newest noted
position the standby has flushed says since when everything acknowledged is safe (a commit acknowledged before
that moment was flushed before it). Once the next check would find that moment more than ``max_lag_s`` ago, the
writer switches to synchronous replication, so new commits wait (held back) until the standby has all the
writer had at the previous check, then switches back. A failover can then lose at most ``max_lag_s`` of
acknowledged commits, plus however late a check runs and the moment the reload takes. The setting is changed
with ALTER SYSTEM and a reload (no restart); every start of a member drops it again (``host.REPLICATION_KEYS``),
so it never travels with a base backup.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from regionctl.config import ReplicationMode
from regionctl.errors import DatabaseError
from regionctl.globaldb.lsn import parse_lsn
from regionctl.runtime.postgres import PgInstance

log = logging.getLogger("regionctl.agent.bound")
SAMPLES_KEPT = 4096  # positions not yet confirmed (17 min of checks); dropping the oldest only makes it stricter


@dataclass
class BoundState:
    """What the controller remembers of one writer between rounds."""

    caught_up_at: float  # everything acknowledged before this moment is on the standby
    pid: int = 0  # the postmaster this state is about: a new writer starts afresh
    pending: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))
    held_since: float | None = None  # wall clock, for status
    seen_standby: bool = False  # no bound before this writer has seen its standby once (it may not exist yet)


def decide(mode: ReplicationMode, state: BoundState, now: float, standby_flush: int | None, current: int,
           interval: float) -> bool:
    """Whether commits must wait for the standby now (pure: the rule is tested on its own). ``now`` is taken
    before ``current`` was read, ``interval`` is the time to the next check. Nothing waits for a standby this
    writer has never seen: right after a failover the old writer is diverged and stopped, and on a first ``up``
    the standby is cloned from a writer that must be writable first."""
    state.seen_standby = state.seen_standby or standby_flush is not None
    if mode.mode == "async" or not state.seen_standby:
        state.pending.clear()
        state.caught_up_at = now
        return False
    if mode.mode == "sync":
        return True
    state.pending.append((now, current))
    while standby_flush is not None and state.pending and state.pending[0][1] <= standby_flush:
        state.caught_up_at = state.pending.popleft()[0]  # it has all the writer had at that moment
    overrun = now + interval - state.caught_up_at > mode.max_lag_s  # waiting for the next check would overrun
    if state.held_since is not None:
        # Release once it has all the writer had at the previous check. Not "all it has now": while held, every
        # commit waits for the standby, so under steady writes the newest WAL is never all confirmed.
        return standby_flush is None or len(state.pending) > 1 or overrun
    return overrun


class Bound:
    def __init__(self, clock: Callable[[], float] = time.monotonic, interval: float = 0.25) -> None:
        self.clock = clock
        self.interval = interval
        self.states: dict[str, BoundState] = {}
        self._conns: dict[str, tuple[int, psycopg.Connection[Any]]] = {}  # one per writer: a check must be cheap

    def tend(self, member: PgInstance, database: str, standby_name: str, mode: ReplicationMode) -> bool:
        """One round on the writer ``member``; returns whether commits are held back now."""
        state = self.states.get(database)
        pid = member.pid() or 0
        if state is None or state.pid != pid:
            state = self.states[database] = BoundState(self.clock(), pid)
        try:
            conn = self._connection(database, member, pid)
            now = self.clock()
            row = conn.execute(
                "select pg_current_wal_lsn()::text as current, current_setting('synchronous_standby_names') "
                "as names, (select flush_lsn::text from pg_stat_replication where application_name = %s "
                "order by flush_lsn desc nulls last limit 1) as flush", (standby_name,)).fetchone()
            if row is None:
                return state.held_since is not None
            flush = parse_lsn(row["flush"]) if row["flush"] else None
            hold = decide(mode, state, now, flush, parse_lsn(row["current"]), self.interval)
            wanted = f'"{standby_name}"' if hold else ""
            if row["names"] != wanted:
                conn.execute(f"alter system set synchronous_standby_names = '{wanted}'")
                conn.execute("select pg_reload_conf()")
                log.warning("%s: commits %s", database, f"held back until {standby_name} confirms" if hold
                            else "no longer wait for the standby")
        except (DatabaseError, psycopg.Error):  # restarting or being fenced: next round
            self.forget(database)
            return state.held_since is not None
        state.held_since = (state.held_since or time.time()) if hold and mode.mode == "bounded" else None
        return hold

    def _connection(self, database: str, member: PgInstance, pid: int) -> psycopg.Connection[Any]:
        kept = self._conns.get(database)
        if kept is not None and kept[0] == pid and not kept[1].closed:
            return kept[1]
        self.forget(database)
        conn = member.connect(connect_timeout=2)
        self._conns[database] = (pid, conn)
        return conn

    def forget(self, database: str) -> None:
        """Close the check's connection (its writer restarted, was fenced or stopped being ours)."""
        kept = self._conns.pop(database, None)
        if kept is not None:
            kept[1].close()

    def describe(self, database: str) -> dict[str, float | None]:
        state = self.states.get(database)
        return {"held_since": state.held_since if state else None}
