"""The link emulator's pure rules: direction names, delivery order, route validation and persisted state."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regionctl.errors import ConfigError, InputError
from regionctl.runtime.link_model import (
    DirectionState,
    LinkState,
    Route,
    apply_partition,
    apply_settings,
    check_delay,
    check_route,
    delivery_time,
    initial_directions,
    load_state,
    parse_direction,
    save_state,
)

REGIONS = ("us-east-1", "us-west-2")
EAST_WEST = ("us-east-1", "us-west-2")
WEST_EAST = ("us-west-2", "us-east-1")


def route(**changes: object) -> Route:
    fields: dict[str, object] = dict(
        name="pg/orders", src_region="us-west-2", dst_region="us-east-1", listen_host="127.0.2.1",
        listen_port=17100, target_host="127.0.1.1", target_port=17001,
    )
    fields.update(changes)
    return Route(**fields)  # type: ignore[arg-type]


# --- direction names -----------------------------------------------------------------------------------------


def test_one_direction_names_exactly_that_direction() -> None:
    assert parse_direction("us-east-1->us-west-2", REGIONS) == (EAST_WEST,)
    assert parse_direction(" us-west-2 -> us-east-1 ", REGIONS) == (WEST_EAST,)


def test_both_and_double_arrow_name_the_two_directions() -> None:
    assert set(parse_direction("both", REGIONS)) == {EAST_WEST, WEST_EAST}
    assert set(parse_direction("us-west-2<->us-east-1", REGIONS)) == {EAST_WEST, WEST_EAST}


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("us-east-1->eu-west-1", "eu-west-1"),
        ("mars->us-east-1", "mars"),
        ("us-east-1->us-east-1", "itself"),
        ("us-east-1", "SRC->DST"),
        ("->us-east-1", "SRC->DST"),
        ("a->b->c", "SRC->DST"),
        ("", "SRC->DST"),
    ],
)
def test_bad_directions_are_refused_naming_the_field_and_problem(text: str, named: str) -> None:
    with pytest.raises(InputError, match="direction") as err:
        parse_direction(text, REGIONS)
    assert named in str(err.value)


@pytest.mark.parametrize(("value", "named"), [(-1.0, ">= 0"), (float("nan"), "number"), (10**9, "at most")])
def test_bad_delays_are_refused_naming_the_field(value: float, named: str) -> None:
    with pytest.raises(InputError, match="latency_ms") as err:
        check_delay("latency_ms", value)
    assert named in str(err.value)


def test_settings_change_only_the_chosen_directions_and_keep_unset_values() -> None:
    start = initial_directions(REGIONS, 30.0, 2.0)
    after = apply_settings(start, [EAST_WEST], latency_ms=80.0, jitter_ms=None)
    by_pair = {(d.src, d.dst): d for d in after}
    assert by_pair[EAST_WEST] == DirectionState("us-east-1", "us-west-2", 80.0, 2.0, False)
    assert by_pair[WEST_EAST] == DirectionState("us-west-2", "us-east-1", 30.0, 2.0, False)


def test_partition_then_heal_one_direction() -> None:
    start = initial_directions(REGIONS, 30.0, 0.0)
    cut = apply_partition(start, [WEST_EAST], True)
    assert [(d.src, d.dst) for d in cut if d.partitioned] == [WEST_EAST]
    assert apply_partition(cut, [WEST_EAST], False) == start


# --- delivery scheduling ---------------------------------------------------------------------------------------


def test_a_chunk_is_due_after_latency_plus_jitter() -> None:
    assert delivery_time(10.0, 0.030, 0.0, 0.0, random.random) == pytest.approx(10.030)
    assert delivery_time(10.0, 0.030, 0.010, 0.0, lambda: 0.5) == pytest.approx(10.035)


def test_a_chunk_is_never_due_before_the_previous_one() -> None:
    # latency lowered from 100 ms to 0: the next chunk waits for the one ahead of it instead of overtaking
    first = delivery_time(1.0, 0.100, 0.0, 0.0, random.random)
    second = delivery_time(1.001, 0.0, 0.0, first, random.random)
    assert second == first


@given(
    st.lists(
        st.tuples(st.floats(0, 0.05), st.floats(0, 0.5), st.floats(0, 0.5), st.floats(0, 1)),
        min_size=1, max_size=50,
    )
)
def test_due_times_are_monotonic_and_never_early_whatever_latency_and_jitter_do(
    steps: list[tuple[float, float, float, float]],
) -> None:
    now, last = 0.0, 0.0
    for gap, latency, jitter, r in steps:
        now += gap
        due = delivery_time(now, latency, jitter, last, fixed(r))
        assert due >= last
        assert due >= now + latency
        assert due <= max(last, now + latency + jitter)
        last = due


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


# --- routes ----------------------------------------------------------------------------------------------------


def test_a_valid_route_passes() -> None:
    assert check_route(route(), REGIONS) == route()
    assert route().forward == WEST_EAST and route().backward == EAST_WEST


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"src_region": "eu-west-1"}, "src_region"),
        ({"dst_region": "us-west-2"}, "dst_region"),
        ({"listen_host": "not a host"}, "listen_host"),
        ({"target_host": ""}, "target_host"),
        ({"listen_port": 0}, "listen_port"),
        ({"target_port": 70000}, "target_port"),
    ],
)
def test_a_bad_route_is_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InputError, match=f"^{field}:"):
        check_route(route(**changes), REGIONS)


# --- persistence -------------------------------------------------------------------------------------------------


def test_state_round_trips_through_the_file(tmp_path: Path) -> None:
    defaults = LinkState(initial_directions(REGIONS, 30.0, 0.0), ())
    state = LinkState(apply_partition(apply_settings(defaults.directions, [EAST_WEST], 55.0, 5.0), [WEST_EAST], True),
                      (route(), route(name="sync", listen_port=17101)))
    path = tmp_path / "link.json"
    save_state(path, state)
    assert load_state(path, REGIONS, defaults) == state
    assert not list(tmp_path.glob("*.tmp"))


def test_no_file_means_the_initial_state(tmp_path: Path) -> None:
    defaults = LinkState(initial_directions(REGIONS, 30.0, 1.0), ())
    assert load_state(tmp_path / "absent.json", REGIONS, defaults) == defaults


def test_entries_for_other_regions_are_dropped_not_fatal(tmp_path: Path) -> None:
    other = ("us-east-1", "eu-west-1")
    old = LinkState(initial_directions(other, 10.0, 0.0), (route(src_region="eu-west-1", listen_port=1),))
    path = tmp_path / "link.json"
    save_state(path, old)
    defaults = LinkState(initial_directions(REGIONS, 30.0, 0.0), ())
    assert load_state(path, REGIONS, defaults) == defaults


@pytest.mark.parametrize("content", ["{not json", json.dumps({"version": 99}), json.dumps({"version": 1,
                                     "routes": [{"name": "x"}]})])
def test_a_damaged_state_file_is_refused_naming_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "link.json"
    path.write_text(content)
    defaults = LinkState(initial_directions(REGIONS, 30.0, 0.0), ())
    with pytest.raises(ConfigError, match="link.json"):
        load_state(path, REGIONS, defaults)
