"""Which regions may receive traffic: a pure judgement from routing-control states and endpoint health.

A region is routable when its routing control is On and its endpoint health check passes (Route 53's
RECOVERY_CONTROL health check combined with an endpoint check). Unknown counts as not routable: we never fail open.
Traffic goes to the routable regions that are not degraded, or to every routable one when all are degraded: a
degraded region (its services up, something further away missing) is never dropped for lack of a better one.
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

    @property
    def degraded(self) -> bool:
        return self.routable and self.health.degraded


@dataclass(frozen=True)
class RoutingView:
    regions: tuple[RegionView, ...]

    @property
    def healthy(self) -> tuple[str, ...]:
        """The regions that receive traffic, in routing order: the routable ones not degraded, else all routable."""
        routable = [r for r in self.regions if r.routable]
        preferred = [r for r in routable if not r.degraded]
        return tuple(r.region for r in (preferred or routable))

    def explain(self) -> str:
        """One line for operators and for the 503 page / DNS extended error."""
        if self.healthy:
            spared = [r.region for r in self.regions if r.degraded and r.region not in self.healthy]
            degraded = [r for r in self.regions if r.degraded and r.region in self.healthy]
            text = f"routing to {', '.join(self.healthy)}"
            if degraded:
                text += " (degraded: " + "; ".join(f"{r.region}: {r.health.last_detail}" for r in degraded) + ")"
            if spared:
                text += f"; {', '.join(spared)} degraded, spared while another region is not"
            return text
        return "no healthy region: " + "; ".join(f"{r.region}: {r.reason}" for r in self.regions)


def region_view(region: str, control_on: bool | None, health: HealthState, controls_note: str) -> RegionView:
    if control_on is None:
        return RegionView(region, None, health, False, f"routing control state unknown ({controls_note})")
    if not control_on:
        return RegionView(region, False, health, False, "routing control Off")
    if not health.healthy:
        return RegionView(region, True, health, False, health.describe())
    if health.degraded:
        return RegionView(region, True, health, True, f"routing control On, health check passing but degraded "
                                                      f"({health.last_detail})")
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
