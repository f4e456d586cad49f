"""Prometheus metrics of one service, in a registry of its own (so several apps can live in one test process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """The metrics every service exposes at ``/metrics``; services add their own to ``registry``.

    Every series carries ``service`` and ``region`` labels so one Prometheus can scrape both regions.
    """

    def __init__(self, service: str, region: str) -> None:
        self.service = service
        self.region = region
        self.registry = CollectorRegistry(auto_describe=True)
        base = ["service", "region"]
        self._requests = Counter("shop_http_requests", "HTTP requests served", [*base, "method", "route", "status"],
                                 registry=self.registry)
        self._latency = Histogram("shop_http_request_duration_seconds", "HTTP request latency",
                                  [*base, "method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._errors = Counter("shop_http_errors", "HTTP requests answered with a 5xx", [*base, "method", "route"],
                               registry=self.registry)
        self._orders = Counter("shop_orders_created", "orders created (replays of an idempotency key excluded)",
                               base, registry=self.registry)
        self._db_retries = Counter("shop_db_retries", "database operations retried", [*base, "database", "reason"],
                                   registry=self.registry)
        self._dependency = Gauge("shop_dependency_up", "1 when a readiness dependency passed its last check",
                                 [*base, "dependency"], registry=self.registry)
        self._ready = Gauge("shop_ready", "1 when the service is ready", base, registry=self.registry)
        self._per_request: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        """A service-specific counter carrying the common labels first."""
        return Counter(name, doc, ["service", "region", *labels], registry=self.registry)

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, ["service", "region", *labels], registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self._per_request.get(key)
        if series is None:  # labels() takes a lock and builds its key each time: once per kind of request
            base = (self.service, self.region, method, route)
            series = self._per_request[key] = (self._requests.labels(*base, str(status)), self._latency.labels(*base),
                                               self._errors.labels(*base) if status >= 500 else None)
        requests, latency, errors = series
        requests.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()

    def order_created(self) -> None:
        self._orders.labels(self.service, self.region).inc()

    def db_retry(self, database: str, reason: str) -> None:
        self._db_retries.labels(self.service, self.region, database, reason).inc()

    def readiness(self, ready: bool, components: dict[str, bool]) -> None:
        self._ready.labels(self.service, self.region).set(1 if ready else 0)
        for name, up in components.items():
            self._dependency.labels(self.service, self.region, name).set(1 if up else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
