"""Break and heal a whole region of the local deployment: what ``regionctl region kill|start`` and the drill's
``kill-region`` fault do."""

from __future__ import annotations

from regionctl.errors import InputError
from regionctl.runtime.supervisor import RegionMarks, kill_groups, read_processes
from regionctl.runtime.topology import Topology


def kill_region(topo: Topology, region: str) -> list[str]:
    """SIGKILL every process group of ``region`` and its PostgreSQL instances, and mark it down so the supervisor
    leaves it down; returns what was killed."""
    topo.settings.require_region(region)
    RegionMarks(topo.paths.state).mark_down(region)
    procs = [p for p in read_processes(topo.paths.state).values() if p.region == region]
    killed = kill_groups(procs)
    pg_dir = topo.paths.region(region) / "pg"
    for datadir in sorted(pg_dir.glob("*")) if pg_dir.exists() else []:
        if topo.pg(region, datadir.name).kill():
            killed.append(f"postgres {datadir.name}")
    return killed


def start_region(topo: Topology, region: str) -> None:
    """Let the running ``up`` restart a killed region (its databases return in their recorded roles)."""
    topo.settings.require_region(region)
    marks = RegionMarks(topo.paths.state)
    if not marks.is_down(region):
        raise InputError(f"region {region} is not marked down")
    marks.clear(region)
