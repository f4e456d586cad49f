"""Cross-site reach of a local deployment: every path from one region to another, and between the global plane
and a region (the control path), goes through the link emulator, whose routes are registered the first time a
component asks for one. A route may join two unix sockets (``reach_path``: etcd's peers)."""

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
        self._paths: dict[str, tuple[str, str]] = {}

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

    def reach_path(self, src_region: str, dst_region: str, key: str, listen_path: str, target_path: str) -> str:
        """A route from the unix socket ``listen_path`` (which the emulator creates) to the one at
        ``target_path``; both are absolute paths of at most 100 bytes."""
        name = f"{src_region}/{dst_region}/{key}"
        if self._paths.get(name) != (listen_path, target_path):
            from regionctl.runtime.link import Route

            self.client.ensure_route(Route(name=name, src_region=src_region, dst_region=dst_region,
                                           listen_path=listen_path, target_path=target_path))
            self._paths[name] = (listen_path, target_path)
        return listen_path


def deployment_network(topo: Topology) -> Network:
    return LinkNetwork(topo)
