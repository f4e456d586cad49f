"""Endpoint health checks as Route 53 runs them: an HTTP GET every interval, a timeout, and a failure threshold of
consecutive contrary results (1-10) before the status flips either way.

``observe`` is the pure state machine; ``HealthMonitor`` runs the probes. Every process of the global plane runs its
own monitor (like Route 53's independent health checkers), so the entry and DNS keep judging endpoints even
while the control API is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import httpx

from regionctl.routing.endpoints import Endpoint


@dataclass(frozen=True)
class HealthCheckConfig:
    interval_s: float = 2.0
    timeout_s: float = 1.0
    failure_threshold: int = 3


@dataclass(frozen=True)
class HealthState:
    """What one checker believes about one endpoint. ``healthy`` is None until the first result."""

    healthy: bool | None = None
    contrary: int = 0  # consecutive results disagreeing with ``healthy``
    last_ok: bool | None = None
    last_detail: str = "not checked yet"
    checked_at: float = 0.0

    def describe(self) -> str:
        if self.healthy is None:
            return "health not known yet (no check has completed)"
        word = "passing" if self.healthy else "failing"
        text = f"health check {word} (last: {self.last_detail})"
        if self.contrary:
            text += f"; {self.contrary} contrary result(s) so far"
        return text


def observe(state: HealthState, ok: bool, detail: str, now: float, threshold: int) -> HealthState:
    """The state after one probe result. The first result decides; after that it takes ``threshold`` consecutive
    contrary results to flip, so one lost probe does not move traffic."""
    base = replace(state, last_ok=ok, last_detail=detail, checked_at=now)
    if state.healthy is None:
        return replace(base, healthy=ok, contrary=0)
    if ok == state.healthy:
        return replace(base, contrary=0)
    if state.contrary + 1 >= threshold:
        return replace(base, healthy=ok, contrary=0)
    return replace(base, contrary=state.contrary + 1)


async def probe(client: httpx.AsyncClient, endpoint: Endpoint, timeout_s: float) -> tuple[bool, str]:
    """One HTTP check: 2xx or 3xx within the timeout passes (Route 53's rule)."""
    try:
        response = await client.get(endpoint.health_url, timeout=timeout_s)
    except httpx.TimeoutException:
        return False, f"no answer within {timeout_s:g} s"
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    ok = 200 <= response.status_code < 400
    return ok, f"HTTP {response.status_code}"


Listener = Callable[[str, HealthState], None]


class HealthMonitor:
    """Checks every endpoint each interval and keeps the latest state per region."""

    def __init__(self, endpoints: Mapping[str, Endpoint], config: HealthCheckConfig,
                 listener: Listener | None = None) -> None:
        self.endpoints = dict(endpoints)
        self.config = config
        self.states: dict[str, HealthState] = {region: HealthState() for region in endpoints}
        self.listener = listener

    async def check_once(self, client: httpx.AsyncClient) -> None:
        regions = list(self.endpoints)
        results = await asyncio.gather(*(probe(client, self.endpoints[r], self.config.timeout_s) for r in regions))
        now = time.time()
        for region, (ok, detail) in zip(regions, results, strict=True):
            self.states[region] = observe(self.states[region], ok, detail, now, self.config.failure_threshold)
            if self.listener is not None:
                self.listener(region, self.states[region])

    async def run(self) -> None:
        """Check forever, one round per interval (measured from round start, so slow probes do not drift it)."""
        async with httpx.AsyncClient(trust_env=False) as client:
            while True:
                started = time.monotonic()
                await self.check_once(client)
                await asyncio.sleep(max(0.0, self.config.interval_s - (time.monotonic() - started)))
