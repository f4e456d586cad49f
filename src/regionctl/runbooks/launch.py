"""How the supervisor runs the runbook engine: one global-plane process on loopback."""

from __future__ import annotations

import os

from regionctl.config import Paths, Settings
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec, python_module

PORT_KEY = "global/runbooks"
HOST = "127.0.0.1"


def engine_url(settings: Settings) -> str | None:
    """Where a running deployment's engine listens, without allocating a port (None if never started)."""
    known = PortRegistry(Paths(settings.root).state / "ports.json", settings.base_port).all().get(PORT_KEY)
    return None if known is None else f"http://{known[0]}:{known[1]}"


def process_spec(settings: Settings, ports: PortRegistry, paths: Paths) -> ProcessSpec:
    """The engine + API process. Its settings travel in the environment (no secrets: the token is read from
    the deployment's secrets file or the inherited environment)."""
    port = ports.get(PORT_KEY, HOST)
    env = {
        "ENV": settings.env,
        "PRIMARY_REGION": settings.primary_region,
        "STANDBY_REGION": settings.standby_region,
        "REGIONCTL_DATA_DIR": str(paths.root),
        "REGIONCTL_BASE_PORT": str(settings.base_port),
    }
    config = os.environ.get("REGIONCTL_CONFIG")
    if config:
        env["REGIONCTL_CONFIG"] = os.path.abspath(config)
    return ProcessSpec(
        name="runbooks",
        region=GLOBAL_PLANE,
        argv=python_module("regionctl.runbooks.server", "--host", HOST, "--port", str(port)),
        env=env,
        health_url=f"http://{HOST}:{port}/healthz",
    )
