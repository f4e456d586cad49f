"""The observation processes of a deployment: one canary runner per region, one console on the global plane.

Canary targets are resolved here, once: each region's own front, the other region's front as the link emulator
exposes it to this region (so partitions and latency reach the remote canaries, as VPC peering did in the
reference) and the global entry.
"""

from __future__ import annotations

from collections.abc import Iterable

from regionctl.config import Settings
from regionctl.observe.canaries import Targets, plan
from regionctl.observe.canary_runner import PLAN_ENV, dump_plan
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec, python_module
from regionctl.runtime.topology import GLOBAL_HOST, Network, Topology

CANARIES = "canaries"
CONSOLE = "console"
FRONT = "ui"  # the workload's front, as the routing plane's endpoints know it
ENTRY = "entry"  # the routing plane's global entry


def canary_url(settings: Settings, ports: PortRegistry, region: str) -> str | None:
    """Where a running deployment's canary runner of ``region`` listens (None if never started)."""
    known = ports.all().get(f"{region}/{CANARIES}")
    return None if known is None else f"http://{known[0]}:{known[1]}"


def console_url(ports: PortRegistry) -> str | None:
    known = ports.all().get(f"{GLOBAL_PLANE}/{CONSOLE}")
    return None if known is None else f"http://{known[0]}:{known[1]}"


def region_targets(topo: Topology, network: Network, region: str) -> Targets:
    settings, ports = topo.settings, topo.ports
    other = settings.other_region(region)
    front = (settings.region_address(other), ports.get(f"{other}/{FRONT}", settings.region_address(other)))
    remote_host, remote_port = network.reach(region, other, FRONT, front)
    own_host = settings.region_address(region)
    return Targets(local=f"http://{own_host}:{ports.get(f'{region}/{FRONT}', own_host)}",
                   remote=f"http://{remote_host}:{remote_port}", remote_region=other,
                   global_entry=f"http://{GLOBAL_HOST}:{topo.port(GLOBAL_PLANE, ENTRY)}")


def process_specs(topo: Topology, network: Network) -> Iterable[ProcessSpec]:
    """Canary runners only when a workload runs (they check its front); the console always."""
    settings = topo.settings
    knobs = settings.canaries
    for region in settings.regions if settings.workload.launcher else ():
        host = settings.region_address(region)
        port = topo.port(region, CANARIES)
        canaries = plan(region, region_targets(topo, network, region), knobs.pages)
        yield ProcessSpec(name=CANARIES, region=region,
                          argv=python_module("regionctl.observe.canary_runner", "--host", host, "--port", str(port)),
                          env={PLAN_ENV: dump_plan(region, knobs, canaries)}, health_url=f"http://{host}:{port}/health")
    port = topo.port(GLOBAL_PLANE, CONSOLE)
    yield ProcessSpec(name=CONSOLE, region=GLOBAL_PLANE,
                      argv=python_module("regionctl.observe.console", "--host", GLOBAL_HOST, "--port", str(port)),
                      health_url=f"http://{GLOBAL_HOST}:{port}/health")
