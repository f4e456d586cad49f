"""The supervised processes each component contributes to a deployment, in start order.

One list, so the order of ``up`` is visible in one place: platform loops first, then the regions' workload,
then the global plane that routes users to it and the runbook engine that operates it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec, python_module
from regionctl.runtime.topology import REGIONAL_DB, Network, Topology

SpecSource = Callable[[Topology, Network], Iterable[ProcessSpec]]


def reconciliation_slot_advancer(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    yield ProcessSpec(name="reconslot", region=GLOBAL_PLANE, argv=python_module("regionctl.globaldb.reconslot"))


def regional_dsn(topo: Topology, network: Network, src_region: str, dst_region: str) -> str:
    """The regional store of ``dst_region`` as a process in ``src_region`` reaches it (through the link)."""
    pg = topo.pg(dst_region, REGIONAL_DB)
    host, port = (pg.host, pg.port) if src_region == dst_region else network.reach(
        src_region, dst_region, f"pg/{REGIONAL_DB}", (pg.host, pg.port))
    return f"host={host} port={port} user=postgres dbname={REGIONAL_DB} connect_timeout=5"


def regional_store_replicators(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    from regionctl.regionalstore.launch import process_specs

    regions = topo.settings.regions
    local = {r: regional_dsn(topo, network, r, r) for r in regions}
    remote = {(a, b): regional_dsn(topo, network, a, b) for a in regions for b in regions if a != b}
    return process_specs(topo.settings, local, remote)


def routing_plane(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    from regionctl.routing.launch import process_specs

    return process_specs(topo.settings, topo.ports, topo.paths)


def runbook_engine(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    from regionctl.runbooks.launch import process_spec

    yield process_spec(topo.settings, topo.ports, topo.paths)


def sources() -> list[SpecSource]:
    return [reconciliation_slot_advancer, regional_store_replicators, routing_plane, runbook_engine]
