"""The deployment's address book: which PostgreSQL instance lives where, and how one region reaches another.

Built once from settings; every component asks it instead of computing ports or paths itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from regionctl.config import Paths, Settings
from regionctl.runtime.osuser import RunAs, ensure_runas
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.postgres import PgBinaries, PgInstance

GLOBAL_HOST = "127.0.0.1"
REGIONAL_DB = "regional"


class Network(Protocol):
    """How a process in ``src_region`` reaches ``target`` in ``dst_region``: the link emulator, or direct."""

    def reach(self, src_region: str, dst_region: str, key: str, target: tuple[str, int]) -> tuple[str, int]: ...


class DirectNetwork:
    """No emulated link: cross-region traffic goes straight to the target (unit tests, single-host debugging)."""

    def reach(self, src_region: str, dst_region: str, key: str, target: tuple[str, int]) -> tuple[str, int]:
        return target


@dataclass(frozen=True)
class Topology:
    settings: Settings

    @cached_property
    def paths(self) -> Paths:
        return Paths(self.settings.root)

    @cached_property
    def ports(self) -> PortRegistry:
        return PortRegistry(self.paths.state / "ports.json", self.settings.base_port)

    @cached_property
    def runas(self) -> RunAs:
        return ensure_runas(self.settings.postgres.os_user)

    @cached_property
    def bins(self) -> PgBinaries:
        return PgBinaries.locate(self.settings.postgres.bin_dir)

    def port(self, region: str, component: str) -> int:
        host = GLOBAL_HOST if region == "global" else self.settings.region_address(region)
        return self.ports.get(f"{region}/{component}", host)

    def pg(self, region: str, name: str) -> PgInstance:
        """The PostgreSQL instance holding ``name`` (a global database or the regional store) in ``region``."""
        host = self.settings.region_address(region)
        return PgInstance(
            name=f"{name}-{region}",
            datadir=self.paths.pgdata(region, name),
            host=host,
            port=self.port(region, f"pg/{name}"),
            log_file=self.paths.logs(region) / f"pg-{name}.log",
            bins=self.bins,
            runas=self.runas,
        )

    def link_port(self, src_region: str, dst_region: str, key: str) -> int:
        """The port on ``src_region``'s address where the link emulator forwards to ``key`` in ``dst_region``."""
        return self.ports.get(f"link/{src_region}->{dst_region}/{key}", self.settings.region_address(src_region))
