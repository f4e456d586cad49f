"""Whether a region's application can take users: its endpoint's Route 53 health check and its ECS services.

Each is checked only where the settings name it (the reference has no endpoint health check at all: its ARC
health checks only mirror the routing controls). A check that cannot be read counts as not ready, with why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from regionctl.config import AwsSettings
from regionctl.providers.aws.clients import ClientFactory, describe

ROUTE53_REGION = "us-east-1"  # Route 53 is a global service signed in us-east-1


@dataclass(frozen=True)
class Finding:
    what: str
    ok: bool
    reason: str


class RegionReadiness:
    """``readiness(region) -> bool`` for ``ArcRouting.healthy``, and the findings behind it."""

    def __init__(self, aws: AwsSettings, factory: ClientFactory) -> None:
        self.aws = aws
        self.factory = factory

    def __call__(self, region: str) -> bool:
        return all(f.ok for f in self.findings(region))

    def findings(self, region: str) -> list[Finding]:
        where = self.aws.regions[region]
        found = []
        if where.health_check_id:
            found.append(self._health_check(region, where.health_check_id))
        if where.ecs_cluster and where.ecs_services:
            found.extend(self._services(region, where.ecs_cluster, where.ecs_services))
        return found

    def _health_check(self, region: str, check_id: str) -> Finding:
        what = f"health check {check_id} ({region})"
        try:
            answer = self.factory("route53", ROUTE53_REGION).get_health_check_status(HealthCheckId=check_id)
        except Exception as exc:
            return Finding(what, False, f"cannot be read: {describe(exc)}")
        observations = answer.get("HealthCheckObservations", [])
        passing = sum(1 for o in observations if str(o.get("StatusReport", {}).get("Status", "")).startswith("Success"))
        if not observations:
            return Finding(what, False, "no checker has reported")
        ok = passing * 2 > len(observations)  # Route 53 considers an endpoint healthy when most checkers agree
        return Finding(what, ok, f"{passing} of {len(observations)} checkers report success")

    def _services(self, region: str, cluster: str, services: tuple[str, ...]) -> list[Finding]:
        try:
            answer: dict[str, Any] = self.factory("ecs", region).describe_services(cluster=cluster,
                                                                                  services=list(services))
        except Exception as exc:
            return [Finding(f"ECS services in {cluster} ({region})", False, f"cannot be read: {describe(exc)}")]
        found = [Finding(f"ECS service {f.get('arn', '?').rsplit('/', 1)[-1]} ({region})", False,
                         f"missing: {f.get('reason', 'unknown')}") for f in answer.get("failures", [])]
        for service in answer.get("services", []):
            what = f"ECS service {service['serviceName']} ({region})"
            desired, running = int(service.get("desiredCount", 0)), int(service.get("runningCount", 0))
            if service.get("status") != "ACTIVE":
                found.append(Finding(what, False, f"status {service.get('status')}"))
            elif desired == 0:
                found.append(Finding(what, False, "scaled to 0 tasks"))
            else:
                found.append(Finding(what, running >= desired, f"{running} of {desired} tasks running"))
        return found
