"""Prometheus metrics of the global plane: control states, health check results, traffic per region.

Each process builds its own registry (tests run several apps in one interpreter; the default registry would refuse
duplicate names).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from regionctl.routing.health import HealthState

__all__ = ["CONTENT_TYPE_LATEST", "PlaneMetrics", "render"]


class PlaneMetrics:
    """The metrics every global-plane process may report; each process fills the ones it knows."""

    def __init__(self, component: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"component": component}
        self.control_state = Gauge(
            "regionctl_routing_control_on", "1 when the routing control is On, 0 when Off, as this process sees it",
            ["control"], registry=self.registry)
        self.control_source_up = Gauge(
            "regionctl_routing_control_source_up", "1 when the last read of routing controls succeeded",
            registry=self.registry)
        self.health_healthy = Gauge(
            "regionctl_routing_health_check_healthy", "1 when the region's endpoint health check passes",
            ["region"], registry=self.registry)
        self.health_checks = Counter(
            "regionctl_routing_health_checks_total", "endpoint health check results", ["region", "result"],
            registry=self.registry)
        self.region_routable = Gauge(
            "regionctl_routing_region_routable", "1 when the region receives traffic (control On and healthy)",
            ["region"], registry=self.registry)
        self.changes = Counter(
            "regionctl_routing_changes_total", "routing control change requests by outcome", ["outcome"],
            registry=self.registry)
        self.entry_requests = Counter(
            "regionctl_entry_requests_total", "requests through the global entry point by region and status class",
            ["region", "status"], registry=self.registry)
        self.dns_queries = Counter(
            "regionctl_dns_queries_total", "DNS queries answered, by response code", ["rcode"],
            registry=self.registry)
        self.dns_answers = Counter(
            "regionctl_dns_answers_total", "addresses handed out for the shop's name, by region", ["region"],
            registry=self.registry)
        self.info = Gauge("regionctl_routing_process_info", "which global-plane component this is",
                          list(labels), registry=self.registry)
        self.info.labels(**labels).set(1)

    def observe_health(self, region: str, state: HealthState) -> None:
        self.health_checks.labels(region, "pass" if state.last_ok else "fail").inc()
        self.health_healthy.labels(region).set(1 if state.healthy else 0)

    def observe_controls(self, controls: Mapping[str, bool] | None, source_up: bool) -> None:
        self.control_source_up.set(1 if source_up else 0)
        for name, on in (controls or {}).items():
            self.control_state.labels(name).set(1 if on else 0)

    def observe_routable(self, routable: Mapping[str, bool]) -> None:
        for region, ok in routable.items():
            self.region_routable.labels(region).set(1 if ok else 0)


def render(metrics: PlaneMetrics) -> bytes:
    return generate_latest(metrics.registry)
