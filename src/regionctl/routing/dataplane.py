"""What a data-plane process (entry, DNS) knows: routing controls from its source, health from its own monitor,
combined into one ``RoutingView`` that is recomputed on every change and read per request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from regionctl.routing.health import HealthMonitor, HealthState
from regionctl.routing.metrics import PlaneMetrics
from regionctl.routing.source import ControlSource, KnownControls
from regionctl.routing.view import RoutingView, routing_view

log = logging.getLogger(__name__)


class DataPlane:
    def __init__(self, regions: Sequence[str], source: ControlSource, monitor: HealthMonitor,
                 metrics: PlaneMetrics) -> None:
        self.regions = tuple(regions)
        self.source = source
        self.monitor = monitor
        self.metrics = metrics
        self.view: RoutingView = self._compute()
        self.healthy: tuple[str, ...] = self.view.healthy
        self._controls: dict[str, bool] = dict(source.current().states or {})
        monitor.listener = self._on_health
        if hasattr(source, "listener"):
            source.listener = self._on_controls

    def _compute(self) -> RoutingView:
        known = self.source.current()
        return routing_view(self.regions, known.states, self.monitor.states, known.note)

    def refresh(self) -> None:
        view = self._compute()
        if view.healthy != self.healthy:
            log.warning("routing changed: %s", view.explain())
        self.view, self.healthy = view, view.healthy
        self.metrics.observe_routable({r.region: r.routable for r in view.regions})

    def _on_health(self, region: str, state: HealthState) -> None:
        self.metrics.observe_health(region, state)
        self.refresh()

    def _on_controls(self, known: KnownControls) -> None:
        self.metrics.observe_controls(known.states, known.source_up)
        before, self._controls = self._controls, dict(known.states or {})
        if before and self._controls != before:  # a routing change: the regions On now rise on their next pass
            self.monitor.expedite([r for r, on in self._controls.items() if on])
        self.refresh()

    async def run(self) -> None:
        await asyncio.gather(self.source.run(), self.monitor.run())

    def status(self) -> dict[str, Any]:
        known = self.source.current()
        return {
            "routing": self.view.explain(),
            "healthy": list(self.healthy),
            "controls": {k: "On" if v else "Off" for k, v in (known.states or {}).items()} or None,
            "controls_version": known.version,
            "controls_source_up": known.source_up,
            "controls_note": known.note,
            "regions": [
                {"region": r.region, "routable": r.routable, "degraded": r.degraded, "reason": r.reason,
                 "health": r.health.describe()}
                for r in self.view.regions
            ],
        }
