"""Endpoint health checks as Route 53 runs them: an HTTP GET every interval, a timeout, and a failure threshold of
consecutive contrary results (1-10) before the status flips either way.

Two additions. A passing endpoint whose JSON body says ``"degraded": true`` is healthy but degraded (it serves,
though something further away, such as the cross-region writer, is missing): the view prefers regions that are
not. And after a routing change turns a region On (or the other Off), the next passing check is enough for it
to rise (``expedite``), checked at once rather than an interval later: the rise threshold exists to damp
flapping, and a change an operator or runbook made is no flap. It is one-shot and lasts ``EXPEDITE_S``: after
its first pass, or once that time is up, the region needs the full threshold again, and a fall always does.

``observe`` is the pure state machine; ``HealthMonitor`` runs the probes. Every process of the global plane runs its
own monitor (like Route 53's independent health checkers), so the entry and DNS keep judging endpoints even
while the control API is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import httpx

from regionctl.routing.endpoints import Endpoint

EXPEDITE_S = 30.0  # how long after a routing change one passing check is enough for a region it turned On


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
    degraded: bool = False  # the last passing result said so
    expedited_until: float = 0.0  # until then, one passing result makes it healthy (a routing change turned it On)

    def describe(self) -> str:
        if self.healthy is None:
            return "health not known yet (no check has completed)"
        word = "passing, degraded" if self.healthy and self.degraded else "passing" if self.healthy else "failing"
        text = f"health check {word} (last: {self.last_detail})"
        if self.contrary:
            text += f"; {self.contrary} contrary result(s) so far"
        return text


def observe(state: HealthState, ok: bool, detail: str, now: float, threshold: int,
            degraded: bool = False) -> HealthState:
    """The state after one probe result. The first result decides; after that it takes ``threshold`` consecutive
    contrary results to flip, so one lost probe does not move traffic; an expedited state rises on one pass."""
    base = replace(state, last_ok=ok, last_detail=detail, checked_at=now,
                   degraded=degraded if ok else state.degraded)
    if state.healthy is None:
        return replace(base, healthy=ok, contrary=0, expedited_until=0.0)
    if ok == state.healthy:
        return replace(base, contrary=0)
    if state.contrary + 1 >= threshold or (ok and now < state.expedited_until):
        return replace(base, healthy=ok, contrary=0, expedited_until=0.0)
    return replace(base, contrary=state.contrary + 1)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    degraded: bool = False


async def probe(client: httpx.AsyncClient, endpoint: Endpoint, timeout_s: float) -> ProbeResult:
    """One HTTP check: 2xx or 3xx within the timeout passes (Route 53's rule); a JSON body with
    ``"degraded": true`` passes degraded, its ``reason`` kept as the detail."""
    try:
        response = await client.get(endpoint.health_url, timeout=timeout_s)
    except httpx.TimeoutException:
        return ProbeResult(False, f"no answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return ProbeResult(False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    ok = 200 <= response.status_code < 400
    body: object = None
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            body = response.json()
        except ValueError:
            body = None
    if ok and isinstance(body, dict) and body.get("degraded") is True:
        return ProbeResult(True, f"HTTP {response.status_code}, degraded: {str(body.get('reason', ''))[:200]}", True)
    return ProbeResult(ok, f"HTTP {response.status_code}")


Listener = Callable[[str, HealthState], None]


class HealthMonitor:
    """Checks every endpoint each interval and keeps the latest state per region."""

    def __init__(self, endpoints: Mapping[str, Endpoint], config: HealthCheckConfig,
                 listener: Listener | None = None) -> None:
        self.endpoints = dict(endpoints)
        self.config = config
        self.states: dict[str, HealthState] = {region: HealthState() for region in endpoints}
        self.listener = listener
        self._now: asyncio.Event | None = None

    def expedite(self, regions: Iterable[str]) -> None:
        """A routing change turned these regions On (or the others Off): their next pass makes them healthy,
        and the next round starts now."""
        until = time.time() + EXPEDITE_S
        for region in regions:
            if region in self.states and not self.states[region].healthy:
                self.states[region] = replace(self.states[region], expedited_until=until)
        if self._now is not None:
            self._now.set()

    async def check_once(self, client: httpx.AsyncClient) -> None:
        regions = list(self.endpoints)
        results = await asyncio.gather(*(probe(client, self.endpoints[r], self.config.timeout_s) for r in regions))
        now = time.time()
        for region, result in zip(regions, results, strict=True):
            self.states[region] = observe(self.states[region], result.ok, result.detail, now,
                                          self.config.failure_threshold, result.degraded)
            if self.listener is not None:
                self.listener(region, self.states[region])

    async def run(self) -> None:
        """Check forever, one round per interval (measured from round start, so slow probes do not drift it), or
        at once after ``expedite``."""
        self._now = asyncio.Event()
        async with httpx.AsyncClient(trust_env=False) as client:
            while True:
                started = time.monotonic()
                self._now.clear()
                await self.check_once(client)
                wait = max(0.0, self.config.interval_s - (time.monotonic() - started))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._now.wait(), wait)
