"""The global plane's processes, described for the supervisor: control API, HTTP entry, DNS.

They are separate processes so the entry and DNS keep serving the last known routing state (also persisted to
disk) while the control API is down: static stability.
"""

from __future__ import annotations

from regionctl.config import Paths, Settings
from regionctl.routing.plane import build_plane, write_plane
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec, python_module


def process_specs(settings: Settings, ports: PortRegistry, paths: Paths) -> list[ProcessSpec]:
    """Resolve the plane (ports, endpoints, token file), write it, and describe its three processes."""
    plane = build_plane(settings, ports, paths)
    plane_file = str(write_plane(settings, plane))
    return [
        ProcessSpec(name="routing-api", region=GLOBAL_PLANE,
                    argv=python_module("regionctl.routing.api", "--plane", plane_file),
                    health_url=f"{plane.api.url}/health", metrics_url=f"{plane.api.url}/metrics"),
        ProcessSpec(name="entry", region=GLOBAL_PLANE,
                    argv=python_module("regionctl.routing.entry", "--plane", plane_file),
                    health_url=f"{plane.entry.url}/_entry/health", metrics_url=f"{plane.entry.url}/_entry/metrics"),
        ProcessSpec(name="dns", region=GLOBAL_PLANE,
                    argv=python_module("regionctl.routing.dns", "--plane", plane_file),
                    health_url=f"{plane.dns_admin.url}/health", metrics_url=f"{plane.dns_admin.url}/metrics"),
    ]
