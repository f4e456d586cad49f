"""Where a region is served: the one function that says which endpoint the entry proxies to and health-checks."""

from __future__ import annotations

from dataclasses import dataclass

from regionctl.config import Settings
from regionctl.runtime.ports import PortRegistry


@dataclass(frozen=True)
class Endpoint:
    region: str
    host: str
    port: int
    health_path: str = "/actuator/health"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def health_url(self) -> str:
        return self.base_url + self.health_path


def region_endpoint(settings: Settings, ports: PortRegistry, region: str) -> Endpoint:
    """A region's endpoint is its ui (as the reference's ALB target): ``<region>/ui`` on the region's address."""
    host = settings.region_address(region)
    return Endpoint(region, host, ports.get(f"{region}/ui", host), settings.routing.health_path)
