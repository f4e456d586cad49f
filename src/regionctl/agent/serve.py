"""Run one region's agent: ``regionctl agent serve --region R`` (``up`` starts one per region by itself).

It listens where the deployment's inventory says (``agents.addresses``, else the region's own address) and
takes its token from the deployment's secrets (or ``agents.token`` on separate hosts): never from argv.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import uvicorn

from regionctl.agent.api import create_app
from regionctl.agent.host import RegionHost
from regionctl.agent.lease import LeaseKeeper
from regionctl.config import load_settings
from regionctl.runtime.etcd import client_url
from regionctl.runtime.etcdclient import Etcd
from regionctl.runtime.secrets import agent_token
from regionctl.runtime.topology import Topology


def serve(region: str, listen: str | None = None, etcd_urls: list[str] | None = None) -> None:
    """``etcd_urls``: every etcd member as this region reaches it, its own first (default: its own only)."""
    settings = load_settings()
    topo = Topology(settings)
    host = RegionHost(topo, settings.require_region(region))
    address, port = topo.agent_address(region)
    if listen:
        address, _, text = listen.rpartition(":")
        port = int(text)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    keeper = LeaseKeeper(host, Etcd(etcd_urls or [client_url(topo, region)]), settings.leases)
    keeper.start()
    uvicorn.run(create_app(host, agent_token(settings), keeper), host=address, port=port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=2)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m regionctl.agent", description=__doc__)
    parser.add_argument("--region", required=True)
    parser.add_argument("--listen", default=None, help="HOST:PORT instead of the inventory's address")
    parser.add_argument("--etcd", default=None, help="comma-separated etcd client URLs, this region's first")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    serve(args.region, args.listen, args.etcd.split(",") if args.etcd else None)
