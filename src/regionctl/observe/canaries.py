"""Canaries: which pages each region checks, how one check is judged, and what a window of runs says.

Each region runs, every interval, a GET of every configured page on three targets (the reference's twelve
canaries per region): its own front (``lcl-rgnl-*``), the other region's front reached through the link
(``rmt-rgnl-*``) and the global entry users go through (``global-*``; the reference's ``global-cart`` wrongly
targeted the remote front). A run passes on a 2xx only: a redirect, an error status, a refused connection or a
timeout fails it, with a reason. Everything here is pure; ``observe/canary_runner.py`` does the I/O.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from regionctl.config import CanarySettings

KINDS = {"local": "lcl-rgnl", "remote": "rmt-rgnl", "global": "global"}


@dataclass(frozen=True)
class Canary:
    name: str  # e.g. "rmt-rgnl-cart": unique within the region that runs it
    region: str  # the region it runs from
    kind: str  # local | remote | global
    target: str  # the region whose front it checks, or "global"
    url: str


@dataclass(frozen=True)
class Targets:
    """Base URLs a region's canaries use: its own front, the other region's as reached through the link, and the
    global entry."""

    local: str
    remote: str
    remote_region: str
    global_entry: str


def plan(region: str, targets: Targets, pages: Sequence[str]) -> list[Canary]:
    """The canaries ``region`` runs: every page on each of the three targets."""
    bases = {"local": (targets.local, region), "remote": (targets.remote, targets.remote_region),
             "global": (targets.global_entry, "global")}
    return [Canary(name=f"{KINDS[kind]}-{CanarySettings.page_name(page)}", region=region, kind=kind, target=target,
                   url=base.rstrip("/") + page)
            for kind, (base, target) in bases.items() for page in pages]


@dataclass(frozen=True)
class Run:
    """One canary run: when it started (unix seconds), whether it passed, and why not."""

    at: float
    ok: bool
    duration_s: float
    status: int | None  # None: no response (refused, reset, timeout)
    reason: str


def judge(status: int | None, error: str | None, timeout_s: float) -> tuple[bool, str]:
    """A 2xx passes; anything else fails with a reason a person can act on."""
    if error is not None:
        return False, error
    if status is None:
        return False, f"no response within {timeout_s:g} s"
    if 200 <= status < 300:
        return True, ""
    if 300 <= status < 400:
        return False, f"redirected ({status}); a canary wants the page itself"
    return False, f"HTTP {status}"


@dataclass(frozen=True)
class Summary:
    """What a window of runs of one canary says (the reference dashboard's SuccessPercent, Failed, Duration)."""

    canary: Canary
    runs: int
    failed: int
    success_percent: float | None
    duration_p50_s: float | None
    duration_p90_s: float | None
    duration_max_s: float | None
    last: Run | None
    failing_since: float | None  # start of the current streak of failures

    @property
    def state(self) -> str:
        if self.last is None:
            return "pending"
        return "pass" if self.last.ok else "fail"


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Board:
    """The last ``window`` runs of each canary of one region, in order."""

    canaries: Sequence[Canary]
    window: int
    _runs: dict[str, deque[Run]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._runs = {c.name: deque(maxlen=self.window) for c in self.canaries}

    def record(self, name: str, run: Run) -> None:
        self._runs[name].append(run)

    def summaries(self) -> list[Summary]:
        return [self._summary(c, list(self._runs[c.name])) for c in self.canaries]

    @staticmethod
    def _summary(canary: Canary, runs: list[Run]) -> Summary:
        durations = sorted(r.duration_s for r in runs)
        failed = sum(1 for r in runs if not r.ok)
        failing_since = None
        for run in reversed(runs):
            if run.ok:
                break
            failing_since = run.at
        return Summary(
            canary=canary, runs=len(runs), failed=failed,
            success_percent=None if not runs else round(100.0 * (len(runs) - failed) / len(runs), 1),
            duration_p50_s=percentile(durations, 0.5), duration_p90_s=percentile(durations, 0.9),
            duration_max_s=durations[-1] if durations else None,
            last=runs[-1] if runs else None, failing_since=failing_since)


def by_state(summaries: Iterable[Summary]) -> Mapping[str, int]:
    counts = {"pass": 0, "fail": 0, "pending": 0}
    for summary in summaries:
        counts[summary.state] += 1
    return counts
