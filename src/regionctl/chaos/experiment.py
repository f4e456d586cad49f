"""Chaos experiments: which faults to inject, for how long, and what stops them early. Pure data and decisions.

The built-in ``cross-region-connectivity`` is the reference's FIS scenario (cut the regions apart and pause the
replication of the carts table) made to work: its FIS template targeted a transit gateway and S3 replication that
did not exist and had no stop condition. Here every experiment stops early when users would notice (no region
receives traffic, or the canaries that go through the global entry fail), and always reverts what it injected.
``region-isolation`` goes further than the reference could: it cuts one region off from the other region and
from the global plane (the control path), as a region that loses its network would be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from regionctl.errors import InputError

FAULT_KINDS = ("link-partition", "link-latency", "link-isolate", "store-pause")


@dataclass(frozen=True)
class Fault:
    kind: str  # one of FAULT_KINDS
    latency_ms: float | None = None  # link-latency only
    region: str | None = None  # link-isolate only: the region cut off; None: the deployment's primary region

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise InputError(f"unknown fault kind {self.kind!r}; there are {', '.join(FAULT_KINDS)}")
        if (self.kind == "link-latency") != (self.latency_ms is not None):
            raise InputError("latency_ms goes with link-latency, and only with it")
        if self.region is not None and self.kind != "link-isolate":
            raise InputError("region goes with link-isolate, and only with it")

    def describe(self) -> str:
        if self.kind == "link-latency":
            return f"add {self.latency_ms:g} ms of one-way latency to the link"
        if self.kind == "link-partition":
            return "cut the link between the regions (both directions)"
        if self.kind == "link-isolate":
            return (f"isolate {self.region or 'the primary region'}: cut it off from the other region and the "
                    "global plane (every direction to and from it)")
        return "pause regional store replication (both directions)"


@dataclass(frozen=True)
class StopCondition:
    """``kind``: ``no-routable-region``, or ``canaries-failing`` (``count`` or more canaries of ``canary_kind``
    failing across the regions)."""

    kind: str
    canary_kind: str | None = None
    count: int = 1

    def describe(self) -> str:
        if self.kind == "no-routable-region":
            return "no region receives traffic"
        return f"{self.count} or more {self.canary_kind} canaries fail"


@dataclass(frozen=True)
class Observation:
    """What the experiment sees at one moment; ``None`` where a part could not be read."""

    at: float
    failing: Mapping[str, int] | None  # canary kind -> canaries failing in a run since the moment asked about
    routable: Sequence[str] | None  # regions receiving traffic
    pending: int = 0  # canaries with no run since that moment (their last result predates it)


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    faults: tuple[Fault, ...]
    duration_s: float
    stop_conditions: tuple[StopCondition, ...] = field(default=())

    def with_duration(self, duration_s: float | None) -> Experiment:
        if duration_s is None:
            return self
        if not 1 <= duration_s <= 24 * 3600:
            raise InputError(f"--duration must be between 1 and 86400 seconds, not {duration_s:g}")
        return replace(self, duration_s=duration_s)


USERS_AFFECTED = (StopCondition("no-routable-region"), StopCondition("canaries-failing", "global", 1))

EXPERIMENTS = {
    e.name: e for e in (
        Experiment("cross-region-connectivity",
                   "the reference's FIS scenario: the regions cannot reach each other and the regional store does "
                   "not replicate; users must keep being served by each region on its own",
                   (Fault("link-partition"), Fault("store-pause")), 120.0, USERS_AFFECTED),
        Experiment("slow-link", "300 ms one-way between the regions: replication lags, standby writes slow down",
                   (Fault("link-latency", latency_ms=300.0),), 120.0, USERS_AFFECTED),
        Experiment("store-replication-pause", "carts and checkout state stop replicating; both regions keep "
                   "taking writes, which replicate (last writer wins) once resumed",
                   (Fault("store-pause"),), 120.0, USERS_AFFECTED),
        Experiment("region-isolation", "the primary region loses its network: nothing that crosses the link "
                   "reaches it or leaves it (replication, cross-region writes and the global plane's control "
                   "path are cut), while its own services still reach each other",
                   (Fault("link-isolate"),), 120.0, USERS_AFFECTED),
    )
}


def experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise InputError(f"no experiment named {name!r}; there are {', '.join(sorted(EXPERIMENTS))}") from None


def stop_reason(conditions: Sequence[StopCondition], seen: Observation) -> str | None:
    """The first condition the observation meets, described; unread parts never stop an experiment."""
    for condition in conditions:
        if condition.kind == "no-routable-region" and seen.routable is not None and not seen.routable:
            return condition.describe()
        failing = None if seen.failing is None else seen.failing.get(condition.canary_kind or "", 0)
        if condition.kind == "canaries-failing" and failing is not None and failing >= condition.count:
            return condition.describe()
    return None
