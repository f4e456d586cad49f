"""How the platform runs the shop: one ``ProcessSpec`` per service per region, wired to the region's other
services and to its data sources. The platform calls this; it never imports the services themselves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from regionctl.config import Settings
from regionctl.errors import ConfigError
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.process import ProcessSpec, python_module
from regionctl.shop import SERVICES

HEALTH_PATHS = {"assets": "/actuator/health", "catalog": "/health", "orders": "/actuator/health",
                "carts": "/actuator/health", "checkout": "/health", "ui": "/actuator/health"}
CALLS = {"checkout": ("orders",), "ui": ("catalog", "carts", "checkout", "orders", "assets")}


@dataclass(frozen=True)
class DataSources:
    """The DSNs one region's services use (the writer DSNs are multi-host with target_session_attrs=read-write;
    the readers are the region's own members; ``regional`` is the region's writable regional store)."""

    orders_writer: str
    orders_reader: str
    catalog_writer: str
    catalog_reader: str
    regional: str

    def env_for(self, service: str) -> dict[str, str]:
        if service == "catalog":
            return {"CATALOG_WRITER_DSN": self.catalog_writer, "CATALOG_READER_DSN": self.catalog_reader}
        if service == "orders":
            return {"ORDERS_WRITER_DSN": self.orders_writer, "ORDERS_READER_DSN": self.orders_reader}
        if service in ("carts", "checkout"):
            return {"REGIONAL_DSN": self.regional}
        return {}


def port_key(region: str, service: str) -> str:
    return f"{region}/{service}"


def service_env(region: str, host: str, ports: Mapping[str, int], service: str,
                sources: DataSources) -> dict[str, str]:
    """The environment of one service: where it listens, whom it calls, which databases it uses."""
    env = {"REGION": region, "HOST": host, "PORT": str(ports[service]), **sources.env_for(service)}
    for callee in CALLS.get(service, ()):
        env[f"ENDPOINTS_{callee.upper()}"] = f"http://{host}:{ports[callee]}"
    if service == "orders":
        env["ORDER_EVENTS_ENDPOINT"] = f"http://{host}:{ports['orders']}/events/order-created"
    return env


def worker_counts(settings: Settings) -> dict[str, int]:
    """Processes per service (``workload.workers``, 1 where not named), or ConfigError naming an unknown service."""
    unknown = sorted(set(settings.workload.workers) - set(SERVICES))
    if unknown:
        raise ConfigError(f"workload.workers names {', '.join(map(repr, unknown))}, not a shop service; "
                          f"the services are {', '.join(SERVICES)}")
    return {service: settings.workload.workers.get(service, 1) for service in SERVICES}


def worker_name(service: str, worker: int) -> str:
    """The first worker keeps the service's name (status, logs and pids find it as before), the others ``ui-2``."""
    return service if worker == 1 else f"{service}-{worker}"


def process_specs(settings: Settings, ports: PortRegistry,
                  datasources: Mapping[str, DataSources]) -> list[ProcessSpec]:
    """Every shop process of every region, callees before callers; health_url is each one's readiness.

    A service with several workers runs that many processes on its one address (SO_REUSEPORT: the kernel spreads
    connections over them); each also listens on a port of its own, where the supervisor checks its health and
    Prometheus scrapes its metrics, so a dead or stuck worker is seen as itself and no series is counted twice.
    """
    counts = worker_counts(settings)
    specs = []
    for region in settings.regions:
        if region not in datasources:
            raise ConfigError(f"no data sources for region {region!r}; the shop needs its databases there")
        host = settings.region_address(region)
        region_ports = {service: ports.get(port_key(region, service), host) for service in SERVICES}
        for service in SERVICES:
            env = service_env(region, host, region_ports, service, datasources[region])
            for worker in range(1, counts[service] + 1):
                own = region_ports[service]
                extra = {}
                if counts[service] > 1:
                    own = ports.get(f"{port_key(region, service)}/worker-{worker}", host)
                    extra = {"WORKER_PORT": str(own)}
                specs.append(ProcessSpec(
                    name=worker_name(service, worker), region=region, argv=python_module("regionctl.shop", service),
                    env={**env, **extra},
                    health_url=f"http://{host}:{own}{HEALTH_PATHS[service]}",
                    metrics_url=f"http://{host}:{own}/metrics",
                    start_timeout_s=60.0,
                ))
    return specs


def ui_url(settings: Settings, ports: PortRegistry, region: str) -> str:
    """The base URL of a region's ui (what users, canaries and ``regionctl load`` talk to)."""
    host = settings.region_address(region)
    return f"http://{host}:{ports.get(port_key(region, 'ui'), host)}"


def workload(settings: Settings, ports: PortRegistry, data: Mapping[str, Any]) -> list[ProcessSpec]:
    """The platform's entry into the shop (``workload.launcher``): its per-region databases as DataSources."""
    return process_specs(settings, ports, {
        region: DataSources(
            orders_writer=d.writers["orders"], orders_reader=d.readers["orders"],
            catalog_writer=d.writers["catalog"], catalog_reader=d.readers["catalog"], regional=d.regional,
        )
        for region, d in data.items()
    })
