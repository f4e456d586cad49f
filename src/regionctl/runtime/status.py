"""What runs where: every database instance and supervised process, its address and health, in one pass."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from regionctl.runtime.process import pid_alive
from regionctl.runtime.supervisor import RegionMarks, read_processes
from regionctl.runtime.topology import Topology


@dataclass(frozen=True)
class ComponentStatus:
    region: str
    component: str
    address: str
    state: str  # up | unhealthy | down | a database member's role
    detail: str = ""


def deployment_status(topo: Topology) -> list[ComponentStatus]:
    ports = topo.ports.all()
    marks = RegionMarks(topo.paths.state)
    rows = []
    for key, (host, port) in sorted(ports.items()):
        region, _, component = key.partition("/")
        if component.startswith("pg/"):
            rows.append(_postgres(topo, region, component.removeprefix("pg/"), f"{host}:{port}"))
    for key, proc in sorted(read_processes(topo.paths.state).items()):
        host_port = ports.get(key)
        address = f"{host_port[0]}:{host_port[1]}" if host_port else ""
        if not pid_alive(proc.pid):
            state = "down"
        elif proc.health_url is None:
            state = "up"
        else:
            state = "up" if _answers(proc.health_url) else "unhealthy"
        detail = "region marked down" if marks.is_down(proc.region) else f"pid {proc.pid}"
        rows.append(ComponentStatus(proc.region, key.partition("/")[2], address, state, detail))
    return rows


def _postgres(topo: Topology, region: str, name: str, address: str) -> ComponentStatus:
    pg = topo.pg(region, name)
    if not pg.running:
        return ComponentStatus(region, f"postgres {name}", address, "down")
    try:
        role = "standby" if pg.in_recovery() else "writer" if name != "regional" else "writable"
    except Exception as exc:  # noqa: BLE001 - a status line, never a crash
        return ComponentStatus(region, f"postgres {name}", address, "unreachable", str(exc)[:80])
    return ComponentStatus(region, f"postgres {name}", address, role, f"pid {pg.pid()}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).is_success
    except httpx.HTTPError:
        return False
