"""Running an experiment: inject its faults, watch until it ends or a stop condition fires, revert everything,
then measure how long the canaries take to pass again.

Reverting is not optional: it runs whatever happened (an injection that failed, a reading that raised, Ctrl-C),
in reverse order, and each revert that fails is reported, never hidden. The faults and the watching sit behind
two small protocols so the sequencing is unit-tested without a deployment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from regionctl.chaos.experiment import Experiment, Fault, Observation, stop_reason


class Faults(Protocol):
    def inject(self, fault: Fault) -> str: ...
    def revert(self, fault: Fault) -> str: ...


class Watcher(Protocol):
    def observe(self) -> Observation: ...


@dataclass
class ExperimentResult:
    experiment: str
    started_at: float
    duration_s: float  # how long the faults were in place
    stopped_by: str  # "duration", a stop condition, or "error: ..."
    injected: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)
    revert_errors: list[str] = field(default_factory=list)
    most_failing: dict[str, int] = field(default_factory=dict)  # canary kind -> most failing at once
    observations: int = 0
    recovered_after_s: float | None = None  # from the last revert to every canary passing; None: not within limit

    @property
    def clean(self) -> bool:
        return not self.revert_errors and self.recovered_after_s is not None


@dataclass
class Clock:
    now: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


def run(experiment: Experiment, faults: Faults, watcher: Watcher, poll_s: float = 1.0,
        recovery_timeout_s: float = 60.0, progress: Callable[[str], None] = lambda _: None,
        clock: Clock | None = None) -> ExperimentResult:
    clock = clock or Clock()
    result = ExperimentResult(experiment.name, clock.wall(), 0.0, "duration")
    injected: list[Fault] = []
    started = clock.now()
    try:
        for fault in experiment.faults:
            progress(f"injecting: {fault.describe()}")
            result.injected.append(faults.inject(fault))
            injected.append(fault)
        started = clock.now()
        while clock.now() - started < experiment.duration_s:
            seen = _watch(watcher, result)
            reason = stop_reason(experiment.stop_conditions, seen)
            if reason is not None:
                result.stopped_by = f"stop condition: {reason}"
                break
            left = experiment.duration_s - (clock.now() - started)
            progress(f"{experiment.name}: {left:.0f} s left; failing canaries {dict(seen.failing or {})}")
            clock.sleep(min(poll_s, max(left, 0.0)))
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the faults come out first
        result.stopped_by = f"error: {exc}"
        raise
    finally:
        result.duration_s = round(clock.now() - started, 2) if injected else 0.0
        for fault in reversed(injected):
            progress(f"reverting: {fault.describe()}")
            try:
                result.reverted.append(faults.revert(fault))
            except Exception as exc:  # noqa: BLE001 - report every failed revert, try the others
                result.revert_errors.append(f"{fault.kind}: {exc}")
    if not result.revert_errors:
        result.recovered_after_s = _recovery(watcher, result, poll_s, recovery_timeout_s, clock, progress)
    return result


def _watch(watcher: Watcher, result: ExperimentResult) -> Observation:
    seen = watcher.observe()
    result.observations += 1
    for kind, count in (seen.failing or {}).items():
        result.most_failing[kind] = max(count, result.most_failing.get(kind, 0))
    return seen


def _recovery(watcher: Watcher, result: ExperimentResult, poll_s: float, timeout_s: float, clock: Clock,
              progress: Callable[[str], None]) -> float | None:
    """Seconds until a reading shows every canary passing (and some region routable), or None after timeout."""
    reverted = clock.now()
    while clock.now() - reverted <= timeout_s:
        seen = _watch(watcher, result)
        if seen.failing is not None and not any(seen.failing.values()) and seen.routable:
            return round(clock.now() - reverted, 2)
        progress(f"waiting for the canaries to pass again ({clock.now() - reverted:.0f} s)")
        clock.sleep(poll_s)
    return None
