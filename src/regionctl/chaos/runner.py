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
    def observe(self, since: float) -> Observation:
        """Canary results of runs started at or after ``since`` (wall clock); older ones count as pending."""


@dataclass
class ExperimentResult:
    experiment: str
    started_at: float
    duration_s: float  # how long the faults were in place
    stopped_by: str  # "duration", a stop condition, "interrupted" or "error: ..."
    injected: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)
    revert_errors: list[str] = field(default_factory=list)
    most_failing: dict[str, int] = field(default_factory=dict)  # canary kind -> most failing at once
    observations: int = 0
    recovered_after_s: float | None = None  # from the last revert to every canary passing; None: not within limit

    @property
    def clean(self) -> bool:
        return (not self.revert_errors and self.recovered_after_s is not None
                and not self.stopped_by.startswith(("error", "interrupted")))


@dataclass
class Clock:
    now: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


def run(experiment: Experiment, faults: Faults, watcher: Watcher, poll_s: float = 1.0,
        recovery_timeout_s: float = 60.0, progress: Callable[[str], None] = lambda _: None,
        clock: Clock | None = None) -> ExperimentResult:
    """Never raises for what happens during the experiment: an error or Ctrl-C ends it (``stopped_by``), the
    faults are reverted, and the result says what was and was not."""
    clock = clock or Clock()
    result = ExperimentResult(experiment.name, clock.wall(), 0.0, "duration")
    injected: list[Fault] = []
    started = clock.now()
    try:
        for fault in experiment.faults:
            progress(f"injecting: {fault.describe()}")
            injected.append(fault)  # first: a fault half applied when inject fails is reverted too
            result.injected.append(faults.inject(fault))
        started, since = clock.now(), clock.wall()
        while clock.now() - started < experiment.duration_s:
            seen = _watch(watcher, result, since)
            reason = stop_reason(experiment.stop_conditions, seen)
            if reason is not None:
                result.stopped_by = f"stop condition: {reason}"
                break
            left = experiment.duration_s - (clock.now() - started)
            progress(f"{experiment.name}: {left:.0f} s left; failing canaries {dict(seen.failing or {})}")
            clock.sleep(min(poll_s, max(left, 0.0)))
    except KeyboardInterrupt:
        result.stopped_by = "interrupted"
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the faults come out and the result says why
        result.stopped_by = f"error: {exc}"
    finally:
        result.duration_s = round(clock.now() - started, 2) if injected else 0.0
        for fault in reversed(injected):
            progress(f"reverting: {fault.describe()}")
            try:
                result.reverted.append(faults.revert(fault))
            except BaseException as exc:  # noqa: BLE001 - even a second Ctrl-C: report it, revert the others
                result.revert_errors.append(f"{fault.kind}: {str(exc) or type(exc).__name__}")
    if not result.revert_errors and result.stopped_by != "interrupted":
        result.recovered_after_s = _recovery(watcher, result, poll_s, recovery_timeout_s, clock, progress)
    return result


def _watch(watcher: Watcher, result: ExperimentResult, since: float) -> Observation:
    seen = watcher.observe(since)
    result.observations += 1
    for kind, count in (seen.failing or {}).items():
        result.most_failing[kind] = max(count, result.most_failing.get(kind, 0))
    return seen


def _recovery(watcher: Watcher, result: ExperimentResult, poll_s: float, timeout_s: float, clock: Clock,
              progress: Callable[[str], None]) -> float | None:
    """Seconds until every canary has run since the revert and passed (and some region is routable), or None."""
    reverted, since = clock.now(), clock.wall()
    while clock.now() - reverted <= timeout_s:
        try:
            seen = _watch(watcher, result, since)
        except Exception:  # noqa: BLE001 - an unreadable moment is not a recovery; keep looking
            seen = Observation(at=clock.wall(), failing=None, routable=None)
        if seen.failing is not None and not any(seen.failing.values()) and not seen.pending and seen.routable:
            return round(clock.now() - reverted, 2)
        progress(f"waiting for the canaries to pass again ({clock.now() - reverted:.0f} s)")
        clock.sleep(poll_s)
    return None
