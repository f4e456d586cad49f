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
    LinkStatus,
    Route,
    apply_partition,
    apply_settings,
    check_delay,
    check_isolate_region,
    check_regions,
    check_route,
    delivery_time,
    heal_directions,
    initial_directions,
    isolation_pairs,
    load_state,
    parse_direction,
    same_listener,
    save_state,
    state_to_json,
)
from regionctl.runtime.process import GLOBAL_PLANE

REGIONS = ("us-east-1", "us-west-2")
EAST_WEST = ("us-east-1", "us-west-2")
WEST_EAST = ("us-west-2", "us-east-1")
EAST_GLOBAL, GLOBAL_EAST = ("us-east-1", "global"), ("global", "us-east-1")
WEST_GLOBAL, GLOBAL_WEST = ("us-west-2", "global"), ("global", "us-west-2")
CONTROL = {EAST_GLOBAL, GLOBAL_EAST, WEST_GLOBAL, GLOBAL_WEST}


def route(**changes: object) -> Route:
    fields: dict[str, object] = dict(
        name="pg/orders", src_region="us-west-2", dst_region="us-east-1", listen_host="127.0.2.1",
        listen_port=17100, target_host="127.0.1.1", target_port=17001,
    )
    fields.update(changes)
    return Route(**fields)  # type: ignore[arg-type]


A_DIR, B_DIR = "/srv/regionctl/etcd/us-east-1", "/srv/regionctl/etcd/us-west-2"


def unix_route(**changes: object) -> Route:
    """etcd's peer route from us-east-1's member directory to us-west-2's member socket."""
    fields: dict[str, object] = dict(
        name="us-east-1/us-west-2/etcd/us-west-2", src_region="us-east-1", dst_region="us-west-2",
        listen_path=f"{A_DIR}/etcd-us-west-2:2380", target_path=f"{B_DIR}/etcd-us-west-2:2380",
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


def test_the_global_plane_is_a_site_of_every_direction_name_but_both() -> None:
    assert GLOBAL_PLANE == "global"
    assert parse_direction("global->us-east-1", REGIONS) == (GLOBAL_EAST,)
    assert parse_direction("us-west-2 -> global", REGIONS) == (WEST_GLOBAL,)
    assert set(parse_direction("us-east-1<->global", REGIONS)) == {EAST_GLOBAL, GLOBAL_EAST}
    assert not set(parse_direction("both", REGIONS)) & CONTROL  # a plain partition never cuts the control path


def test_heal_both_ends_every_partition_of_the_link_and_names_otherwise_mean_what_they_say() -> None:
    assert set(heal_directions("both", REGIONS)) == {EAST_WEST, WEST_EAST} | CONTROL
    assert set(heal_directions(" both ", REGIONS)) == {EAST_WEST, WEST_EAST} | CONTROL
    assert set(heal_directions("us-east-1<->global", REGIONS)) == {EAST_GLOBAL, GLOBAL_EAST}
    with pytest.raises(InputError, match="direction: unknown region 'mars'"):
        heal_directions("mars->global", REGIONS)


def test_every_ordered_pair_of_sites_has_a_direction_the_control_path_at_its_own_latency() -> None:
    start = initial_directions(REGIONS, 30.0, 2.0, control_latency_ms=1.5, control_jitter_ms=0.5)
    by_pair = {(d.src, d.dst): d for d in start}
    assert set(by_pair) == {EAST_WEST, WEST_EAST} | CONTROL and len(start) == 6
    assert [(d.latency_ms, d.jitter_ms) for d in start if not d.control_path] == [(30.0, 2.0)] * 2
    assert {(d.latency_ms, d.jitter_ms) for d in start if d.control_path} == {(1.5, 0.5)}
    assert by_pair[GLOBAL_EAST].control_path and not by_pair[EAST_WEST].control_path
    assert {(d.latency_ms, d.jitter_ms) for d in initial_directions(REGIONS, 30.0, 2.0) if d.control_path} == {
        (0.0, 0.0)}


def test_isolating_a_region_names_every_direction_touching_it_and_only_those() -> None:
    assert set(isolation_pairs("us-east-1", REGIONS)) == {EAST_WEST, WEST_EAST, EAST_GLOBAL, GLOBAL_EAST}
    assert set(isolation_pairs("us-west-2", REGIONS)) == {EAST_WEST, WEST_EAST, WEST_GLOBAL, GLOBAL_WEST}


@pytest.mark.parametrize(("region", "named"), [("eu-west-1", "unknown region 'eu-west-1'"),
                                                ("global", "global plane, not a region"), ("", "unknown region")])
def test_only_a_region_can_be_isolated(region: str, named: str) -> None:
    with pytest.raises(InputError, match="^region: ") as err:
        check_isolate_region(region, REGIONS)
    assert named in str(err.value)
    with pytest.raises(InputError, match="^region: "):
        isolation_pairs(region, REGIONS)


def test_a_region_is_isolated_only_while_every_direction_touching_it_is_partitioned() -> None:
    start = initial_directions(REGIONS, 30.0, 0.0)
    assert LinkStatus(start, ()).isolated == ()
    regions_cut = apply_partition(start, parse_direction("both", REGIONS), True)
    assert LinkStatus(regions_cut, ()).isolated == ()  # cut from each other, both still reach the global plane
    east_cut = apply_partition(start, isolation_pairs("us-east-1", REGIONS), True)
    assert LinkStatus(east_cut, ()).isolated == ("us-east-1",)
    one_way_back = apply_partition(east_cut, [GLOBAL_EAST], False)
    assert LinkStatus(one_way_back, ()).isolated == ()
    everything = apply_partition(start, heal_directions("both", REGIONS), True)
    assert LinkStatus(everything, ()).isolated == REGIONS


def test_the_region_names_must_leave_room_for_the_global_plane() -> None:
    assert check_regions(REGIONS) == REGIONS
    for bad in (("us-east-1",), ("us-east-1", "us-east-1"), ("us-east-1", "global")):
        with pytest.raises(InputError, match="^regions: "):
            check_regions(bad)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("us-east-1->eu-west-1", "eu-west-1"),
        ("mars->us-east-1", "mars"),
        ("us-east-1->us-east-1", "itself"),
        ("global->global", "itself"),
        ("global->eu-west-1", "eu-west-1"),
        ("Global->us-east-1", "Global"),
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


def test_a_route_may_start_or_end_in_the_global_plane() -> None:
    control = route(name="global/us-east-1/agent", src_region="global", listen_host="127.0.0.1")
    assert check_route(control, REGIONS) == control
    assert control.forward == GLOBAL_EAST and control.backward == EAST_GLOBAL
    back = route(name="us-west-2/global/etcd", dst_region="global", target_host="127.0.0.1")
    assert check_route(back, REGIONS).forward == WEST_GLOBAL


def test_a_route_may_join_two_unix_sockets_and_their_host_and_port_are_not_used() -> None:
    checked = check_route(unix_route(), REGIONS)
    assert checked == unix_route() and checked.forward == EAST_WEST
    assert (checked.listen_host, checked.listen_port, checked.target_host, checked.target_port) == ("", 0, "", 0)
    assert checked.listen_address == f"{A_DIR}/etcd-us-west-2:2380"  # what messages and tables show
    given = unix_route(listen_host="127.0.1.1", listen_port=2380, target_host="not a host", target_port=-1)
    assert check_route(given, REGIONS) == unix_route()  # one spelling: the ignored fields are cleared


def test_either_end_alone_may_be_a_unix_socket() -> None:
    tcp_to_unix = route(target_path="/run/etcd/etcd-a:2380", target_host="", target_port=0)
    assert check_route(tcp_to_unix, REGIONS) == tcp_to_unix
    assert tcp_to_unix.listen_address == "127.0.2.1:17100" and tcp_to_unix.target_address == "/run/etcd/etcd-a:2380"
    unix_to_tcp = check_route(route(listen_path="/run/link/pg.sock"), REGIONS)
    assert (unix_to_tcp.listen_host, unix_to_tcp.listen_port) == ("", 0)
    assert (unix_to_tcp.target_host, unix_to_tcp.target_port) == ("127.0.1.1", 17001)


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"listen_path": "etcd-b:2380"}, "listen_path", "not an absolute path"),
        ({"target_path": ""}, "target_path", "not an absolute path"),
        ({"target_path": "/run/etcd\0/x"}, "target_path", "NUL"),
        ({"listen_path": "/" + "x" * 100}, "listen_path", "101 bytes"),
        ({"listen_path": "/" + "é" * 50}, "listen_path", "101 bytes"),  # bytes, not characters
        ({"listen_path": 2380}, "listen_path", "absolute path"),
        ({"target_path": f"{A_DIR}/etcd-us-west-2:2380"}, "target_path", "own listen_path"),
        ({"target_path": f"{A_DIR}/./etcd-us-west-2:2380"}, "target_path", "own listen_path"),
        ({"listen_path": None, "listen_port": 2380}, "listen_host", "or give listen_path"),
        ({"target_path": None, "target_host": "127.0.2.1"}, "target_port", "TCP port"),
    ],
)
def test_a_bad_unix_socket_end_is_refused_naming_the_field(changes: dict[str, object], field: str,
                                                          problem: str) -> None:
    with pytest.raises(InputError, match=f"^{field}:.*{problem}"):
        check_route(unix_route(**changes), REGIONS)


def test_a_path_of_exactly_the_limit_passes() -> None:
    at_limit = "/" + "x" * 99
    assert check_route(unix_route(listen_path=at_limit), REGIONS).listen_path == at_limit


def test_routes_on_the_same_socket_path_are_the_same_listener_and_unix_and_tcp_never_are() -> None:
    assert same_listener(unix_route(), unix_route(name="other", target_path="/elsewhere/etcd:2380"))
    assert same_listener(unix_route(), unix_route(listen_path=f"{A_DIR}//etcd-us-west-2:2380"))
    assert not same_listener(unix_route(), unix_route(listen_path=f"{A_DIR}/etcd-global:2380"))
    # a checked unix route has host "" and port 0: two of them on different paths still differ
    a, b = (check_route(unix_route(listen_path=f"{A_DIR}/{n}"), REGIONS) for n in ("etcd-x:2380", "etcd-y:2380"))
    assert not same_listener(a, b)
    tcp = route(listen_host="", listen_port=0)
    assert not same_listener(a, tcp) and not same_listener(tcp, a)
    assert same_listener(route(), route(name="other", target_port=1))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"src_region": "eu-west-1"}, "src_region"),
        ({"dst_region": "us-west-2"}, "dst_region"),
        ({"src_region": "global", "dst_region": "global"}, "dst_region"),
        ({"dst_region": "GLOBAL"}, "dst_region"),
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


def test_a_state_file_from_before_the_global_plane_was_a_site_still_loads(tmp_path: Path) -> None:
    # written by the emulator when it joined the regions only: region pairs, no control path directions
    old = [DirectionState("us-east-1", "us-west-2", 55.0, 5.0, True), DirectionState("us-west-2", "us-east-1", 30.0,
                                                                                       0.0, False)]
    path = tmp_path / "link.json"
    path.write_text(json.dumps({**state_to_json(LinkState(tuple(old), (route(),))), "version": 1}))
    defaults = LinkState(initial_directions(REGIONS, 30.0, 0.0, control_latency_ms=2.0), ())
    loaded = load_state(path, REGIONS, defaults)
    by_pair = {(d.src, d.dst): d for d in loaded.directions}
    assert set(by_pair) == {EAST_WEST, WEST_EAST} | CONTROL
    assert by_pair[EAST_WEST] == old[0] and by_pair[WEST_EAST] == old[1]  # what was persisted is kept
    assert all(by_pair[p] == DirectionState(*p, 2.0, 0.0, False) for p in CONTROL)  # the new ones: defaults
    assert loaded.routes == (route(),)


def test_unix_socket_routes_round_trip_through_the_file(tmp_path: Path) -> None:
    defaults = LinkState(initial_directions(REGIONS, 30.0, 0.0), ())
    witness = unix_route(name="us-east-1/global/etcd/global", dst_region="global",
                         listen_path=f"{A_DIR}/etcd-global:2380",
                         target_path="/srv/regionctl/etcd/global/etcd-global:2380")
    mixed = check_route(route(name="tcp-to-unix", target_path="/run/etcd/etcd-a:2380"), REGIONS)
    state = LinkState(defaults.directions, (unix_route(), witness, mixed, route()))
    path = tmp_path / "link.json"
    save_state(path, state)
    saved = json.loads(path.read_text())["routes"]
    assert saved[0]["listen_path"] == f"{A_DIR}/etcd-us-west-2:2380" and saved[3]["listen_path"] is None
    assert load_state(path, REGIONS, defaults) == state


def test_a_state_file_from_before_unix_socket_routes_still_loads(tmp_path: Path) -> None:
    # written before routes had listen_path/target_path: every route is TCP and has no such keys
    old_route = {"name": "pg/orders", "src_region": "us-west-2", "dst_region": "us-east-1",
                 "listen_host": "127.0.2.1", "listen_port": 17100, "target_host": "127.0.1.1", "target_port": 17001}
    defaults = LinkState(initial_directions(REGIONS, 30.0, 0.0), ())
    path = tmp_path / "link.json"
    path.write_text(json.dumps({**state_to_json(defaults), "routes": [old_route]}))
    loaded = load_state(path, REGIONS, defaults).routes
    assert loaded == (route(),) and loaded[0].listen_path is None and loaded[0].target_path is None


def test_a_persisted_unix_route_with_a_bad_path_is_dropped_not_fatal(tmp_path: Path) -> None:
    defaults = LinkState(initial_directions(REGIONS, 30.0, 0.0), ())
    path = tmp_path / "link.json"
    bad = {**state_to_json(LinkState(defaults.directions, (unix_route(),)))}
    bad["routes"][0]["listen_path"] = "relative/etcd:2380"
    path.write_text(json.dumps(bad))
    assert load_state(path, REGIONS, defaults).routes == ()


def test_control_path_directions_and_routes_persist(tmp_path: Path) -> None:
    defaults = LinkState(initial_directions(REGIONS, 30.0, 0.0), ())
    control = route(name="global/us-east-1/agent", src_region="global", listen_host="127.0.0.1")
    state = LinkState(apply_partition(defaults.directions, isolation_pairs("us-east-1", REGIONS), True), (control,))
    path = tmp_path / "link.json"
    save_state(path, state)
    assert load_state(path, REGIONS, defaults) == state


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
