"""What one region's agent owns on its host: PostgreSQL instances, their directories, archives and copies.

Every path and instance of the region is decided here, so the agent's operations never compute one, and nothing
outside the agent (and the local cloud's ``up``/``down``) opens these directories (invariant 8).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from regionctl.config import GLOBAL_DATABASES
from regionctl.errors import DatabaseError, InputError, ProcessError
from regionctl.runtime.osuser import make_owned_dir
from regionctl.runtime.postgres import PgInstance
from regionctl.runtime.topology import REGIONAL_DB, Topology

KNOWN_DATABASES = (*GLOBAL_DATABASES, REGIONAL_DB)
SCRATCH_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")
REPLICATION_KEYS = ("primary_conninfo", "primary_slot_name", "restore_command", "recovery_target", "recovery_target_",
                    "synchronous_standby_names")  # set by the replication bound at run time, never carried over


def check_database(name: str) -> str:
    if name not in KNOWN_DATABASES:
        raise InputError(f"database: unknown {name!r}; this agent owns {', '.join(KNOWN_DATABASES)}")
    return name


def check_scratch_name(field: str, name: str) -> str:
    if not SCRATCH_NAME.match(name):
        raise InputError(f"{field}: {name!r} must be lower-case letters, digits and dashes (at most 81)")
    return name


@dataclass(frozen=True)
class RegionHost:
    topo: Topology
    region: str

    @property
    def address(self) -> str:
        return self.topo.settings.region_address(self.region)

    def member(self, database: str) -> PgInstance:
        return self.topo.pg(self.region, check_database(database))

    def archive_dir(self, database: str) -> Path:
        return self._owned(self.topo.paths.archive(self.region, database))

    def replica_archive(self, database: str, origin: str) -> Path:
        """Where this region keeps its copy of ``origin``'s WAL archive."""
        return self._owned(self.topo.paths.region(self.region) / "archive-replica" / database / origin)

    def archive_sources(self, database: str) -> list[Path]:
        """Every archive a restore here may read: its own, then its copies of the other regions'."""
        sources = [self.topo.paths.archive(self.region, database)]
        replicas = self.topo.paths.region(self.region) / "archive-replica" / database
        sources += sorted(p for p in replicas.iterdir()) if replicas.exists() else []
        return [p for p in sources if p.is_dir()]

    def copies_dir(self, database: str) -> Path:
        return self.topo.paths.snapshots(self.region, database) / "failover-copies"

    def snapshot_root(self, database: str) -> Path:
        return self.topo.paths.snapshots(self.region, database) / "base"

    def scratch(self, kind: str, name: str) -> PgInstance:
        """A throwaway instance (``restores`` or ``recon``) of this region, on a port of its own."""
        directory = self.topo.paths.region(self.region) / kind / name
        return PgInstance(
            name=name, datadir=directory / "data", host=self.address,
            port=self.topo.ports.get(f"{kind}/{name}", self.address), log_file=directory / "postgres.log",
            bins=self.topo.bins, runas=self.topo.runas, login=self.topo.login,
        )

    def scratch_root(self, kind: str) -> Path:
        return self.topo.paths.region(self.region) / kind

    def release_port(self, kind: str, name: str) -> None:
        self.topo.ports.release(f"{kind}/{name}")

    def _owned(self, path: Path) -> Path:
        if not path.exists():
            make_owned_dir(path, self.topo.runas)
        return path


def clean_replication_config(member: PgInstance) -> None:
    """Drop replication settings that pg_basebackup -R or pg_rewind copied into postgresql.auto.conf."""
    auto = member.datadir / "postgresql.auto.conf"
    if not auto.exists():
        return
    lines = auto.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.strip().startswith(REPLICATION_KEYS)]
    if kept != lines:
        auto.write_text("".join(kept))


def copy_datadir(source: Path, target: Path) -> int:
    """Copy a stopped member's directory keeping owners and modes (``cp -a``); return bytes copied."""
    if target.exists():
        raise DatabaseError(f"refusing to overwrite {target.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["cp", "-a", str(source), str(target)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise ProcessError("cp", result.returncode, result.stderr)
    return tree_bytes(target)


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def control_data(member: PgInstance) -> dict[str, str]:
    """pg_controldata of a member (works while it is stopped)."""
    out = member.run([member.bins("pg_controldata"), "-D", str(member.datadir)]).stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}
