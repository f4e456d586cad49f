"""Routing controls on Route 53 ARC: the runbooks' ``Routing`` port over a cluster's data plane.

ARC asks clients to try the cluster's regional endpoints in turn (any one answers for the whole cluster), so every
read and change does. A read that no endpoint answers is reported as unreachable, never guessed (static stability:
the states stay what they were, and a runbook waits or fails rather than act on a guess).

Our safety rule (at least one region On) is checked first, on the states ARC reports, so a refusal says why before
anything is sent; ARC's own rules (wait periods, gating) are ARC's to enforce, and overridden by name through
``aws.safety_rules``. Several controls change in one ``UpdateRoutingControlStates`` call: one transaction, as the
local control panel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from regionctl.config import ARC_ENDPOINT_REGIONS, AwsSettings, Settings
from regionctl.errors import ConflictError, InputError, Unreachable
from regionctl.providers.aws.clients import ClientFactory, describe, error_code, translate, unreachable
from regionctl.routing.model import (
    AT_LEAST_ONE_REGION_RULE,
    ChangeRequest,
    Panel,
    PanelSpec,
    RuleConfig,
    RuleKind,
    RuleType,
    SafetyRule,
    new_panel,
)
from regionctl.routing.rules import evaluate
from regionctl.runbooks.ports import OFF, ON

T = TypeVar("T")
CONTROL_PLANE_REGION = "us-west-2"  # ARC's control-plane API (DescribeCluster) is served from there only
REFUSAL_CODES = frozenset({"ConflictException", "ValidationException"})


class ArcRouting:
    """``Routing`` over ARC (and, for ``healthy``, Route 53 health checks and ECS services)."""

    def __init__(self, settings: Settings, factory: ClientFactory, readiness: Callable[[str], bool] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if settings.aws is None:
            raise InputError("provider 'aws' needs [aws] settings")
        self.aws: AwsSettings = settings.aws
        self.regions = settings.regions
        self.factory = factory
        self.readiness = readiness or (lambda region: True)
        self.clock = clock
        self._endpoints: list[tuple[str, str]] | None = None

    # --- endpoints ------------------------------------------------------------------------------------------

    def endpoints(self) -> list[tuple[str, str]]:
        """(region, URL) of the cluster's endpoints in the order tried: as configured, else as DescribeCluster
        lists them, in ARC's region order (the reference's ArcClusterEndpoints)."""
        if self._endpoints is None:
            if self.aws.arc_endpoints:
                self._endpoints = list(self.aws.arc_endpoints.items())
            else:
                self._endpoints = self._described_endpoints()
        return self._endpoints

    def _described_endpoints(self) -> list[tuple[str, str]]:
        client = self.factory("route53-recovery-control-config", CONTROL_PLANE_REGION)
        try:
            cluster = client.describe_cluster(ClusterArn=self.aws.arc_cluster_arn)["Cluster"]
        except Exception as exc:
            raise translate(exc, f"reading the endpoints of ARC cluster {self.aws.arc_cluster_arn}") from None
        found = {e["Region"]: e["Endpoint"] for e in cluster.get("ClusterEndpoints", [])}
        order = [r for r in ARC_ENDPOINT_REGIONS if r in found] + sorted(set(found) - set(ARC_ENDPOINT_REGIONS))
        if not order:
            raise Unreachable(f"ARC cluster {self.aws.arc_cluster_arn} lists no endpoints")
        return [(region, found[region]) for region in order]

    def on_any_endpoint(self, what: str, call: Callable[[Any], T], refusals: frozenset[str] = frozenset()) -> T:
        """``call(client)`` on the first endpoint that answers (the last one that did is tried first). An
        endpoint that does not answer (timeout, connection refused, temporarily unavailable) is skipped; an answer,
        even a refusal, is final: an error code in ``refusals`` is a ConflictError, any other the platform's error
        for it. A change sent again after a timeout is harmless: it sets states, it does not flip them."""
        misses = []
        for region, url in list(self.endpoints()):
            client = self.factory("route53-recovery-cluster", region, url, attempts=1)
            try:
                answer = call(client)
            except Exception as exc:
                if unreachable(exc):
                    misses.append(f"{region}: {describe(exc)}")
                    continue
                if error_code(exc) in refusals:
                    raise ConflictError(f"{what}: ARC refused: {describe(exc)}") from None
                raise translate(exc, what) from None
            self._prefer((region, url))
            return answer
        raise Unreachable(f"{what}: no ARC cluster endpoint answered ({'; '.join(misses)})")

    def _prefer(self, endpoint: tuple[str, str]) -> None:
        """The endpoint that answered is tried first next time: a dead one costs a timeout once, not per call."""
        endpoints = self.endpoints()
        endpoints.remove(endpoint)
        endpoints.insert(0, endpoint)

    # --- the Routing port -----------------------------------------------------------------------------------

    def states(self) -> Mapping[str, str]:
        """Region -> On/Off, each read from ARC (Unreachable when no endpoint answers: never guessed)."""
        return {region: self._state(region) for region in self.regions}

    def _state(self, region: str) -> str:
        arn = self.aws.regions[region].routing_control_arn
        answer = self.on_any_endpoint(f"reading the routing control of {region}",
                                      lambda c: c.get_routing_control_state(RoutingControlArn=arn))
        state = str(answer["RoutingControlState"])
        if state not in (ON, OFF):
            raise Unreachable(f"ARC answered {state!r} for the routing control of {region}")
        return state

    def healthy(self, region: str) -> bool:
        """The control On and the region ready (its endpoint health check and ECS services, where configured)."""
        return self._state(region) == ON and self.readiness(region)

    def set_states(self, changes: Mapping[str, str], overrides: Sequence[str], actor: str, reason: str) -> Any:
        wanted = self._checked_changes(changes)
        ours, theirs = self._split_overrides(overrides)
        before = {region: state == ON for region, state in self.states().items()}
        decision = evaluate(self._panel(before), ChangeRequest(wanted, frozenset(ours), actor, reason), self.clock())
        result: dict[str, Any] = {"changed": list(decision.changed), "before": _text(decision.before),
                                  "after": _text(decision.after), "reason": decision.reason, "actor": actor,
                                  "arc_rules_overridden": sorted(theirs)}
        if not decision.allowed:
            raise ConflictError(decision.reason)
        if not decision.changed:
            return {**result, "sent": False}
        entries = [{"RoutingControlArn": self.aws.regions[r].routing_control_arn,
                    "RoutingControlState": ON if wanted[r] else OFF} for r in decision.changed]
        arns = [self.aws.safety_rules[name] for name in sorted(theirs)]
        self.on_any_endpoint(f"setting {_states_text(decision.after)}", lambda c: c.update_routing_control_states(
            UpdateRoutingControlStateEntries=entries, SafetyRulesToOverride=arns), refusals=REFUSAL_CODES)
        return {**result, "sent": True}

    def _checked_changes(self, changes: Mapping[str, str]) -> dict[str, bool]:
        if not changes:
            raise InputError("the change names no routing control")
        wanted = {}
        for region, state in changes.items():
            if region not in self.regions:
                raise InputError(f"unknown routing control {region!r}; controls are {', '.join(self.regions)}")
            if state not in (ON, OFF):
                raise InputError(f"state {state!r} of {region} is neither On nor Off")
            wanted[region] = state == ON
        return wanted

    def _split_overrides(self, overrides: Sequence[str]) -> tuple[set[str], set[str]]:
        ours, theirs = set(), set()
        for name in overrides:
            if name == AT_LEAST_ONE_REGION_RULE:
                ours.add(name)
            elif name in self.aws.safety_rules:
                theirs.add(name)
            else:
                known = sorted({AT_LEAST_ONE_REGION_RULE, *self.aws.safety_rules})
                raise InputError(f"cannot override unknown rule {name!r}; rules are {', '.join(known)}")
        return ours, theirs

    def _panel(self, states: Mapping[str, bool]) -> Panel:
        """Our rule over ARC's states; no wait period (ARC's rules carry those, and ARC knows when it last
        changed a control; we do not)."""
        rule = SafetyRule(name=AT_LEAST_ONE_REGION_RULE, kind=RuleKind.ASSERTION, watched=tuple(self.regions),
                          config=RuleConfig(RuleType.ATLEAST, threshold=1), wait_period_s=0.0)
        return new_panel(PanelSpec(controls=dict(states), rules=(rule,)))


def _text(states: Mapping[str, bool]) -> dict[str, str]:
    return {region: ON if on else OFF for region, on in states.items()}


def _states_text(states: Mapping[str, bool]) -> str:
    return ", ".join(f"{region} {ON if on else OFF}" for region, on in states.items())
