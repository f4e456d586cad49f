"""One entry point for every global-database operation (used by the CLI, the runbook actions and ``up``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from regionctl.config import GLOBAL_DATABASES
from regionctl.errors import InputError
from regionctl.globaldb import bootstrap, failover, preserve, rebuild, snapshots, switchover
from regionctl.globaldb.member import Agents
from regionctl.globaldb.members import Cluster
from regionctl.globaldb.preserve import PreservedCopy  # by name: the method preserve shadows the module
from regionctl.globaldb.snapshots import RestoredInstance  # by name: the method snapshots shadows the module
from regionctl.globaldb.state import DatabaseState, StateStore, load_state
from regionctl.globaldb.status import DatabaseStatus, read_status
from regionctl.runtime.topology import Network, Topology


@dataclass(frozen=True)
class GlobalDatabases:
    topo: Topology
    network: Network
    names: tuple[str, ...] = GLOBAL_DATABASES

    @cached_property
    def agents(self) -> Agents:
        return Agents(self.topo, self.network)

    @property
    def store(self) -> StateStore:
        return StateStore(self.topo.paths.state / "globaldb")

    def cluster(self, name: str) -> Cluster:
        if name not in self.names:
            raise InputError(f"unknown global database {name!r}; this deployment has {', '.join(self.names)}")
        return Cluster(name, self.topo, self.network, self.agents)

    def state(self, name: str) -> DatabaseState:
        return load_state(self.store, self.cluster(name).name)

    def ensure(self, name: str, down_regions: frozenset[str] = frozenset(),
               blocking: bool = True) -> bootstrap.EnsureResult | None:
        return bootstrap.ensure(self.cluster(name), self.store, down_regions, blocking)

    def status(self, name: str) -> DatabaseStatus:
        return read_status(self.cluster(name), self.state(name))

    def switchover(self, name: str, to_region: str) -> switchover.SwitchoverResult:
        return switchover.switchover(self.cluster(name), self.store, to_region)

    def failover(self, name: str, to_region: str) -> failover.FailoverResult:
        return failover.failover(self.cluster(name), self.store, to_region)

    def preserve(self, name: str, region: str) -> PreservedCopy:
        return preserve.preserve(self.cluster(name), self.store, region)

    def preserved(self, name: str) -> list[PreservedCopy]:
        return preserve.list_copies(self.cluster(name))

    def rebuild(self, name: str, region: str) -> rebuild.RebuildResult:
        return rebuild.rebuild(self.cluster(name), self.store, region)

    def snapshot(self, name: str, label: str | None = None) -> snapshots.Snapshot:
        return snapshots.take_snapshot(self.cluster(name), self.store, label)

    def snapshots(self, name: str) -> list[snapshots.Snapshot]:
        return snapshots.list_snapshots(self.cluster(name))

    def restore(self, name: str, target_time: datetime | None = None, target_lsn: str | None = None,
                region: str | None = None, restore_name: str | None = None) -> RestoredInstance:
        from regionctl.globaldb import restore

        return restore.restore(self.cluster(name), self.store, target_time, target_lsn, region, restore_name)

    def stop(self, name: str) -> list[str]:
        """Stop every member (fast); the data stays."""
        cluster = self.cluster(name)
        return [cluster.member(r).name for r in cluster.regions if cluster.member(r).stop("fast")]

    def restores(self, name: str) -> list[dict[str, object]]:
        from regionctl.globaldb import restore

        return restore.list_restores(self.cluster(name))

    def drop_restore(self, name: str, restore_id: str) -> str:
        from regionctl.globaldb import restore

        return restore.drop_restore(self.cluster(name), restore_id)
