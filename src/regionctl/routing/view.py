"""Which regions may receive traffic: a pure judgement from routing-control states and endpoint health.

A region is routable when its routing control is On and its endpoint health check passes (Route 53's
RECOVERY_CONTROL health check combined with an endpoint check). Unknown counts as not routable: we never fail open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from regionctl.routing.health import HealthState


@dataclass(frozen=True)
class RegionView:
    region: str
    control_on: bool | None
    health: HealthState
    routable: bool
    reason: str


@dataclass(frozen=True)
class RoutingView:
    regions: tuple[RegionView, ...]

    @property
    def healthy(self) -> tuple[str, ...]:
        return tuple(r.region for r in self.regions if r.routable)

    def explain(self) -> str:
        """One line for operators and for the 503 page / DNS extended error."""
        if self.healthy:
            return f"routing to {', '.join(self.healthy)}"
        return "no healthy region: " + "; ".join(f"{r.region}: {r.reason}" for r in self.regions)


def region_view(region: str, control_on: bool | None, health: HealthState, controls_note: str) -> RegionView:
    if control_on is None:
        return RegionView(region, None, health, False, f"routing control state unknown ({controls_note})")
    if not control_on:
        return RegionView(region, False, health, False, "routing control Off")
    if not health.healthy:
        return RegionView(region, True, health, False, health.describe())
    return RegionView(region, True, health, True, "routing control On and health check passing")


def routing_view(
    regions: Sequence[str],
    controls: Mapping[str, bool] | None,
    health: Mapping[str, HealthState],
    controls_note: str = "no state read from the control API yet",
) -> RoutingView:
    """``controls`` None means the control states are not known at all (never read, nothing persisted)."""
    return RoutingView(tuple(
        region_view(region, None if controls is None else controls.get(region), health.get(region, HealthState()),
                    controls_note)
        for region in regions
    ))
