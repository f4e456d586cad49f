"""Hybrid logical clock: wall-clock milliseconds in the high bits, a logical counter in the low 16.

An HLC timestamp stays close to real time (so "last writer wins" means what an operator expects) yet never goes
backwards and always moves past every timestamp it has seen, so a write that follows another one (here, or after
reading a version replicated from the other region) always carries a larger timestamp.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

LOGICAL_BITS = 16
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1


def pack(physical_ms: int, logical: int = 0) -> int:
    if physical_ms < 0 or not 0 <= logical <= LOGICAL_MASK:
        raise ValueError(f"invalid HLC parts: physical_ms={physical_ms}, logical={logical}")
    return (physical_ms << LOGICAL_BITS) | logical


def physical_ms(hlc: int) -> int:
    return hlc >> LOGICAL_BITS


def logical(hlc: int) -> int:
    return hlc & LOGICAL_MASK


def tick(last: int, wall_ms: int) -> int:
    """The timestamp of a new local event: after ``last``, and never behind the wall clock.

    When more than 65,535 events share one millisecond the counter carries into the physical part: the clock runs
    a millisecond ahead of the wall for a moment instead of ever repeating or going back.
    """
    return max(last + 1, pack(max(wall_ms, 0)))


def observe(last: int, received: int) -> int:
    """The clock state after seeing ``received``: the next ``tick`` is then larger than it."""
    return max(last, received)


def to_datetime(hlc: int) -> datetime:
    return datetime.fromtimestamp(physical_ms(hlc) / 1000, tz=UTC)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class HybridClock:
    """A thread-safe HLC for one process; ``wall`` is injectable so tests can skew or freeze time."""

    def __init__(self, wall: Callable[[], int] = wall_ms, last: int = 0) -> None:
        self._wall = wall
        self._last = last
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            self._last = tick(self._last, self._wall())
            return self._last

    def observe(self, received: int) -> None:
        with self._lock:
            self._last = observe(self._last, received)

    @property
    def last(self) -> int:
        return self._last
