"""The global plane's resolved configuration, written once by the launcher and read by each of its processes.

It holds everything the control API, the entry and the DNS server need (addresses, ports, endpoints, health-check
knobs, file locations), but never the token itself: only the path of the 0600 file that holds it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from pydantic import BaseModel, ValidationError

from regionctl.config import Paths, Settings
from regionctl.errors import ConfigError
from regionctl.routing.endpoints import Endpoint, region_endpoint
from regionctl.routing.health import HealthCheckConfig
from regionctl.routing.model import default_spec
from regionctl.routing.store import SqliteControlStore
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.secrets import control_token

HOST = "127.0.0.1"
PORT_KEYS = {"api": "global/routing-api", "entry": "global/entry", "dns": "global/dns",
             "dns_admin": "global/dns-admin"}


class HostPort(BaseModel):
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class RegionEndpoint(BaseModel):
    region: str
    host: str
    port: int
    health_path: str


class PlaneConfig(BaseModel):
    regions: list[RegionEndpoint]
    api: HostPort
    entry: HostPort
    dns: HostPort
    dns_admin: HostPort
    dns_name: str
    dns_ttl_s: int
    health_interval_s: float
    health_timeout_s: float
    failure_threshold: int
    control_poll_s: float
    wait_period_s: float
    state_dir: Path
    token_file: Path
    operators_file: Path | None = None
    audit_file: Path | None = None

    def region_names(self) -> list[str]:
        return [r.region for r in self.regions]

    def endpoints(self) -> dict[str, Endpoint]:
        return {r.region: Endpoint(r.region, r.host, r.port, r.health_path) for r in self.regions}

    def health_config(self) -> HealthCheckConfig:
        return HealthCheckConfig(self.health_interval_s, self.health_timeout_s, self.failure_threshold)

    @property
    def store_path(self) -> Path:
        return self.state_dir / "controls.sqlite"

    def cache_path(self, component: str) -> Path:
        """Where a data-plane process keeps the last control states it read (static stability across restarts)."""
        return self.state_dir / f"last-known-{component}.json"

    def read_token(self) -> str:
        try:
            token = self.token_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the control token file {self.token_file}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"the control token file {self.token_file} is empty")
        return token


def plane_dir(paths: Paths) -> Path:
    return paths.state / "routing"


def build_plane(settings: Settings, ports: PortRegistry, paths: Paths) -> PlaneConfig:
    def port(name: str) -> HostPort:
        return HostPort(host=HOST, port=ports.get(PORT_KEYS[name], HOST))

    r = settings.routing
    endpoints = [region_endpoint(settings, ports, region) for region in settings.regions]
    return PlaneConfig(
        regions=[RegionEndpoint(region=e.region, host=e.host, port=e.port, health_path=e.health_path)
                 for e in endpoints],
        api=port("api"), entry=port("entry"), dns=port("dns"), dns_admin=port("dns_admin"),
        dns_name=settings.dns_name, dns_ttl_s=r.dns_ttl_s, health_interval_s=r.health_interval_s,
        health_timeout_s=r.health_timeout_s, failure_threshold=r.failure_threshold, control_poll_s=r.control_poll_s,
        wait_period_s=r.wait_period_s, state_dir=plane_dir(paths), token_file=plane_dir(paths) / "api-token",
        operators_file=paths.operators, audit_file=paths.audit,
    )


def write_private(path: Path, text: str) -> None:
    """Write a file readable only by its owner, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def write_plane(settings: Settings, plane: PlaneConfig) -> Path:
    """Write plane.json and the API's token file (the effective token: configured or generated)."""
    path = plane.state_dir / "plane.json"
    write_private(plane.token_file, control_token(settings) + "\n")
    write_private(path, plane.model_dump_json(indent=2))
    return path


def load_plane(path: str | Path) -> PlaneConfig:
    try:
        return PlaneConfig.model_validate(json.loads(Path(path).read_text()))
    except (OSError, ValueError, ValidationError) as exc:
        raise ConfigError(f"cannot read the global plane file {path}: {exc}") from None


def open_store(plane: PlaneConfig) -> SqliteControlStore:
    return SqliteControlStore.open(plane.store_path, default_spec(plane.region_names(), plane.wait_period_s),
                                   time.time())
