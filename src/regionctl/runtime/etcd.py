"""The deployment's consensus store: Debian's etcd, three members (one per region, one witness on the global
plane), so a majority survives the loss or isolation of any one site.

Peer traffic crosses the link emulator like every cross-site path, so a partition or an isolation splits etcd
as it would split real regions. etcd members advertise one peer URL each, so per-source TCP listeners cannot
carry it; but etcd resolves ``unix://NAME`` peer URLs relative to its working directory. Each member runs in
its own directory where the sockets named after the *other* members are link listeners forwarding (through
that direction) to the real socket in the other member's directory. Clients know every member, their own
site's first and the others through the link (``client_urls_from``), as etcd's own clients do.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

from regionctl.errors import ConfigError, OperationTimeout
from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec
from regionctl.runtime.topology import Network, Topology

PEER_PORT = 2380  # only part of a socket's file name: peers never use TCP here


def lease_key(env: str, database: str) -> str:
    """The key naming the region whose writer holds ``database``'s writer lease."""
    return f"/regionctl/{env}/writer/{database}"


def sites(topo: Topology) -> tuple[str, ...]:
    return (*topo.settings.regions, GLOBAL_PLANE)


def member_dir(topo: Topology, site: str) -> Path:
    return topo.paths.root / "etcd" / site


def peer_socket(site: str) -> str:
    return f"etcd-{site}:{PEER_PORT}"


def client_url(topo: Topology, site: str) -> str:
    """Where the member of ``site`` answers clients (on the site's own address)."""
    return f"http://{topo.site_address(site)}:{topo.port(site, 'etcd')}"


def client_urls_from(topo: Topology, network: Network, site: str) -> list[str]:
    """Every member as a process in ``site`` reaches it: its own first, the others through the link."""
    urls = [client_url(topo, site)]
    for other in sites(topo):
        if other != site:
            host, port = network.reach(site, other, "etcd-client", (topo.site_address(other),
                                                                    topo.port(other, "etcd")))
            urls.append(f"http://{host}:{port}")
    return urls


def etcd_binary(topo: Topology) -> str:
    configured = topo.settings.leases.etcd_bin
    found = str(configured) if configured else shutil.which("etcd")
    if not found or not Path(found).exists():
        raise ConfigError("leases.etcd_bin: no etcd binary; install Debian's etcd-server (`make etcd`) or set it")
    return found


def process_specs(topo: Topology) -> Iterable[ProcessSpec]:
    """One member per site, in that site's process group (killing a region kills its member)."""
    binary = etcd_binary(topo)
    cluster = ",".join(f"{site}=unix://{peer_socket(site)}" for site in sites(topo))
    for site in sites(topo):
        directory = member_dir(topo, site)
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        url = client_url(topo, site)
        yield ProcessSpec(
            name="etcd", region=site, cwd=str(directory), health_url=f"{url}/health", start_timeout_s=60.0,
            argv=(binary, "--name", site, "--data-dir", str(directory / "data"),
                  "--listen-peer-urls", f"unix://{peer_socket(site)}",
                  "--initial-advertise-peer-urls", f"unix://{peer_socket(site)}",
                  "--listen-client-urls", url, "--advertise-client-urls", url,
                  "--initial-cluster", cluster, "--initial-cluster-state", "new",
                  "--initial-cluster-token", f"regionctl-{topo.settings.env}",
                  "--heartbeat-interval", "100", "--election-timeout", "1000", "--pre-vote",
                  "--logger", "zap", "--log-level", "warn"),
        )


def peer_routes(topo: Topology, network: Network) -> int:
    """Link routes carrying each member's traffic to every other member; return how many."""
    count = 0
    for site in sites(topo):
        member_dir(topo, site).mkdir(parents=True, exist_ok=True)
    for src in sites(topo):
        for dst in sites(topo):
            if src != dst:
                network.reach_path(src, dst, f"etcd/{dst}", str(member_dir(topo, src) / peer_socket(dst)),
                                   str(member_dir(topo, dst) / peer_socket(dst)))
                count += 1
    return count


def wait_quorum(topo: Topology, timeout: float = 60.0) -> None:
    """Until every member says it is healthy (it has a leader): members started together elect one."""
    deadline = time.monotonic() + timeout
    pending = list(sites(topo))
    while pending:
        try:
            if httpx.get(f"{client_url(topo, pending[0])}/health", timeout=2.0).json().get("health") == "true":
                pending.pop(0)
                continue
        except (httpx.HTTPError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise OperationTimeout(f"etcd member of {pending[0]} has no leader after {timeout:.0f}s; see its log")
        time.sleep(0.2)
