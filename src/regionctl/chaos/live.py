"""The faults and the watcher of a running local deployment: the link emulator, the regional store's pause
flags, and each region's canaries and the routing plane as the console reads them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from regionctl.chaos.experiment import Fault, Observation
from regionctl.config import Settings
from regionctl.errors import InputError
from regionctl.observe.overview import LiveSources, read_part
from regionctl.regionalstore import control, endpoints
from regionctl.runtime.link import LinkStatus, link_client

PAUSE_REASON = "chaos experiment"


class Link(Protocol):
    """What the faults need of the link emulator (``LinkClient``; an in-process engine in unit tests)."""

    def __enter__(self) -> Link: ...
    def __exit__(self, *exc: object) -> None: ...
    def status(self) -> LinkStatus: ...
    def set(self, direction: str, latency_ms: float | None = None, jitter_ms: float | None = None) -> LinkStatus: ...
    def partition(self, direction: str = "both", reset: bool = False) -> LinkStatus: ...
    def isolate(self, region: str, reset: bool = False) -> LinkStatus: ...
    def heal(self, direction: str = "both") -> LinkStatus: ...


class LiveFaults:
    """Each fault's inject and revert. A revert undoes only what its inject changed: a direction already
    partitioned or paused before the experiment stays so, and the link's latency goes back to what it was.
    The link faults between the regions (partition, latency) leave the control path alone; link-isolate cuts
    the target region's control path too."""

    def __init__(self, settings: Settings, links: Callable[[], Link] | None = None) -> None:
        self.settings = settings
        self._links: Callable[[], Link] = links or (lambda: link_client(settings))
        self._latency_before: dict[str, float] = {}
        self._partitioned: list[str] = []
        self._isolated: list[str] = []
        self._paused: list[control.Direction] = []

    def inject(self, fault: Fault) -> str:
        if fault.kind == "link-partition":
            with self._links() as link:
                cut = [d.name for d in link.status().directions if not d.control_path and not d.partitioned]
                for pair in cut:
                    link.partition(pair)
                    self._partitioned.append(pair)
            return f"link partitioned ({', '.join(cut) or 'it already was'})"
        if fault.kind == "link-latency":
            with self._links() as link:
                self._latency_before = {d.name: d.latency_ms for d in link.status().directions if not d.control_path}
                link.set("both", latency_ms=fault.latency_ms)
            return f"link latency {fault.latency_ms:g} ms (was {sorted(set(self._latency_before.values()))} ms)"
        if fault.kind == "link-isolate":
            return self._isolate(fault.region or self.settings.primary_region)
        if fault.kind == "store-pause":
            reasons = []
            for direction in self._directions():
                change = control.pause(endpoints.dsn(self.settings, direction.source), direction, PAUSE_REASON)
                if change.changed:
                    self._paused.append(direction)
                reasons.append(change.reason)
            return "; ".join(reasons)
        raise InputError(f"unknown fault kind {fault.kind!r}")

    def revert(self, fault: Fault) -> str:
        if fault.kind == "link-partition":
            with self._links() as link:
                while self._partitioned:
                    link.heal(self._partitioned[-1])
                    self._partitioned.pop()
            return "link healed"
        if fault.kind == "link-latency":
            with self._links() as link:
                for pair, latency in self._latency_before.items():
                    link.set(pair, latency_ms=latency)
            return "link latency restored"
        if fault.kind == "link-isolate":
            healed = list(self._isolated)
            with self._links() as link:
                while self._isolated:
                    link.heal(self._isolated[-1])
                    self._isolated.pop()
            return f"link healed ({', '.join(healed) or 'nothing was cut'})"
        if fault.kind == "store-pause":
            reasons = []
            while self._paused:
                direction = self._paused[-1]
                reasons.append(control.resume(endpoints.dsn(self.settings, direction.source), direction).reason)
                self._paused.pop()
            return "; ".join(reasons) or "nothing to resume"
        raise InputError(f"unknown fault kind {fault.kind!r}")

    def _isolate(self, region: str) -> str:
        """Isolate ``region``, remembering first the directions this cuts (those not partitioned already), so
        the revert heals exactly them even when the answer to the isolate is lost."""
        self.settings.require_region(region)
        with self._links() as link:
            cut = [d.name for d in link.status().directions if region in (d.src, d.dst) and not d.partitioned]
            self._isolated.extend(cut)
            link.isolate(region)
        return f"{region} isolated ({', '.join(cut) or 'it already was'})"

    def _directions(self) -> list[control.Direction]:
        a, b = self.settings.regions
        return [control.Direction(a, b), control.Direction(b, a)]


class LiveWatcher:
    """Canaries failing by kind across both regions (runs since a moment only), and the regions receiving
    traffic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sources = LiveSources(settings)

    def observe(self, since: float) -> Observation:
        parts = [read_part(lambda region=region: self.sources.canaries(region))  # type: ignore[misc]
                 for region in self.settings.regions]
        failing: dict[str, int] | None = None
        pending = 0
        if all(part.ok for part in parts):  # a region's canaries unread: failing unknown, never zero
            failing = {"local": 0, "remote": 0, "global": 0}
            for canary in (c for part in parts for c in part.data["canaries"]):
                last = canary.get("last")
                if last is None or last["at"] < since:
                    pending += 1
                elif not last["ok"]:
                    failing[canary["kind"]] += 1
        routing = read_part(self.sources.routing)
        routable = [r["region"] for r in routing.data["regions"] if r["routable"]] if routing.ok else None
        return Observation(at=time.time(), failing=failing, routable=routable, pending=pending)
