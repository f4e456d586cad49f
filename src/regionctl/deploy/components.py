"""The supervised processes each component contributes to a deployment, in start order.

One list, so the order of ``up`` is visible in one place: platform loops first, then the regions' workload,
then the global plane that routes users to it, the runbook engine that operates it, and what watches it
(canaries, console).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from regionctl.config import Settings
from regionctl.errors import ConfigError
from regionctl.globaldb.endpoints import reader_dsn, writer_dsn
from regionctl.globaldb.service import GlobalDatabases
from regionctl.runtime import etcd
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec, python_module
from regionctl.runtime.topology import REGIONAL_DB, Network, Topology

SpecSource = Callable[[Topology, Network], Iterable[ProcessSpec]]


def region_agents(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    """One agent per region, in the region's process group (it dies with the region), on the region's address.
    Regions whose agent the inventory places elsewhere (``agents.addresses``) run theirs on their own hosts."""
    for region in topo.settings.regions:
        if region in topo.settings.agents.addresses:
            continue
        host, port = topo.agent_address(region)
        etcd_urls = ",".join(etcd.client_urls_from(topo, network, region))
        yield ProcessSpec(name="agent", region=region,
                          argv=python_module("regionctl.agent", "--region", region, "--etcd", etcd_urls),
                          health_url=f"http://{host}:{port}/health")


def reconciliation_slot_advancer(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    yield ProcessSpec(name="reconslot", region=GLOBAL_PLANE, argv=python_module("regionctl.globaldb.reconslot"))


def regional_dsn(topo: Topology, network: Network, src_region: str, dst_region: str) -> str:
    """The regional store of ``dst_region`` as a process in ``src_region`` reaches it (through the link)."""
    pg = topo.pg(dst_region, REGIONAL_DB)
    host, port = (pg.host, pg.port) if src_region == dst_region else network.reach(
        src_region, dst_region, f"pg/{REGIONAL_DB}", (pg.host, pg.port))
    return (f"host={host} port={port} user=postgres dbname={REGIONAL_DB} connect_timeout=5 "
            f"passfile={topo.paths.superuser_passfile}")


def regional_store_replicators(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    from regionctl.regionalstore.launch import process_specs

    regions = topo.settings.regions
    local = {r: regional_dsn(topo, network, r, r) for r in regions}
    remote = {(a, b): regional_dsn(topo, network, a, b) for a in regions for b in regions if a != b}
    return process_specs(topo.settings, local, remote)


@dataclass(frozen=True)
class RegionData:
    """What the platform offers a workload in one region: its databases, found the platform's way."""

    # DSNs name a libpq service, never a password: processes read the current credential from $PGSERVICEFILE
    writers: Mapping[str, str]  # global database -> writer DSN (multi-host, follows the writer after failover)
    readers: Mapping[str, str]  # global database -> the region's own member
    regional: str  # the region's writable multi-active store


Workload = Callable[[Settings, PortRegistry, Mapping[str, RegionData]], Iterable[ProcessSpec]]


def workload(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    """The configured workload (the shop by default), loaded by name: the platform never imports it."""
    launcher = topo.settings.workload.launcher
    if not launcher:
        return []
    module_name, _, function = launcher.partition(":")
    try:
        launch: Workload = getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"workload.launcher {launcher!r} cannot be loaded: {exc}") from None
    gdbs = GlobalDatabases(topo, network)
    data = {
        region: RegionData(
            writers={n: writer_dsn(gdbs.cluster(n), region, service=n) for n in gdbs.names},
            readers={n: reader_dsn(gdbs.cluster(n), region, service=n) for n in gdbs.names},
            regional=regional_dsn(topo, network, region, region),
        )
        for region in topo.settings.regions
    }
    return launch(topo.settings, topo.ports, data)


def routing_plane(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    from regionctl.routing.launch import process_specs

    return process_specs(topo.settings, topo.ports, topo.paths)


def runbook_engine(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    from regionctl.runbooks.launch import process_spec

    yield process_spec(topo.settings, topo.ports, topo.paths)


def observation(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    """Canaries in each region and the operations console; after the routing plane, whose entry they check."""
    from regionctl.observe.launch import process_specs

    return process_specs(topo, network)


def sources() -> list[SpecSource]:
    return [reconciliation_slot_advancer, regional_store_replicators, workload, routing_plane, runbook_engine,
            observation]
