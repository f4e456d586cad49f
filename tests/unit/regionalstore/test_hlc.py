"""The hybrid logical clock never repeats, never goes back, stays near the wall and moves past what it sees."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from regionctl.regionalstore import hlc
from regionctl.regionalstore.hlc import HybridClock

events = st.lists(st.tuples(st.sampled_from(["tick", "observe"]), st.integers(0, 10**6),
                            st.integers(0, hlc.pack(2 * 10**6, 70))), max_size=200)


def test_pack_and_unpack_round_trip() -> None:
    stamp = hlc.pack(1_700_000_000_123, 7)
    assert hlc.physical_ms(stamp) == 1_700_000_000_123
    assert hlc.logical(stamp) == 7
    assert hlc.to_datetime(stamp).year == 2023


def test_tick_follows_the_wall_clock_when_it_is_ahead() -> None:
    assert hlc.tick(hlc.pack(100, 5), wall_ms=200) == hlc.pack(200, 0)


def test_tick_counts_logically_when_the_wall_clock_stalls_or_goes_back() -> None:
    last = hlc.pack(200, 3)
    assert hlc.tick(last, wall_ms=200) == hlc.pack(200, 4)
    assert hlc.tick(last, wall_ms=150) == hlc.pack(200, 4)


def test_logical_overflow_carries_into_the_physical_part_instead_of_repeating() -> None:
    last = hlc.pack(200, hlc.LOGICAL_MASK)
    assert hlc.tick(last, wall_ms=200) == hlc.pack(201, 0)


@given(events)
def test_clock_is_strictly_monotonic_and_passes_every_observed_stamp(script: list[tuple[str, int, int]]) -> None:
    wall = {"ms": 0}
    clock = HybridClock(wall=lambda: wall["ms"])
    previous = 0
    for kind, wall_ms, received in script:
        wall["ms"] = wall_ms
        if kind == "observe":
            clock.observe(received)
            assert clock.now() > received
        stamp = clock.now()
        assert stamp > previous
        assert hlc.physical_ms(stamp) >= wall_ms  # never behind the wall clock
        previous = stamp
