"""Start a reconciliation instance: a throwaway copy of a preserved failover copy, never archiving, never replicating.

The preserved copy itself is never started (starting it would change it); its copy runs crash recovery on start
and then answers queries and logical decoding over the old timeline's transactions (invariant 4).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from regionctl.globaldb.members import copy_datadir
from regionctl.globaldb.preserve import PreservedCopy
from regionctl.runtime.postgres import PgInstance
from regionctl.runtime.topology import Topology

ISOLATION_SETTINGS = {
    "archive_mode": "off",
    "primary_conninfo": "",
    "primary_slot_name": "",
    "restore_command": "",
    "max_wal_senders": "0",
    "hot_standby": "on",
}


def start_recon_instance(topo: Topology, copy: PreservedCopy, label: str | None = None) -> PgInstance:
    """Copy ``copy`` into a scratch directory and start it on a free port of the copy's region."""
    name = label or f"recon-{copy.database}-{int(time.time() * 1000)}"
    directory = topo.paths.root / "recon" / name
    host = topo.settings.region_address(copy.region)
    instance = PgInstance(
        name=name, datadir=directory / "data", host=host, port=topo.ports.get(f"recon/{name}", host),
        log_file=directory / "postgres.log", bins=topo.bins, runas=topo.runas,
    )
    if instance.running:
        return instance
    if not instance.datadir.exists():
        copy_datadir(Path(copy.path), instance.datadir)
        for stale in ("standby.signal", "recovery.signal", "postmaster.pid"):
            (instance.datadir / stale).unlink(missing_ok=True)
        directory.chmod(0o755)
    instance.start(ISOLATION_SETTINGS, timeout=300)
    return instance


def drop_recon_instance(topo: Topology, instance: PgInstance) -> None:
    instance.stop("fast")
    shutil.rmtree(instance.datadir.parent, ignore_errors=True)
    topo.ports.release(f"recon/{instance.name}")
