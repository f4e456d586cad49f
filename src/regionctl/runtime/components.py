"""The supervised processes each component contributes to a deployment, in start order.

One list, so the order of ``up`` is visible in one place: platform loops first, then the regions' workload,
then the global plane that routes users to it and the runbook engine that operates it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec, python_module
from regionctl.runtime.topology import Network, Topology

SpecSource = Callable[[Topology, Network], Iterable[ProcessSpec]]


def reconciliation_slot_advancer(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    yield ProcessSpec(name="reconslot", region=GLOBAL_PLANE, argv=python_module("regionctl.globaldb.reconslot"))


def routing_plane(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    from regionctl.routing.launch import process_specs

    return process_specs(topo.settings, topo.ports, topo.paths)


def runbook_engine(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    from regionctl.runbooks.launch import process_spec

    yield process_spec(topo.settings, topo.ports, topo.paths)


def sources() -> list[SpecSource]:
    return [reconciliation_slot_advancer, routing_plane, runbook_engine]
