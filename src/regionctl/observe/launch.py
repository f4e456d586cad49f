"""The observation processes of a deployment: one canary runner per region, one console on the global plane.

Canary targets are resolved here, once: each region's own front, the other region's front as the link emulator
exposes it to this region (so partitions and latency reach the remote canaries, as VPC peering did in the
reference) and the global entry.
"""

from __future__ import annotations

from collections.abc import Iterable

from regionctl.observe import prometheus
from regionctl.observe.canaries import Targets, plan
from regionctl.observe.canary_runner import PLAN_ENV, dump_plan
from regionctl.routing.endpoints import region_endpoint
from regionctl.routing.plane import HOST as ENTRY_HOST
from regionctl.routing.plane import PORT_KEYS
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec, python_module
from regionctl.runtime.topology import GLOBAL_HOST, Network, Topology

CANARIES = "canaries"
CONSOLE = "console"
REMOTE_ROUTE = "ui"  # the link route, from each region, to the other region's front


def _registered(ports: PortRegistry, key: str) -> str | None:
    known = ports.all().get(key)
    return None if known is None else f"http://{known[0]}:{known[1]}"


def canary_url(ports: PortRegistry, region: str) -> str | None:
    """Where a running deployment's canary runner of ``region`` listens (None if never started)."""
    return _registered(ports, f"{region}/{CANARIES}")


def console_url(ports: PortRegistry) -> str | None:
    return _registered(ports, f"{GLOBAL_PLANE}/{CONSOLE}")


def region_targets(topo: Topology, network: Network, region: str) -> Targets:
    """The region's own front and the other's as the routing plane knows them (its endpoints), the other one
    reached through the link, and the routing plane's global entry."""
    settings, ports = topo.settings, topo.ports
    other = settings.other_region(region)
    remote = region_endpoint(settings, ports, other)
    remote_host, remote_port = network.reach(region, other, REMOTE_ROUTE, (remote.host, remote.port))
    return Targets(local=region_endpoint(settings, ports, region).base_url,
                   remote=f"http://{remote_host}:{remote_port}", remote_region=other,
                   global_entry=f"http://{ENTRY_HOST}:{ports.get(PORT_KEYS['entry'], ENTRY_HOST)}")


def process_specs(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    """Canary runners only when a workload runs (they check its front); Prometheus when its binary is there;
    the console always."""
    settings = topo.settings
    knobs = settings.canaries
    for region in settings.regions if settings.workload.launcher else ():
        host = settings.region_address(region)
        port = topo.port(region, CANARIES)
        canaries = plan(region, region_targets(topo, network, region), knobs.pages)
        yield ProcessSpec(name=CANARIES, region=region,
                          argv=python_module("regionctl.observe.canary_runner", "--host", host, "--port", str(port)),
                          env={PLAN_ENV: dump_plan(region, knobs, canaries)}, health_url=f"http://{host}:{port}/health",
                          metrics_url=f"http://{host}:{port}/metrics")
    history = prometheus.process_spec(topo)  # before the console, which reads its history from it
    if history is not None:
        yield history
    port = topo.port(GLOBAL_PLANE, CONSOLE)
    yield ProcessSpec(name=CONSOLE, region=GLOBAL_PLANE,
                      argv=python_module("regionctl.observe.console", "--host", GLOBAL_HOST, "--port", str(port)),
                      health_url=f"http://{GLOBAL_HOST}:{port}/health", metrics_url=f"http://{GLOBAL_HOST}:{port}/metrics")
