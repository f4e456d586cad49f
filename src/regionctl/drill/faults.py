"""The faults a drill injects into the local deployment, each with its revert. ``region`` is the region the
runbook then leaves (the writer's, normally)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from regionctl.deploy.regions import kill_region, start_region
from regionctl.errors import InputError
from regionctl.runtime.link import link_client
from regionctl.runtime.topology import Topology

SLOW_LINK_MS = 250.0

FAULTS = {
    "partition": "cut the link between the regions (both directions); each region still reaches the global plane",
    "isolate": "cut the region off from the other region and from the global plane",
    "kill-region": "SIGKILL every process of the region, databases included, and keep it down",
    "kill-writer": "crash the region's database writers (immediate shutdown; its services stay up)",
    "slow-link": f"add {SLOW_LINK_MS:g} ms between the regions",
    "none": "no fault: the runbook alone (a graceful runbook should lose nothing)",
}


@dataclass(frozen=True)
class Injected:
    kind: str
    description: str
    revert: Callable[[], None]


def check_fault(kind: str) -> str:
    if kind not in FAULTS:
        raise InputError(f"--fault {kind!r} is not a fault; choose one of {', '.join(FAULTS)}")
    return kind


def inject(topo: Topology, kind: str, region: str) -> Injected:
    check_fault(kind)
    settings = topo.settings
    if kind == "partition":
        with link_client(settings) as link:
            link.partition("both")
        return Injected(kind, "link between the regions partitioned", lambda: _heal(topo))
    if kind == "isolate":
        with link_client(settings) as link:
            link.isolate(region)
        return Injected(kind, f"{region} isolated", lambda: _heal(topo))
    if kind == "kill-region":
        killed = kill_region(topo, region)
        return Injected(kind, f"{region} killed ({len(killed)} processes)", lambda: start_region(topo, region))
    if kind == "kill-writer":  # through the region's agent: an immediate shutdown is a crash to the clients
        from regionctl.globaldb.service import GlobalDatabases
        from regionctl.runtime.network import deployment_network

        gdbs = GlobalDatabases(topo, deployment_network(topo))
        killed = [name for name in gdbs.names if gdbs.state(name).writer == region]
        for name in killed:
            gdbs.cluster(name).member(region).stop("immediate")
        return Injected(kind, f"writers of {', '.join(killed) or 'nothing'} in {region} crashed (immediate "
                              "shutdown)", lambda: None)
    if kind == "slow-link":
        with link_client(settings) as link:
            before = {(d.src, d.dst): d.latency_ms for d in link.status().directions}
            link.set("both", latency_ms=SLOW_LINK_MS)

        def restore() -> None:
            with link_client(settings) as again:
                regions = settings.regions
                for (src, dst), latency in before.items():
                    if src in regions and dst in regions:
                        again.set(f"{src}->{dst}", latency_ms=latency)
        return Injected(kind, f"{SLOW_LINK_MS:g} ms added between the regions", restore)
    return Injected(kind, "no fault", lambda: None)


def _heal(topo: Topology) -> None:
    with link_client(topo.settings) as link:
        link.heal("both")
