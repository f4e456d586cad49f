"""Readiness: named dependency checks, evaluated with a short cache, aggregated by a pure function.

A service is *ready* when it can serve its users with what it has (its own region's dependencies), and
*degraded* when part of what it offers waits on something further away: a check raises ``Degraded`` for that
(the orders service whose cross-region writer cannot be reached still serves order history from its local
member). A degraded service answers 200, so a region never turns unroutable because the other one failed; the
entry prefers regions that are not degraded (``routing/view.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

CheckFn = Callable[[], str | None]  # returns a detail on success, raises on failure (Degraded: partly)


class Degraded(Exception):
    """Raised by a check whose dependency serves only part of what the service offers; the message says which."""


@dataclass(frozen=True)
class Check:
    name: str
    fn: CheckFn
    critical: bool = True  # a failing non-critical check is reported but does not make the service unready


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    up: bool
    detail: str
    critical: bool = True
    degraded: bool = False


@dataclass(frozen=True)
class ReadinessReport:
    ready: bool
    reason: str
    components: tuple[ComponentStatus, ...] = field(default_factory=tuple)

    @property
    def degraded(self) -> bool:
        return self.ready and any(c.degraded for c in self.components)

    def as_json(self, service: str, region: str) -> dict[str, object]:
        return {
            "status": "UP" if self.ready else "DOWN",
            "degraded": self.degraded,
            "service": service,
            "region": region,
            "reason": self.reason,
            "components": {
                c.name: {"status": "DEGRADED" if c.degraded else "UP" if c.up else "DOWN", "detail": c.detail,
                         "critical": c.critical}
                for c in self.components
            },
        }


def aggregate(components: Sequence[ComponentStatus]) -> ReadinessReport:
    """Ready when every critical component is up; the reason names the ones that are not, or those degraded."""
    down = [c for c in components if c.critical and not c.up]
    if not down:
        degraded = [c for c in components if c.degraded]
        if degraded:
            return ReadinessReport(True, "degraded: " + "; ".join(f"{c.name}: {c.detail}" for c in degraded),
                                   tuple(components))
        return ReadinessReport(True, "all dependencies up", tuple(components))
    reason = "; ".join(f"{c.name}: {c.detail}" for c in down)
    return ReadinessReport(False, reason, tuple(components))


def run_check(check: Check) -> ComponentStatus:
    try:
        detail = check.fn() or "ok"
        return ComponentStatus(check.name, True, detail, check.critical)
    except Degraded as partly:
        return ComponentStatus(check.name, True, str(partly)[:300] or "degraded", check.critical, degraded=True)
    except Exception as exc:  # a failing check is data, not an error
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ComponentStatus(check.name, False, text[:300], check.critical)


class Readiness:
    """Evaluates the checks at most once per ``ttl_s`` (health checkers poll often; dependencies stay calm)."""

    def __init__(self, checks: Sequence[Check] = (), ttl_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.checks = list(checks)
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, ReadinessReport] | None = None
        # kept between evaluations, not started for each one (the ui's five checks were five new threads a second)
        self._pool: tuple[int, ThreadPoolExecutor] | None = None

    def add(self, check: Check) -> None:
        self.checks.append(check)
        self.invalidate()

    def invalidate(self) -> None:
        """Forget the cached report (a state the service itself changed must show at once)."""
        self._cached = None

    def evaluate(self) -> ReadinessReport:
        with self._lock:
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self.ttl_s:
                return self._cached[1]
            if len(self.checks) > 1:  # checks are independent; a slow one should not delay the rest
                statuses = list(self._threads().map(run_check, self.checks))
            else:
                statuses = [run_check(c) for c in self.checks]
            report = aggregate(statuses)
            self._cached = (self._clock(), report)
            return report

    def _threads(self) -> ThreadPoolExecutor:
        """A thread per check, started once (a check added later gets a pool that size)."""
        if self._pool is None or self._pool[0] < len(self.checks):
            if self._pool is not None:
                self._pool[1].shutdown(wait=False)
            self._pool = (len(self.checks), ThreadPoolExecutor(len(self.checks), thread_name_prefix="readiness"))
        return self._pool[1]
