"""The deployment's address book: which PostgreSQL instance lives where, and how one region reaches another.

Built once from settings; every component asks it instead of computing ports or paths itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from regionctl.config import Paths, Settings
from regionctl.errors import ConflictError
from regionctl.runtime.osuser import RunAs, ensure_runas
from regionctl.runtime.pgpass import SuperuserLogin, ensure_login
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.postgres import PgBinaries, PgInstance
from regionctl.runtime.process import GLOBAL_PLANE
from regionctl.runtime.secrets import superuser_password

GLOBAL_HOST = "127.0.0.1"
REGIONAL_DB = "regional"


class Network(Protocol):
    """How a process in ``src_region`` reaches ``target`` in ``dst_region``: the link emulator, or direct.

    Either end may be the global plane (``GLOBAL_PLANE``): the control path crosses the link too.
    """

    def reach(self, src_region: str, dst_region: str, key: str, target: tuple[str, int]) -> tuple[str, int]: ...

    def reach_path(self, src_region: str, dst_region: str, key: str, listen_path: str, target_path: str) -> str:
        """Make a connect to the unix socket ``listen_path`` (in ``src_region``) reach ``target_path`` (in
        ``dst_region``); returns ``listen_path``."""
        ...


class DirectNetwork:
    """No emulated link: cross-region traffic goes straight to the target (unit tests, single-host debugging)."""

    def reach(self, src_region: str, dst_region: str, key: str, target: tuple[str, int]) -> tuple[str, int]:
        return target

    def reach_path(self, src_region: str, dst_region: str, key: str, listen_path: str, target_path: str) -> str:
        """``listen_path`` becomes a symbolic link to ``target_path`` (a connect follows it)."""
        link = Path(listen_path)
        if link.is_symlink() and os.readlink(link) == target_path:
            return listen_path
        if link.is_symlink() or link.is_socket():
            link.unlink()
        elif link.exists():
            raise ConflictError(f"listen_path: {listen_path} exists and is not a socket or a symbolic link")
        link.symlink_to(target_path)
        return listen_path


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

    @cached_property
    def login(self) -> SuperuserLogin:
        """How every instance of the deployment is entered as its superuser (SCRAM, ``runtime.pgpass``)."""
        return ensure_login(self.paths.superuser_passfile, superuser_password(self.settings), self.runas)

    def site_address(self, site: str) -> str:
        """The address a site's processes listen on: a region's loopback address, or GLOBAL_HOST for the global
        plane."""
        return GLOBAL_HOST if site == GLOBAL_PLANE else self.settings.region_address(site)

    def port(self, region: str, component: str) -> int:
        return self.ports.get(f"{region}/{component}", self.site_address(region))

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
            login=self.login,
        )

    def pg_address(self, region: str, name: str) -> tuple[str, int]:
        """Where the PostgreSQL instance holding ``name`` in ``region`` listens (no driver needed to know)."""
        return self.settings.region_address(region), self.port(region, f"pg/{name}")

    def agent_address(self, region: str) -> tuple[str, int]:
        """Where ``region``'s agent answers: configured (separate hosts), else on the region's own address."""
        configured = self.settings.agents.addresses.get(self.settings.require_region(region))
        if configured:
            host, _, port = configured.rpartition(":")
            return host, int(port)
        return self.settings.region_address(region), self.port(region, "agent")

    def link_port(self, src_region: str, dst_region: str, key: str) -> int:
        """The port on ``src_region``'s address (GLOBAL_HOST for the global plane) where the link emulator forwards
        to ``key`` in ``dst_region``."""
        return self.ports.get(f"link/{src_region}->{dst_region}/{key}", self.site_address(src_region))
