"""The writer lease: the agent of the region whose member runs as a global database's writer holds a key in
etcd (``/regionctl/<env>/writer/<db>`` = region, attached to a lease of ``leases.ttl_s``) and renews it.

Each renewal moves the writer's fence deadline to (when the renewal was *sent*) + TTL - margin: etcd cannot
expire the lease before the send time + TTL, so a writer that cannot renew (its region cut off, etcd without a
majority, the agent dead) is stopped by its fencer (``fencer.py``) before anyone else can take the lease. A
writer whose key names another region lost the lease (a failover took it): it is fenced at once, and a writer
is never started while the key names another region. Why a stop and not read-only: a stopped postmaster
acknowledges nothing, whatever its sessions were doing, and the fence needs no working agent or database
connection to happen; the member returns only through the global plane (rebuild, or a switchover).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from regionctl.agent.bound import Bound
from regionctl.agent.fencer import write_deadline
from regionctl.agent.host import RegionHost
from regionctl.config import GLOBAL_DATABASES, LeaseSettings
from regionctl.errors import ConflictError, DatabaseError, Unreachable
from regionctl.runtime.etcd import lease_key
from regionctl.runtime.etcdclient import Etcd
from regionctl.runtime.postgres import PgInstance
from regionctl.runtime.process import pid_alive

log = logging.getLogger("regionctl.agent.lease")


@dataclass
class Held:
    """What the keeper knows of one database's lease while its member is the writer here."""

    pid: int  # the postmaster it guards
    lease: int = 0
    deadline: float = 0.0
    renewed: int = 0


class LeaseKeeper:
    def __init__(self, host: RegionHost, etcd: Etcd, settings: LeaseSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.etcd = etcd
        self.settings = settings
        self.clock = clock
        self.held: dict[str, Held] = {}
        self._claimed: dict[str, float] = {}  # the deadline a writer about to start or be promoted here got
        self.bound = Bound(clock, host.topo.settings.replication.check_interval_s)
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def key(self, database: str) -> str:
        return lease_key(self.host.topo.settings.env, database)

    def deadline_file(self, database: str) -> Path:
        directory = self.host.topo.paths.region(self.host.region) / "lease"
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{database}.deadline"

    # ----- the loop ---------------------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        threading.Thread(target=self.run_bound, name="replication-bound", daemon=True).start()
        thread = threading.Thread(target=self.run, name="lease-keeper", daemon=True)
        thread.start()
        return thread

    def run_bound(self) -> None:
        """The bound on data loss checks the writers this keeper guards, more often than it renews."""
        interval = self.bound.interval
        due = self.clock()
        while not self._stop.is_set():
            held = set(self.held)
            for database in GLOBAL_DATABASES:
                if database not in held:
                    self.bound.forget(database)
                    continue
                try:
                    self._bound(database, self.host.member(database))
                except Exception:  # noqa: BLE001 - the bound must never stop the keeper
                    log.exception("replication bound of %s", database)
            due = max(due + interval, self.clock())  # at a steady rate: the bound counts on the next check
            self._stop.wait(due - self.clock())

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        while not self._stop.is_set():
            for database in GLOBAL_DATABASES:
                try:
                    self.tend(database)
                except Exception:  # noqa: BLE001 - one database's trouble must never stop the keeper
                    log.exception("lease of %s", database)
            self._stop.wait(self.settings.renew_interval_s)

    def tend(self, database: str) -> str:
        """One round for ``database``: renew or take the lease while the local member is the writer, fence
        it when the lease belongs to another region. Returns what happened (for tests and the log)."""
        with self._lock:
            member = self.host.member(database)
            pid = member.pid()
            if pid is None or not self._is_writer(database):
                self.held.pop(database, None)
                return "not a writer here"
            held = self.held.get(database)
            if held is None or held.pid != pid:  # no deadline yet: only a renewal gives one
                held = self.held[database] = Held(pid, deadline=self._claimed.pop(database, 0.0))
            sent = self.clock()
            try:
                owner = self._renew(database, held)
            except Unreachable as exc:
                if self.clock() >= held.deadline:  # never renewed, or the deadline passed: do not wait for it
                    self._fence(database, f"no renewal before its fence deadline ({exc})")
                    return "fenced: no renewal"
                self._ensure_fencer(database, pid)
                log.warning("%s: cannot renew the writer lease (%s); fenced in %.1f s unless a renewal succeeds",
                            database, exc, held.deadline - self.clock())
                return "renewal failed"
            if owner != self.host.region:
                self._fence(database, f"the writer lease is held by {owner}")
                return f"fenced: lease held by {owner}"
            held.deadline = sent + self.settings.ttl_s - self.settings.fence_margin_s
            held.renewed += 1
            write_deadline(self.deadline_file(database), held.deadline)
            self._ensure_fencer(database, pid)  # every round: a fencer that died is replaced
            return "renewed"

    # ----- parts ------------------------------------------------------------------------------------------
    def _bound(self, database: str, member: PgInstance) -> None:
        """The bound on data loss (``bound.py``) is the writer's own business too: it holds when cut off."""
        settings = self.host.topo.settings
        standby = f"{database}-{settings.other_region(self.host.region)}"
        self.bound.tend(member, database, standby, settings.replication.for_database(database))

    def _is_writer(self, database: str) -> bool:
        member = self.host.member(database)
        try:
            return not member.in_recovery()
        except DatabaseError:  # busy: keep guarding the writer we guarded; a new postmaster still starting
            held = self.held.get(database)  # is nobody's writer yet (it may be a standby being started)
            return held is not None and held.pid == member.pid()

    def _renew(self, database: str, held: Held) -> str:
        """Keep our lease alive, adopt the one the global plane granted us, or take a free key; return the
        region the key names afterwards."""
        ttl = int(self.settings.ttl_s)
        if held.lease and self.etcd.keepalive(held.lease) > 0:
            current = self.etcd.get(self.key(database))
            if current is not None and current.value == self.host.region and current.lease == held.lease:
                return self.host.region
        current = self.etcd.get(self.key(database))
        if current is None:
            lease = self.etcd.grant(ttl)
            if self.etcd.put_if(self.key(database), self.host.region, lease, None):
                held.lease = lease
                return self.host.region
            current = self.etcd.get(self.key(database))
            if current is None:
                raise Unreachable(f"{database}: the lease key changed twice during one renewal")
        if current.value != self.host.region:
            return current.value
        if current.lease and self.etcd.keepalive(current.lease) > 0:  # granted to us by a failover
            held.lease = current.lease
            return self.host.region
        lease = self.etcd.grant(ttl)  # ours but without a live lease: attach a new one, or fail the round
        if not self.etcd.put_if(self.key(database), self.host.region, lease, self.host.region):
            raise Unreachable(f"{database}: the lease key changed during the renewal")
        held.lease = lease
        return self.host.region

    def _ensure_fencer(self, database: str, pid: int) -> None:
        """A fencer for this postmaster, guarding the deadline file as it stands (one survives an agent restart:
        it is found by its pid file, and recognised by its command line, never by a reused pid alone)."""
        deadline_file = self.deadline_file(database)
        pid_file = deadline_file.with_suffix(".fencer")
        try:
            recorded, guarded = (int(x) for x in pid_file.read_text().split())
            if guarded == pid and pid_alive(recorded) and _is_fencer(recorded, deadline_file):
                return
        except (OSError, ValueError):
            pass
        log_file = self.host.topo.paths.logs(self.host.region) / f"fencer-{database}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "regionctl.agent.fencer", "--pid", str(pid),
                                     "--deadline-file", str(deadline_file)], stdout=out, stderr=out,
                                    stdin=subprocess.DEVNULL)
        pid_file.write_text(f"{proc.pid} {pid}\n")

    def _fence(self, database: str, why: str) -> None:
        self._claimed.pop(database, None)
        write_deadline(self.deadline_file(database), 0.0)
        stopped = self.host.member(database).stop("immediate")
        self.held.pop(database, None)
        log.warning("%s: %s; writer %s", database, why, "stopped" if stopped else "was not running")

    def describe(self) -> dict[str, dict[str, object]]:
        """The leases held here: seconds until the fence deadline, renewals so far."""
        with self._lock:
            return self._describe()

    def _describe(self) -> dict[str, dict[str, object]]:
        now = self.clock()
        replication = self.host.topo.settings.replication
        return {db: {"lease": h.lease, "fence_in_s": round(h.deadline - now, 2), "renewals": h.renewed,
                     "mode": replication.for_database(db).mode, **self.bound.describe(db)}
                for db, h in self.held.items()}

    def claim(self, database: str) -> None:
        """Hold the lease before a writer starts or is promoted here: take it if free, renew it if ours; refuse
        while another region holds it or it cannot be read. The writer is then guarded from its first moment
        (``guard``), with the deadline this renewal gave."""
        with self._lock:
            sent = self.clock()
            try:
                owner = self._renew(database, Held(pid=0))
            except Unreachable as exc:
                raise ConflictError(f"{database}: cannot hold the writer lease, so no writer starts here ({exc})") \
                    from None
            if owner != self.host.region:
                raise ConflictError(f"{database}: the writer lease is held by {owner}; a writer here would be a "
                                    "second one (rebuild this member as a standby)")
            self._claimed[database] = sent + self.settings.ttl_s - self.settings.fence_margin_s
            write_deadline(self.deadline_file(database), self._claimed[database])

    def guard(self, database: str) -> None:
        """Right after a start or promotion: a fencer on the writer at once, not a renewal round later."""
        pid = self.host.member(database).pid()
        if pid is not None:
            with self._lock:
                self._ensure_fencer(database, pid)


def _is_fencer(pid: int, deadline_file: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"regionctl.agent.fencer" in cmdline and str(deadline_file).encode() in cmdline
