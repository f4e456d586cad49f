"""Region agents (and the etcd members their leases live in) for tests that drive global databases without a
whole deployment (no ``up``, no link: ``DirectNetwork``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from regionctl.config import EFFECTIVE_SETTINGS_ENV, Settings, write_effective_settings
from regionctl.runtime import etcd
from regionctl.runtime.topology import DirectNetwork, Topology


@contextmanager
def region_agents(settings: Settings) -> Iterator[Topology]:
    """One real agent process per region, as ``up`` would start them; stopped (their databases left running)
    on exit."""
    topo = Topology(settings)
    effective = write_effective_settings(settings, topo.paths.state / "effective-settings.json")
    env = {**os.environ, EFFECTIVE_SETTINGS_ENV: str(effective)}
    etcd.peer_routes(topo, DirectNetwork())
    procs = [subprocess.Popen(spec.argv, cwd=spec.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for spec in etcd.process_specs(topo)]
    etcd.wait_quorum(topo)
    procs += [subprocess.Popen([sys.executable, "-m", "regionctl.agent", "--region", region], env=env)
              for region in settings.regions]
    try:
        for region in settings.regions:
            host, port = topo.agent_address(region)
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://{host}:{port}/health", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        yield topo
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
