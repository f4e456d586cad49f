"""Cross-site reach of a local deployment: every path from one region to another, and between the global plane
and a region (the control path), goes through the link emulator, whose routes are registered the first time a
component asks for one."""

from __future__ import annotations

from regionctl.runtime.topology import Network, Topology


class LinkNetwork:
    """Cross-site traffic through the link emulator: routes are registered on first use. A route from the global
    plane listens on GLOBAL_HOST, a route from a region on the region's address."""

    def __init__(self, topo: Topology) -> None:
        from regionctl.runtime.link import link_client

        self.topo = topo
        self.client = link_client(topo.settings)
        self._known: dict[str, tuple[str, int]] = {}

    def reach(self, src_region: str, dst_region: str, key: str, target: tuple[str, int]) -> tuple[str, int]:
        name = f"{src_region}/{dst_region}/{key}"  # source site / destination site / component
        if name not in self._known:
            from regionctl.runtime.link import Route

            host = self.topo.site_address(src_region)
            port = self.topo.link_port(src_region, dst_region, key)
            self.client.ensure_route(Route(name=name, src_region=src_region, dst_region=dst_region,
                                           listen_host=host, listen_port=port,
                                           target_host=target[0], target_port=target[1]))
            self._known[name] = (host, port)
        return self._known[name]


def deployment_network(topo: Topology) -> Network:
    return LinkNetwork(topo)
