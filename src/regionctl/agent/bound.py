"""The bound on data loss, enforced by the writer's own agent (so it holds when its region is cut off).

``sync``: the standby in the other region is always the synchronous standby (``synchronous_standby_names``):
every commit waits for it, RPO 0. ``bounded``: asynchronous while the standby keeps confirming; once it has
not caught up with what the writer had one check earlier (``replication.check_interval_s``, 0.25 s) for longer
than ``max_lag_s``, the writer switches
to synchronous replication, so new commits wait (held back) until the standby catches up, then switches back.
A failover can then lose at most about ``max_lag_s`` plus two checks of acknowledged commits. The setting is
changed with ALTER SYSTEM and a reload (no restart); every start of a member drops it again
(``host.REPLICATION_KEYS``), so it never travels with a base backup.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from regionctl.config import ReplicationMode
from regionctl.errors import DatabaseError
from regionctl.globaldb.lsn import parse_lsn
from regionctl.runtime.postgres import PgInstance

log = logging.getLogger("regionctl.agent.bound")


@dataclass
class BoundState:
    """What the controller remembers of one writer between rounds."""

    caught_up_at: float
    pid: int = 0  # the postmaster this state is about: a new writer starts afresh
    last_lsn: int = 0
    held_since: float | None = None  # wall clock, for status
    seen_standby: bool = False  # no bound before this writer has seen its standby once (it may not exist yet)


def decide(mode: ReplicationMode, state: BoundState, now: float, standby_flush: int | None, current: int) -> bool:
    """Whether commits must wait for the standby now (pure: the rule is tested on its own). Nothing waits for a
    standby this writer has never seen: right after a failover the old writer is diverged and stopped, and on
    a first ``up`` the standby is cloned from a writer that must be writable first."""
    state.seen_standby = state.seen_standby or standby_flush is not None
    if mode.mode == "async" or not state.seen_standby:
        state.last_lsn = current
        state.caught_up_at = now
        return False
    if mode.mode == "sync":
        return True
    if standby_flush is not None and standby_flush >= state.last_lsn:
        state.caught_up_at = now  # it confirmed everything we had a round ago
    state.last_lsn = current
    if state.held_since is not None:
        return standby_flush is None or standby_flush < current  # release only once it has everything
    return now - state.caught_up_at > mode.max_lag_s


class Bound:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.states: dict[str, BoundState] = {}

    def tend(self, member: PgInstance, database: str, standby_name: str, mode: ReplicationMode) -> bool:
        """One round on the writer ``member``; returns whether commits are held back now."""
        state = self.states.get(database)
        pid = member.pid() or 0
        if state is None or state.pid != pid:
            state = self.states[database] = BoundState(self.clock(), pid)
        try:
            with member.connect(connect_timeout=2) as conn:
                row = conn.execute(
                    "select pg_current_wal_lsn()::text as current, current_setting('synchronous_standby_names') "
                    "as names, (select flush_lsn::text from pg_stat_replication where application_name = %s "
                    "order by flush_lsn desc nulls last limit 1) as flush", (standby_name,)).fetchone()
                if row is None:
                    return state.held_since is not None
                flush = parse_lsn(row["flush"]) if row["flush"] else None
                hold = decide(mode, state, self.clock(), flush, parse_lsn(row["current"]))
                wanted = f'"{standby_name}"' if hold else ""
                if row["names"] != wanted:
                    conn.execute(f"alter system set synchronous_standby_names = '{wanted}'")
                    conn.execute("select pg_reload_conf()")
                    log.warning("%s: commits %s", database, f"held back until {standby_name} confirms" if hold
                                else "no longer wait for the standby")
        except (DatabaseError, psycopg.Error):  # restarting or being fenced: next round
            return state.held_since is not None
        state.held_since = (state.held_since or time.time()) if hold and mode.mode == "bounded" else None
        return hold

    def describe(self, database: str) -> dict[str, float | None]:
        state = self.states.get(database)
        return {"held_since": state.held_since if state else None}
