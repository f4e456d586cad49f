"""The faults and the watcher of a running local deployment: the link emulator, the regional store's pause
flags, and each region's canaries and the routing plane as the console reads them."""

from __future__ import annotations

import time
from collections import Counter

from regionctl.chaos.experiment import Fault, Observation
from regionctl.config import Settings
from regionctl.errors import InputError
from regionctl.observe.overview import LiveSources, read_part
from regionctl.regionalstore import control, endpoints
from regionctl.runtime.link import link_client

PAUSE_REASON = "chaos experiment"


class LiveFaults:
    """Each fault's inject and revert; a revert puts back what inject found (the link's latency, for one)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._latency_before: dict[tuple[str, str], float] = {}

    def inject(self, fault: Fault) -> str:
        if fault.kind == "link-partition":
            with link_client(self.settings) as link:
                link.partition("both")
            return "link partitioned (both directions)"
        if fault.kind == "link-latency":
            with link_client(self.settings) as link:
                self._latency_before = {(d.src, d.dst): d.latency_ms for d in link.status().directions}
                link.set("both", latency_ms=fault.latency_ms)
            return f"link latency {fault.latency_ms:g} ms (was {sorted(set(self._latency_before.values()))} ms)"
        if fault.kind == "store-pause":
            return "; ".join(control.pause(endpoints.dsn(self.settings, d.source), d, PAUSE_REASON).reason
                             for d in self._directions())
        raise InputError(f"unknown fault kind {fault.kind!r}")

    def revert(self, fault: Fault) -> str:
        if fault.kind == "link-partition":
            with link_client(self.settings) as link:
                link.heal("both")
            return "link healed"
        if fault.kind == "link-latency":
            with link_client(self.settings) as link:
                for (src, dst), latency in self._latency_before.items():
                    link.set(f"{src}->{dst}", latency_ms=latency)
            return "link latency restored"
        if fault.kind == "store-pause":
            return "; ".join(control.resume(endpoints.dsn(self.settings, d.source), d).reason
                             for d in self._directions())
        raise InputError(f"unknown fault kind {fault.kind!r}")

    def _directions(self) -> list[control.Direction]:
        a, b = self.settings.regions
        return [control.Direction(a, b), control.Direction(b, a)]


class LiveWatcher:
    """Failing canaries by kind across both regions, and the regions receiving traffic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sources = LiveSources(settings)

    def observe(self) -> Observation:
        failing: Counter[str] | None = Counter()
        for region in self.settings.regions:
            part = read_part(lambda region=region: self.sources.canaries(region))  # type: ignore[misc]
            if not part.ok or failing is None:
                failing = None
                continue
            failing.update(c["kind"] for c in part.data["canaries"] if c["state"] == "fail")
        routing = read_part(self.sources.routing)
        routable = [r["region"] for r in routing.data["regions"] if r["routable"]] if routing.ok else None
        counts = None if failing is None else {kind: failing.get(kind, 0) for kind in ("local", "remote", "global")}
        return Observation(at=time.time(), failing=counts, routable=routable)

