"""Pure parts of the data plane: health-check state machine, routability, region picking, DNS answers, cache."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import replace
from pathlib import Path

import httpx
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord
from hypothesis import given
from hypothesis import strategies as st

from regionctl.routing.entry import Pick, pick_region, request_head, sticky_region
from regionctl.routing.health import HealthState, observe
from regionctl.routing.source import HttpControlSource
from regionctl.routing.view import routing_view

EAST, WEST = "us-east-1", "us-west-2"
NAME = "store.demodev.io"
ADDRESSES = {EAST: "127.0.1.1", WEST: "127.0.2.1"}
UP = HealthState(healthy=True, last_ok=True, last_detail="HTTP 200")


def test_first_result_decides_then_threshold_consecutive_contrary_results_flip() -> None:
    state = observe(HealthState(), True, "HTTP 200", 1.0, threshold=3)
    assert state.healthy is True
    for i in range(2):
        state = observe(state, False, "HTTP 503", 2.0 + i, threshold=3)
        assert state.healthy is True and state.contrary == i + 1
    state = observe(state, True, "HTTP 200", 5.0, threshold=3)  # one pass resets the count
    assert state.contrary == 0
    for _ in range(3):
        state = observe(state, False, "HTTP 503", 6.0, threshold=3)
    assert state.healthy is False and "failing (last: HTTP 503)" in state.describe()


@given(st.lists(st.booleans(), max_size=40), st.integers(1, 10))
def test_health_flips_only_after_threshold_consecutive_contrary_results(results: list[bool], threshold: int) -> None:
    state = HealthState()
    history: list[bool] = []
    for ok in results:
        before = state.healthy
        state = observe(state, ok, "", 0.0, threshold)
        history.append(ok)
        if before is not None and state.healthy != before:
            assert history[-threshold:] == [state.healthy] * threshold


def test_an_expedited_region_rises_on_one_pass_once_and_still_falls_only_after_the_threshold() -> None:
    down = HealthState(healthy=False, last_ok=False)
    assert observe(down, True, "HTTP 200", 1.0, threshold=3).healthy is False  # a flap-damped rise
    changed = replace(down, expedited_until=31.0)  # a routing change at 1.0 turned it On
    failing = observe(changed, False, "HTTP 503", 2.0, threshold=3)  # not ready yet right after the change
    fast = observe(failing, True, "HTTP 200", 3.0, threshold=3)
    assert fast.healthy is True and fast.expedited_until == 0.0  # one pass is enough, once
    late = observe(observe(changed, False, "HTTP 503", 2.0, 3), True, "HTTP 200", 40.0, threshold=3)
    assert late.healthy is False  # the change is long past: the threshold applies again
    for _ in range(2):
        fast = observe(fast, False, "HTTP 503", 4.0, threshold=3)
    assert fast.healthy is True  # falling still needs three in a row


def test_traffic_prefers_regions_that_are_not_degraded_and_never_drops_the_last_ones() -> None:
    degraded = replace(UP, degraded=True, last_detail="HTTP 200, degraded: orders: new orders wait for the writer")
    view = routing_view([EAST, WEST], {EAST: True, WEST: True}, {EAST: UP, WEST: degraded})
    assert view.healthy == (EAST,) and view.regions[1].routable and view.regions[1].degraded
    assert "us-west-2 degraded, spared while another region is not" in view.explain()
    both = routing_view([EAST, WEST], {EAST: True, WEST: True}, {EAST: degraded, WEST: degraded})
    assert both.healthy == (EAST, WEST) and "(degraded: us-east-1: HTTP 200, degraded: orders" in both.explain()
    east_gone = routing_view([EAST, WEST], {EAST: True, WEST: True}, {EAST: HealthState(healthy=False),
                                                                      WEST: degraded})
    assert east_gone.healthy == (WEST,)  # the other region's loss degrades, never empties, the routing


def test_a_degraded_health_body_passes_degraded() -> None:
    from regionctl.routing.endpoints import Endpoint
    from regionctl.routing.health import probe

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/degraded":
            return httpx.Response(200, json={"status": "UP", "degraded": True, "reason": "degraded: orders: far"})
        return httpx.Response(200, json={"status": "UP", "degraded": False})

    async def main() -> tuple[object, object]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            return (await probe(client, Endpoint(EAST, "127.0.1.1", 1, "/degraded"), 1.0),
                    await probe(client, Endpoint(EAST, "127.0.1.1", 1, "/fine"), 1.0))

    degraded, fine = asyncio.run(main())
    assert degraded.ok and degraded.degraded and "degraded: orders: far" in degraded.detail  # type: ignore[attr-defined]
    assert fine.ok and not fine.degraded  # type: ignore[attr-defined]


def test_routable_needs_control_on_and_health_passing_and_unknown_is_not_routable() -> None:
    view = routing_view([EAST, WEST], {EAST: True, WEST: False}, {EAST: UP, WEST: UP})
    assert view.healthy == (EAST,)
    assert view.regions[1].reason == "routing control Off"
    unknown = routing_view([EAST, WEST], None, {EAST: UP, WEST: UP}, "control API unreachable")
    assert unknown.healthy == ()
    assert "routing control state unknown (control API unreachable)" in unknown.explain()
    not_checked = routing_view([EAST], {EAST: True}, {})
    assert not_checked.healthy == () and "not known yet" in not_checked.explain()


def test_pick_region_keeps_sessions_and_spreads_new_ones() -> None:
    turns = itertools.count()
    assert pick_region((), EAST, turns) is None
    assert pick_region((EAST, WEST), WEST, turns) == Pick(WEST, False)
    assert next(turns) == 0  # a request that keeps its session takes no turn
    assert [pick_region((EAST, WEST), None, turns).region for _ in range(4)] == [WEST, EAST, WEST, EAST]  # type: ignore[union-attr]
    assert pick_region((WEST,), EAST, turns) == Pick(WEST, True)  # the session moves and is pinned anew
    assert pick_region((EAST,), "garbage", turns) == Pick(EAST, True)


def test_new_visitors_alternate_however_many_requests_each_session_makes() -> None:
    turns = itertools.count()
    placed = []
    for _visitor in range(6):
        first = pick_region((EAST, WEST), None, turns)
        assert first is not None
        placed.append(first.region)
        for _ in range(3):  # the rest of this visitor's flow carries its cookie
            assert pick_region((EAST, WEST), first.region, turns) == Pick(first.region, False)
    assert placed.count(EAST) == placed.count(WEST) == 3


def test_sticky_cookie_and_forwarded_request_head() -> None:
    headers = [(b"host", b"shop"), (b"cookie", b"a=1; regionctl-region=us-west-2; b=2"), (b"connection", b"close"),
               (b"x-forwarded-for", b"10.0.0.1"), (b"expect", b"100-continue")]
    assert sticky_region(headers) == WEST
    assert sticky_region([(b"cookie", b"other=1")]) is None
    head = request_head(b"POST", b"/x?a=1", headers, "127.0.0.9", 3, EAST).decode()
    assert head.startswith("POST /x?a=1 HTTP/1.1\r\n")
    assert "connection:" not in head and "expect:" not in head
    assert "x-forwarded-for: 10.0.0.1, 127.0.0.9\r\n" in head and "content-length: 3\r\n" in head
    assert head.endswith("\r\n\r\n")


def _ask(qname: str, qtype: str = "A", edns: bool = False) -> DNSRecord:
    query = DNSRecord.question(qname, qtype)
    if edns:
        query.add_ar(EDNS0(udp_len=1232))
    return query


def test_dns_answers_healthy_regions_with_ttl() -> None:
    from regionctl.routing.dns import answer

    reply = answer(_ask(NAME), NAME, 7, ADDRESSES, (EAST, WEST), "")
    assert {str(rr.rdata) for rr in reply.rr} == {"127.0.1.1", "127.0.2.1"}
    assert {rr.ttl for rr in reply.rr} == {7} and reply.header.aa == 1 and reply.header.ra == 0
    rotated = answer(_ask(NAME.upper()), NAME, 7, ADDRESSES, (EAST, WEST), "", turn=1)
    assert [str(rr.rdata) for rr in rotated.rr] == ["127.0.2.1", "127.0.1.1"]
    only_west = answer(_ask(NAME), NAME, 7, ADDRESSES, (WEST,), "")
    assert [str(rr.rdata) for rr in only_west.rr] == ["127.0.2.1"]


def test_dns_no_healthy_region_is_servfail_with_extended_error() -> None:
    from regionctl.routing.dns import answer

    reply = answer(_ask(NAME, edns=True), NAME, 7, ADDRESSES, (), "no healthy region: us-east-1: routing control Off")
    assert reply.header.rcode == RCODE.SERVFAIL and not reply.rr
    assert b"routing control Off" in reply.ar[0].rdata[0].data
    plain = answer(_ask(NAME), NAME, 7, ADDRESSES, (), "x")
    assert plain.header.rcode == RCODE.SERVFAIL and not plain.ar


def test_dns_other_names_and_types() -> None:
    from regionctl.routing.dns import answer

    assert answer(_ask("example.com"), NAME, 7, ADDRESSES, (EAST,), "").header.rcode == RCODE.REFUSED
    nx = answer(_ask("nope.demodev.io"), NAME, 7, ADDRESSES, (EAST,), "")
    assert nx.header.rcode == RCODE.NXDOMAIN and nx.auth[0].rtype == QTYPE.SOA
    nodata = answer(_ask(NAME, "AAAA"), NAME, 7, ADDRESSES, (EAST,), "")
    assert nodata.header.rcode == RCODE.NOERROR and not nodata.rr and nodata.auth
    soa = answer(_ask("demodev.io", "SOA"), NAME, 7, ADDRESSES, (EAST,), "")
    assert soa.rr[0].rtype == QTYPE.SOA


def test_control_source_keeps_last_known_state_and_persists_it(tmp_path: Path) -> None:
    cache = tmp_path / "last-known.json"
    answers = [httpx.Response(200, json={"version": 4, "controls": {EAST: "Off", WEST: "On"}, "at": 1.0})]

    def handler(request: httpx.Request) -> httpx.Response:
        if answers:
            return answers.pop()
        raise httpx.ConnectError("refused", request=request)

    async def scenario() -> None:
        source = HttpControlSource("http://api", cache, 0.1)
        assert source.current().states is None
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            await source.poll_once(http)
            assert source.current().states == {EAST: False, WEST: True} and source.current().source_up
            await source.poll_once(http)  # the API is gone now
        known = source.current()
        assert known.states == {EAST: False, WEST: True} and not known.source_up
        assert "serving the last known state (version 4" in known.note

    asyncio.run(scenario())
    assert json.loads(cache.read_text())["controls"] == {EAST: "Off", WEST: "On"}
    restarted = HttpControlSource("http://api", cache, 0.1).current()
    assert restarted.states == {EAST: False, WEST: True} and restarted.version == 4


def test_a_routing_change_expedites_the_regions_it_leaves_on() -> None:
    from regionctl.routing.dataplane import DataPlane
    from regionctl.routing.endpoints import Endpoint
    from regionctl.routing.health import HealthCheckConfig, HealthMonitor
    from regionctl.routing.metrics import PlaneMetrics
    from regionctl.routing.source import KnownControls

    class Source:
        def __init__(self) -> None:
            self.known = KnownControls({EAST: True, WEST: True}, 1, 1.0, True, "read")

        def current(self) -> KnownControls:
            return self.known

    source = Source()
    monitor = HealthMonitor({r: Endpoint(r, ADDRESSES[r], 1) for r in (EAST, WEST)}, HealthCheckConfig())
    monitor.states[WEST] = HealthState(healthy=False, last_ok=False)  # failed with the other region
    plane = DataPlane([EAST, WEST], source, monitor, PlaneMetrics("test"))
    plane._on_controls(source.known)  # the same states again: no change
    assert monitor.states[WEST].expedited_until == 0.0
    source.known = KnownControls({EAST: False, WEST: True}, 2, 2.0, True, "read")  # a runbook took EAST Off
    plane._on_controls(source.known)
    assert monitor.states[WEST].expedited_until > 0  # its next passing check routes to it
    assert monitor.states[EAST].expedited_until == 0.0  # healthy already, and Off: nothing to hurry
