"""The link emulator: every cross-region TCP path goes through it, late, jittery or cut, as the operator says.

It joins *sites*: the regions and the global plane ("global"), so the control path (the global plane to each
region's agent and PostgreSQL) crosses it too and can be cut (``isolate``). A *route* is a listener on the source
site's address (a region's address, or 127.0.0.1 for the global plane) forwarding to a target in the destination
site; bytes client->target travel ``src->dst``, answers travel ``dst->src``, and each direction has its own
latency, jitter and partition state. One process runs all routes (``python -m regionctl.runtime.link serve ...``);
this module is how the rest of regionctl talks to it (``LinkClient``) and how the supervisor runs it
(``link_process_spec``).

A partition is a blackhole, not a refusal: bytes are held (neither delivered nor dropped) and flow on heal, as
TCP retransmission would make them; ``reset=True`` also drops open connections with a RST so clients notice now.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from regionctl.config import Paths, Settings
from regionctl.errors import ExternalError
from regionctl.runtime import tls
from regionctl.runtime.httperrors import raise_for_error
from regionctl.runtime.link_api import TOKEN_ENV
from regionctl.runtime.link_model import (
    DirectionState,
    LinkStatus,
    Route,
    RouteStatus,
    parse_direction,
    route_from_json,
)
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec, python_module
from regionctl.runtime.secrets import control_token

__all__ = [
    "CONTROL_HOST",
    "CONTROL_PORT_KEY",
    "DirectionState",
    "LinkClient",
    "LinkStatus",
    "Route",
    "RouteStatus",
    "link_client",
    "link_control_url",
    "link_process_spec",
    "parse_direction",
]

CONTROL_HOST = "127.0.0.1"
CONTROL_PORT_KEY = "global/link-control"


class LinkClient:
    """Talks to a running link emulator. 4xx answers raise InputError/ConflictError/NotFoundError with the
    emulator's message; no answer at all raises ExternalError saying the emulator is not running."""

    def __init__(self, control_url: str, timeout: float = 5.0, token: str | None = None) -> None:
        self.control_url = control_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.control_url, timeout=timeout, headers=headers, verify=tls.shared())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LinkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> LinkStatus:
        return status_from_json(self._call("GET", "/status"))

    def set(self, direction: str, latency_ms: float | None = None, jitter_ms: float | None = None) -> LinkStatus:
        """Change latency and/or jitter of ``direction`` ("a->b", "a<->b" or "both"); unset values stay."""
        body = {"direction": direction, "latency_ms": latency_ms, "jitter_ms": jitter_ms}
        return status_from_json(self._call("PUT", "/directions", body))

    def partition(self, direction: str = "both", reset: bool = False) -> LinkStatus:
        """Blackhole ``direction``; "both" means every direction between the regions, never the control path."""
        return status_from_json(self._call("POST", "/partition", {"direction": direction, "reset": reset}))

    def isolate(self, region: str, reset: bool = False) -> LinkStatus:
        """Partition every direction to or from ``region``: the other region's and the global plane's."""
        return status_from_json(self._call("POST", "/isolate", {"region": region, "reset": reset}))

    def heal(self, direction: str = "both") -> LinkStatus:
        """End the partition of ``direction``; "both" ends every partition, the control path's too."""
        return status_from_json(self._call("POST", "/heal", {"direction": direction}))

    def ensure_route(self, route: Route) -> Route:
        """Make the emulator run ``route`` (same name and spec: nothing changes; other spec: replaced).

        Either end may be a unix socket (``listen_path``/``target_path``); the answer is the route as kept, with
        such an end's host and port as "" and 0."""
        return route_from_json(self._call("POST", "/routes", asdict(route)))

    def remove_route(self, name: str) -> None:
        """Stop a route and drop its connections; a route that does not exist is already removed."""
        self._call("DELETE", f"/routes/{name}")

    def healthy(self) -> bool:
        try:
            return self._http.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.ConnectError as exc:
            raise ExternalError(
                f"the link emulator is not running (nothing answers at {self.control_url}: {exc}); "
                "start the deployment with `regionctl up`"
            ) from None
        except httpx.TimeoutException:
            raise ExternalError(f"the link emulator at {self.control_url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ExternalError(f"the link emulator at {self.control_url} failed: {exc}") from None
        raise_for_error(response, "link emulator: ")
        return response.json()


def status_from_json(data: dict[str, Any]) -> LinkStatus:
    return LinkStatus(
        directions=tuple(DirectionState(**d) for d in data["directions"]),
        routes=tuple(
            RouteStatus(route=route_from_json(r["route"]), **{k: v for k, v in r.items() if k != "route"})
            for r in data["routes"]
        ),
    )


def link_control_url(settings: Settings) -> str:
    """Where this deployment's link emulator answers (its port is remembered in the PortRegistry)."""
    ports = PortRegistry(Paths(settings.root).state / "ports.json", settings.base_port)
    return f"http://{CONTROL_HOST}:{ports.get(CONTROL_PORT_KEY, CONTROL_HOST)}"


def link_client(settings: Settings, timeout: float = 5.0, token: str | None = None) -> LinkClient:
    """A client for this deployment's emulator, carrying ``token`` (an operator's; by default the deployment's
    control token, the first admin)."""
    return LinkClient(link_control_url(settings), timeout=timeout, token=token or control_token(settings))


def link_process_spec(
    settings: Settings, control_host: str, control_port: int, state_dir: Path | str
) -> ProcessSpec:
    """How the supervisor runs the emulator: global plane, health on /health, initial latency and jitter from
    settings (between the regions, and of the control path).

    The token travels in the environment, never on the command line (visible to ``ps``).
    """
    env = {TOKEN_ENV: control_token(settings)}
    paths = Paths(settings.root)
    return ProcessSpec(
        name="link",
        region=GLOBAL_PLANE,
        argv=python_module(
            "regionctl.runtime.link", "serve",
            "--state-dir", str(state_dir),
            "--control", f"{control_host}:{control_port}",
            "--regions", ",".join(settings.regions),
            "--latency-ms", repr(float(settings.link.latency_ms)),
            "--jitter-ms", repr(float(settings.link.jitter_ms)),
            "--control-latency-ms", repr(float(settings.link.control_latency_ms)),
            "--control-jitter-ms", repr(float(settings.link.control_jitter_ms)),
            "--operators", str(paths.operators), "--audit", str(paths.audit),
        ),
        env=env,
        health_url=f"http://{control_host}:{control_port}/health",
        start_timeout_s=60.0,
    )


if __name__ == "__main__":
    from regionctl.runtime.link_api import main

    main()
