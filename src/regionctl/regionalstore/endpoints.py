"""Where each region's regional store is, for the CLI and operators: the ``<region>/pg/regional`` port.

The lookup reads the deployment's port registry and allocates nothing. It is one replaceable function
(``use_resolver``) so the lead can point the CLI elsewhere (e.g. through a secrets store) without touching it.
"""

from __future__ import annotations

from collections.abc import Callable

from regionctl.config import Paths, Settings
from regionctl.errors import NotFoundError
from regionctl.runtime.ports import PortRegistry

REGIONAL_DB = "regional"
Resolver = Callable[[Settings, str], str]


def registry_dsn(settings: Settings, region: str) -> str:
    """The DSN of ``region``'s regional store, read from the port registry (user postgres, dbname regional)."""
    settings.require_region(region)
    key = f"{region}/pg/{REGIONAL_DB}"
    known = PortRegistry(Paths(settings.root).state / "ports.json", settings.base_port).all().get(key)
    if known is None:
        raise NotFoundError(f"no regional store is allocated for {region} in {settings.root} "
                            f"(port registry key {key!r}); is the deployment up?")
    _, port = known
    return (f"host={settings.region_address(region)} port={port} user=postgres dbname={REGIONAL_DB} "
            f"passfile={Paths(settings.root).superuser_passfile}")


_resolver: Resolver = registry_dsn


def use_resolver(resolver: Resolver) -> Resolver:
    """Point every lookup at another function; returns the previous one."""
    global _resolver
    previous, _resolver = _resolver, resolver
    return previous


def dsn(settings: Settings, region: str) -> str:
    return _resolver(settings, settings.require_region(region))


def dsns(settings: Settings) -> dict[str, str]:
    return {region: dsn(settings, region) for region in settings.regions}
