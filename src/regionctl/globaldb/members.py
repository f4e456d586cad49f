"""The members of one global database and the low-level moves every operation is built from.

A member is one PostgreSQL instance per region. Node-specific settings (archive directory, where to stream
from) go on the command line, never into files that pg_basebackup or pg_rewind would copy to the other member.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from regionctl.errors import DatabaseError, OperationTimeout, ProcessError
from regionctl.globaldb.lsn import format_lsn, parse_lsn
from regionctl.runtime.osuser import make_owned_dir
from regionctl.runtime.postgres import PgInstance
from regionctl.runtime.topology import Network, Topology

RECON_SLOT = "regionctl_reconcile"
REPLICATION_KEYS = ("primary_conninfo", "primary_slot_name", "restore_command", "recovery_target", "recovery_target_")


def standby_slot(region: str) -> str:
    """The physical slot a writer keeps for the member in ``region``."""
    return "standby_" + re.sub(r"[^a-z0-9]", "_", region)


@dataclass(frozen=True)
class Cluster:
    """One global database (``orders`` or ``catalog``) across the deployment's regions."""

    name: str
    topo: Topology
    network: Network

    @property
    def regions(self) -> tuple[str, str]:
        return self.topo.settings.regions

    def member(self, region: str) -> PgInstance:
        return self.topo.pg(self.topo.settings.require_region(region), self.name)

    def archive_dir(self, region: str) -> Path:
        path = self.topo.paths.archive(region, self.name)
        if not path.exists():
            make_owned_dir(path, self.topo.runas)
        return path

    # ----- how members reach each other -------------------------------------------------------------------
    def address_from(self, src_region: str, dst_region: str) -> tuple[str, int]:
        """Where a process in ``src_region`` connects to reach this database's member in ``dst_region``."""
        target = self.member(dst_region)
        if src_region == dst_region:
            return target.host, target.port
        return self.network.reach(src_region, dst_region, f"pg/{self.name}", (target.host, target.port))

    def conninfo_from(self, src_region: str, dst_region: str, dbname: str = "postgres", **extra: object) -> str:
        host, port = self.address_from(src_region, dst_region)
        parts: dict[str, object] = {"host": host, "port": port, "user": "postgres", "dbname": dbname, **extra}
        return " ".join(f"{k}={v}" for k, v in parts.items())

    # ----- starting in a role -----------------------------------------------------------------------------
    def writer_settings(self, region: str) -> dict[str, str]:
        return {"basic_archive.archive_directory": str(self.archive_dir(region))}

    def standby_settings(self, region: str, writer: str) -> dict[str, str]:
        conninfo = self.conninfo_from(region, writer, application_name=self.member(region).name, connect_timeout=5)
        return {
            **self.writer_settings(region),
            "primary_conninfo": conninfo,
            "primary_slot_name": standby_slot(region),
        }

    def start_writer(self, region: str) -> None:
        member = self.member(region)
        for signal_file in ("standby.signal", "recovery.signal"):
            (member.datadir / signal_file).unlink(missing_ok=True)
        self.clean_replication_config(region)
        member.start(self.writer_settings(region))

    def start_standby(self, region: str, writer: str) -> None:
        member = self.member(region)
        self.clean_replication_config(region)
        signal = member.datadir / "standby.signal"
        signal.touch()
        member.runas.chown(signal)
        member.start(self.standby_settings(region, writer))

    def clean_replication_config(self, region: str) -> None:
        """Drop replication settings that pg_basebackup -R or pg_rewind copied into postgresql.auto.conf."""
        auto = self.member(region).datadir / "postgresql.auto.conf"
        if not auto.exists():
            return
        lines = auto.read_text().splitlines(keepends=True)
        kept = [line for line in lines if not line.strip().startswith(REPLICATION_KEYS)]
        if kept != lines:
            auto.write_text("".join(kept))

    # ----- slots ------------------------------------------------------------------------------------------
    def ensure_standby_slot(self, writer: str, for_region: str) -> None:
        self.member(writer).query(
            "select pg_create_physical_replication_slot(%s, true) where not exists "
            "(select 1 from pg_replication_slots where slot_name = %s)",
            (standby_slot(for_region), standby_slot(for_region)),
        )

    def ensure_recon_slot(self, writer: str) -> None:
        """The logical slot the reconciler decodes lost transactions from (re-created after every promotion).

        A logical slot decodes only the database it was created in, so it lives in this cluster's database; a
        slot of the same name left in another database (created by an older version) is replaced.
        """
        member = self.member(writer)
        member.query(
            "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = %s "
            "and database is distinct from %s and not active",
            (RECON_SLOT, self.name),
        )
        try:
            member.query(
                "select pg_create_logical_replication_slot(%s, 'test_decoding', false, false) where not exists "
                "(select 1 from pg_replication_slots where slot_name = %s)",
                (RECON_SLOT, RECON_SLOT), dbname=self.name,
            )
        except DatabaseError as exc:
            if "already exists" not in str(exc):  # the advancer created it at the same moment: fine
                raise

    def drop_stale_slots(self, region: str) -> None:
        """A member that became a standby keeps slots copied from its writer days; they pin WAL for nothing."""
        member = self.member(region)
        for row in member.query("select slot_name from pg_replication_slots where not active"):
            member.query("select pg_drop_replication_slot(%s)", (row["slot_name"],))

    # ----- waiting ----------------------------------------------------------------------------------------
    def wait_writable(self, region: str, timeout: float = 30.0) -> float:
        """Poll with a real write until the member accepts it; return the seconds waited."""
        member = self.member(region)
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline:
            try:
                with member.connect(connect_timeout=2) as conn:
                    conn.execute("select txid_current()")
                    return time.monotonic() - start
            except Exception:  # read-only, starting up, or refused: keep polling
                time.sleep(0.002)
        raise OperationTimeout(f"{member.name} did not accept writes within {timeout:.0f}s")

    def wait_replayed(self, region: str, lsn: int, timeout: float = 30.0) -> int:
        """Wait until the standby in ``region`` has replayed past ``lsn``; return its replay LSN."""
        member = self.member(region)
        deadline = time.monotonic() + timeout
        replayed = 0
        while time.monotonic() < deadline:
            value = member.scalar("select pg_last_wal_replay_lsn()::text")
            replayed = parse_lsn(value) if value else 0
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

    # ----- facts read from disk ---------------------------------------------------------------------------
    def control_data(self, region: str) -> dict[str, str]:
        """pg_controldata of a member (works while it is stopped)."""
        member = self.member(region)
        out = member.run([member.bins("pg_controldata"), "-D", str(member.datadir)]).stdout
        return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}

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


def copy_datadir(source: Path, target: Path) -> int:
    """Copy a stopped member's directory keeping owners and modes (``cp -a``); return bytes copied."""
    if target.exists():
        raise DatabaseError(f"refusing to overwrite {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["cp", "-a", str(source), str(target)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise ProcessError("cp", result.returncode, result.stderr)
    return sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
