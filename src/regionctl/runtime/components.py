"""The supervised processes each component contributes to a deployment, in start order.

One list, so the order of ``up`` is visible in one place: platform loops first, then the regions' workload,
then the global plane that routes users to it.
"""

from __future__ import annotations

from collections.abc import Iterable

from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec, python_module
from regionctl.runtime.topology import Network, Topology


def reconciliation_slot_advancer(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    yield ProcessSpec(name="reconslot", region=GLOBAL_PLANE, argv=python_module("regionctl.globaldb.reconslot"))


def sources() -> list:  # type: ignore[type-arg]
    return [reconciliation_slot_advancer]
