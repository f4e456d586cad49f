"""The global plane as real processes: two stand-in region uis, the control API, the HTTP entry and DNS.

Every test starts from the same world (both regions On and healthy, control API up) and polls for outcomes
instead of sleeping; the only deadline that encodes a promise is "within one health-check interval".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regionctl.config import load_settings
from regionctl.errors import ConflictError
from regionctl.routing.client import ControlClient
from regionctl.routing.entry import COOKIE
from regionctl.routing.model import AT_LEAST_ONE_REGION_RULE, AUTOMATION_GATE_RULE
from regionctl.runtime.secrets import control_token
from tests.integration.routing.harness import Plane, http_ok, wait_until
from tests.support.ports import deployment_base_port

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"
INTERVAL_S = 2.0
WAIT_PERIOD_S = 1.0
ALL_RULES = [AT_LEAST_ONE_REGION_RULE, AUTOMATION_GATE_RULE]


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    root = tmp_path_factory.mktemp("global-plane")
    settings = load_settings(
        data_dir=root, base_port=deployment_base_port(),
        routing={"health_interval_s": INTERVAL_S, "health_timeout_s": 0.5, "failure_threshold": 1,
                 "control_poll_s": 0.25, "wait_period_s": WAIT_PERIOD_S},
    )
    world = Plane(settings, root)
    try:
        for region in settings.regions:
            world.start_region(region)
        for name in ("routing-api", "entry", "dns"):
            world.start(name)
        yield world
    finally:
        world.stop_all()


def client(plane: Plane) -> ControlClient:
    return ControlClient(plane.plane.api.url, control_token(plane.settings))


@pytest.fixture(autouse=True)
def both_regions_serving(plane: Plane) -> Plane:
    """Back to the start: API up, both uis healthy, both controls On, seen by entry and DNS."""
    if "routing-api" not in plane.procs:
        plane.start("routing-api")
    for region in (EAST, WEST):
        plane.set_region_health(region, True)
    wait_until(lambda: _try_change(plane, {EAST: True, WEST: True, "automation": True}), 10, "controls reset")
    wait_until(lambda: plane.new_requests_go_to() == {EAST, WEST}, 10, "entry to use both regions")
    wait_until(lambda: plane.dns_addresses() == {"127.0.1.1", "127.0.2.1"}, 10, "DNS to answer both")
    return plane


def _try_change(plane: Plane, controls: dict[str, bool], override: list[str] | None = None) -> bool:
    c = client(plane)
    try:
        c.change(controls, override=ALL_RULES if override is None else override, actor="test")
        return True
    except ConflictError as exc:
        assert "wait period" in str(exc)  # the only refusal these tests expect while setting up
        return False
    finally:
        c.close()


def turn_east_off(plane: Plane) -> None:
    """Without override: retried only while the reset's wait period runs."""
    wait_until(lambda: _try_change(plane, {EAST: False}, override=[]), WAIT_PERIOD_S * 3, "us-east-1 Off")


def test_both_healthy_sessions_stick_to_one_region(plane: Plane) -> None:
    first = plane.entry_get("/")
    region = first.headers["x-regionctl-region"]
    assert f"Served by region {region}" in first.text
    assert first.cookies[COOKIE] == region
    for _ in range(10):
        again = plane.entry_get("/whoami", cookies={COOKIE: region})
        assert again.json()["region"] == region
        assert "set-cookie" not in again.headers
    assert again.json()["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_turning_east_off_moves_entry_and_dns_to_west_within_one_interval(plane: Plane) -> None:
    c = client(plane)
    turn_east_off(plane)
    assert c.state()["controls"][EAST] == "Off"
    changed_at = time.monotonic()
    wait_until(lambda: plane.new_requests_go_to(8) == {WEST} and plane.dns_addresses() == {"127.0.2.1"},
               INTERVAL_S, "entry and DNS to serve only us-west-2 within one health-check interval")
    moved_after = time.monotonic() - changed_at
    # a session pinned to the region that went Off moves with it, and is pinned anew
    moved = plane.entry_get("/whoami", cookies={COOKIE: EAST})
    assert moved.json()["region"] == WEST and moved.cookies[COOKIE] == WEST
    print(f"entry and DNS moved to {WEST} {moved_after:.2f} s after the change")

    with pytest.raises(ConflictError, match=AT_LEAST_ONE_REGION_RULE):
        c.change({WEST: False}, actor="failover-test")
    assert c.state()["controls"] == {EAST: "Off", WEST: "On", "automation": "On"}
    assert plane.new_requests_go_to() == {WEST}
    c.close()


def test_killing_the_control_api_leaves_routing_as_it_was(plane: Plane) -> None:
    turn_east_off(plane)
    wait_until(lambda: plane.new_requests_go_to() == {WEST}, INTERVAL_S, "entry to serve only us-west-2")
    # the DNS reads the controls on its own schedule: it must have seen the change before its source goes away
    wait_until(lambda: plane.dns_addresses() == {"127.0.2.1"}, INTERVAL_S, "DNS to answer only us-west-2")
    plane.kill("routing-api")
    wait_until(lambda: not plane.entry_get("/_entry/status").json()["controls_source_up"], 5,
               "the entry to notice the control API is gone")
    status = plane.entry_get("/_entry/status").json()
    assert "serving the last known state" in status["controls_note"]
    for _ in range(3):
        assert plane.new_requests_go_to() == {WEST}
        assert plane.dns_addresses() == {"127.0.2.1"}
        time.sleep(0.3)
    shown = routing_status_cli(plane)  # the operator still sees what users are routed by
    assert shown["source"] == "global entry" and "not reachable" in shown["note"], shown
    assert {c["name"]: c["state"] for c in shown["controls"]} == {EAST: "Off", WEST: "On", "automation": "On"}
    assert {r["region"]: r["routable"] for r in shown["regions"]} == {EAST: False, WEST: True}

    # Even a restarted entry, with the control API still down, routes by the state it persisted.
    plane.kill("entry")
    plane.start("entry")
    wait_until(lambda: plane.new_requests_go_to() == {WEST}, 10, "the restarted entry to route from its cache")
    assert "last known state" in plane.entry_get("/_entry/status").json()["controls_note"]

    # And the control API, once back, has kept the panel on disk.
    plane.start("routing-api")
    c = client(plane)
    assert c.state()["controls"][EAST] == "Off"
    c.close()


def routing_status_cli(plane: Plane) -> dict[str, Any]:
    env = {**os.environ, "REGIONCTL_DATA_DIR": str(plane.settings.data_dir),
           "REGIONCTL_BASE_PORT": str(plane.settings.base_port)}
    result = subprocess.run([str(Path(sys.executable).parent / "regionctl"), "routing", "status", "--format", "json"],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_no_healthy_region_gives_a_clear_503_and_servfail(plane: Plane) -> None:
    turn_east_off(plane)
    plane.set_region_health(WEST, False)
    # entry and DNS check health independently (as Route 53's checkers do), each within one interval
    wait_until(lambda: plane.new_requests_go_to(2) == {"503"} and plane.dns_addresses() == "SERVFAIL",
               INTERVAL_S * 2, "entry and DNS to refuse")
    refused = plane.entry_get("/")
    assert refused.status_code == 503
    assert "no healthy region" in refused.text
    assert f"{EAST}: routing control Off" in refused.text and f"{WEST}: health check failing" in refused.text
    assert refused.headers["retry-after"] == "5"

    reply = plane.dns_query()
    assert reply.header.rcode == 2  # SERVFAIL
    assert not reply.rr
    opt = next(rr for rr in reply.ar if rr.rtype == 41)
    assert b"no healthy region" in opt.rdata[0].data  # RFC 8914 extended error text

    plane.set_region_health(WEST, True)
    wait_until(lambda: plane.new_requests_go_to(2) == {WEST}, INTERVAL_S * 2, "us-west-2 to serve again")


def test_entry_proxies_bodies_streams_and_head_requests(plane: Plane) -> None:
    import httpx

    with httpx.Client(base_url=plane.entry_url, trust_env=False) as http:
        body = os.urandom(300_000)
        echoed = http.post("/echo", content=body, headers={"content-type": "application/octet-stream"})
        assert echoed.status_code == 200 and echoed.content == body
        streamed = http.get("/stream", params={"chunks": 50})
        assert streamed.text.count("\n") == 50 and streamed.text.startswith("part 0 from")
        head = http.head("/")  # the region sends a Content-Length and no body
        assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
        assert http.get("/").status_code == 200  # the connection after a HEAD is still in step
        assert http.get("/no-such-page").status_code == 404
        assert http.get("/_entry/nope").status_code == 404
        # keep-alive connections survive many requests
        assert {http.get("/whoami").status_code for _ in range(50)} == {200}
    metrics = plane.entry_get("/_entry/metrics").text
    assert 'regionctl_entry_requests_total{region="us-east-1",status="2xx"}' in metrics


def test_processes_and_metrics_are_served(plane: Plane) -> None:
    assert http_ok(plane.specs["dns"].health_url or "")
    import httpx

    api_metrics = httpx.get(plane.plane.api.url + "/metrics", trust_env=False, follow_redirects=False)
    assert api_metrics.status_code == 200 and "regionctl_routing_control_on" in api_metrics.text
    dns_metrics = httpx.get(plane.plane.dns_admin.url + "/metrics", trust_env=False).text
    assert 'regionctl_dns_answers_total{region="us-west-2"}' in dns_metrics
    token_file = Path(plane.plane.token_file)
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    for log in plane.log_dir.glob("*.log"):
        assert control_token(plane.settings) not in log.read_text()
