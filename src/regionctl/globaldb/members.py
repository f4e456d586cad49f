"""The members of one global database and the low-level moves every operation is built from.

A member is one PostgreSQL instance per region. Node-specific settings (archive directory, where to stream
from) go on the command line, never into files that pg_basebackup or pg_rewind would copy to the other member.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import psycopg

from regionctl.errors import DatabaseError, OperationTimeout
from regionctl.globaldb.lsn import format_lsn, parse_lsn
from regionctl.globaldb.member import AgentMember, Agents
from regionctl.runtime.process import GLOBAL_PLANE
from regionctl.runtime.topology import Network, Topology

RECON_SLOT = "regionctl_reconcile"


def standby_slot(region: str) -> str:
    """The physical slot a writer keeps for the member in ``region``."""
    return "standby_" + re.sub(r"[^a-z0-9]", "_", region)


@dataclass(frozen=True)
class Cluster:
    """One global database (``orders`` or ``catalog``) across the deployment's regions, as the global plane
    reaches it: SQL through the link, host operations through each region's agent."""

    name: str
    topo: Topology
    network: Network
    agents: Agents = field(compare=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.agents is None:
            object.__setattr__(self, "agents", Agents(self.topo, self.network))

    @property
    def regions(self) -> tuple[str, str]:
        return self.topo.settings.regions

    def member(self, region: str) -> AgentMember:
        region = self.topo.settings.require_region(region)
        host, port = self.address_from(GLOBAL_PLANE, region)
        return AgentMember(name=f"{self.name}-{region}", host=host, port=port,
                           passfile=str(self.topo.login.passfile), region=region, database=self.name,
                           agent=self.agents.client(region))

    # ----- how members reach each other -------------------------------------------------------------------
    def address_from(self, src_region: str, dst_region: str) -> tuple[str, int]:
        """Where a process in ``src_region`` (a region or the global plane) reaches the member in ``dst_region``."""
        target = self.topo.pg_address(dst_region, self.name)
        if src_region == dst_region:
            return target
        return self.network.reach(src_region, dst_region, f"pg/{self.name}", target)

    def conninfo_from(self, src_region: str, dst_region: str, dbname: str = "postgres", **extra: object) -> str:
        host, port = self.address_from(src_region, dst_region)
        parts: dict[str, object] = {"host": host, "port": port, "user": "postgres", "dbname": dbname, **extra}
        return " ".join(f"{k}={v}" for k, v in parts.items())

    # ----- starting in a role -----------------------------------------------------------------------------
    def start_writer(self, region: str) -> None:
        self.member(region).start("writer")

    def start_standby(self, region: str, writer: str) -> None:
        conninfo = self.conninfo_from(region, writer, application_name=f"{self.name}-{region}", connect_timeout=5)
        self.member(region).start("standby", conninfo, standby_slot(region))

    # ----- slots ------------------------------------------------------------------------------------------
    def ensure_standby_slot(self, writer: str, for_region: str) -> None:
        self._ensure_slot(writer, standby_slot(for_region), "select pg_create_physical_replication_slot(%s, true)")

    def ensure_recon_slot(self, writer: str) -> None:
        """The logical slot the reconciler decodes lost transactions from (re-created after every promotion).

        A logical slot decodes only the database it was created in, so it lives in this cluster's database; a
        slot of the same name left in another database (created by an older version) is replaced.
        """
        self.member(writer).query(
            "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = %s "
            "and database is distinct from %s and not active",
            (RECON_SLOT, self.name),
        )
        self._ensure_slot(writer, RECON_SLOT,
                          "select pg_create_logical_replication_slot(%s, 'test_decoding', false, false)", self.name)

    def _ensure_slot(self, region: str, slot: str, create: str, dbname: str = "postgres") -> None:
        """Create ``slot`` unless it exists. Another process (the reconciliation slot advancer, the supervisor)
        may create it at the same moment, right after a promotion: losing that race is success."""
        member = self.member(region)
        exists = "select count(*) from pg_replication_slots where slot_name = %s"
        if member.scalar(exists, (slot,)):
            return
        try:
            member.query(create, (slot,), dbname=dbname)
        except DatabaseError:
            if not member.scalar(exists, (slot,)):
                raise

    def drop_stale_slots(self, region: str) -> None:
        """A member that became a standby keeps slots copied from its writer days; they pin WAL for nothing."""
        member = self.member(region)
        for row in member.query("select slot_name from pg_replication_slots where not active"):
            member.query("select pg_drop_replication_slot(%s)", (row["slot_name"],))

    # ----- waiting ----------------------------------------------------------------------------------------
    def wait_writable(self, region: str, timeout: float = 30.0) -> float:
        """Poll with a real write until the member accepts it; return the seconds waited. One session is kept
        while it answers (a standby's session may write once its server is promoted): every new connection
        costs round trips through the link."""
        member = self.member(region)
        start = time.monotonic()
        deadline = start + timeout
        conn = None
        try:
            while time.monotonic() < deadline:
                try:
                    conn = conn or member.connect(connect_timeout=2)
                    conn.execute("select txid_current()")
                    return time.monotonic() - start
                except DatabaseError:  # refused or starting up: connect again
                    conn = None
                except psycopg.Error:  # read-only still, or the session was ended: keep polling
                    if conn is not None and conn.closed:
                        conn = None
                time.sleep(0.002)
        finally:
            if conn is not None:
                conn.close()
        raise OperationTimeout(f"{member.name} did not accept writes within {timeout:.0f}s")

    def wait_replayed(self, region: str, lsn: int, timeout: float = 30.0) -> int:
        """Wait until the standby in ``region`` has replayed past ``lsn``; return its replay LSN."""
        member = self.member(region)
        deadline = time.monotonic() + timeout
        replayed = 0
        with member.connect() as conn:
            while time.monotonic() < deadline:
                row = conn.execute("select pg_last_wal_replay_lsn()::text as lsn").fetchone()
                replayed = parse_lsn(row["lsn"]) if row and row["lsn"] else 0
                if replayed >= lsn:
                    return replayed
                time.sleep(0.002)
        raise OperationTimeout(
            f"{member.name} replayed only to {format_lsn(replayed)}, not past {format_lsn(lsn)}, within {timeout:.0f}s"
        )

    def wait_streaming(self, writer: str, standby: str, timeout: float = 60.0) -> None:
        name = self.member(standby).name
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.member(writer).query(
                "select state from pg_stat_replication where application_name = %s", (name,)
            )
            if rows and rows[0]["state"] == "streaming":
                return
            time.sleep(0.05)
        raise OperationTimeout(f"{name} is not streaming from {self.member(writer).name} after {timeout:.0f}s")

    # ----- facts -----------------------------------------------------------------------------------------
    def control_data(self, region: str) -> dict[str, str]:
        """pg_controldata of a member, read by its agent (works while it is stopped)."""
        return self.member(region).control_data()

    def latest_history(self, region: str) -> tuple[int, list[tuple[int, int]]]:
        """The member's newest timeline and its history: [(parent timeline, switchpoint LSN), ...]."""
        member = self.member(region)
        rows = member.query(
            "select name from pg_ls_waldir() where name like '%%.history' order by name desc limit 1"
        )
        if not rows:
            return int(member.scalar("select timeline_id from pg_control_checkpoint()")), []
        name = rows[0]["name"]
        text = member.scalar("select pg_read_file(%s)", (f"pg_wal/{name}",))
        entries = []
        for line in str(text).splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0].isdigit():
                entries.append((int(fields[0]), parse_lsn(fields[1])))
        return int(name.split(".")[0], 16), entries

