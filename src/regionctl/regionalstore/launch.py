"""The replicator processes a deployment runs: one per direction, each in its source region.

The replicator in region A reads A's store locally and writes B's through whatever DSN the caller passes (in a
deployment, B's store as reached through the link emulator). DSNs go in the environment, not argv, so a password
never shows in a process listing.
"""

from __future__ import annotations

from collections.abc import Mapping

from regionctl.config import Settings
from regionctl.errors import ConfigError
from regionctl.runtime.process import ProcessSpec, python_module
from regionctl.runtime.topology import Topology

PROCESS_NAME = "store-replicator"


def metrics_port(settings: Settings, region: str) -> int:
    return Topology(settings).port(region, f"{PROCESS_NAME}/metrics")


def process_specs(settings: Settings, local_dsns: Mapping[str, str],
                  remote_dsns: Mapping[tuple[str, str], str]) -> list[ProcessSpec]:
    """``local_dsns[region]``: the region's own store; ``remote_dsns[(src, dst)]``: dst's store as seen from src."""
    specs = []
    for source in settings.regions:
        target = settings.other_region(source)
        if source not in local_dsns:
            raise ConfigError(f"regional store: no local DSN for {source}")
        if (source, target) not in remote_dsns:
            raise ConfigError(f"regional store: no DSN for {target}'s store as reached from {source}")
        host = settings.region_address(source)
        port = metrics_port(settings, source)
        specs.append(ProcessSpec(
            name=PROCESS_NAME,
            region=source,
            argv=python_module("regionctl.regionalstore.replicator", "--source-region", source,
                               "--target-region", target, "--metrics-host", host, "--metrics-port", str(port)),
            env={"REGIONALSTORE_SOURCE_DSN": local_dsns[source],
                 "REGIONALSTORE_TARGET_DSN": remote_dsns[(source, target)]},
            health_url=f"http://{host}:{port}/metrics", metrics_url=f"http://{host}:{port}/metrics",
        ))
    return specs
