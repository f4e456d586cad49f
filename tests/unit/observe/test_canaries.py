"""Canary plans, judgement and windows, and the runner against a fake HTTP transport."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient

from regionctl.config import load_settings
from regionctl.errors import ConfigError
from regionctl.observe.canaries import Board, Run, Targets, judge, percentile, plan
from regionctl.observe.canary_runner import CanaryRunner, create_app, dump_plan, load_plan

TARGETS = Targets(local="http://127.0.1.1:8001", remote="http://127.0.1.1:9002/", remote_region="us-west-2",
                  global_entry="http://127.0.0.1:7000")
PAGES = ("/home", "/cart", "/catalog", "/orders")


def test_a_region_checks_every_page_on_its_own_front_the_other_region_and_the_global_entry() -> None:
    canaries = plan("us-east-1", TARGETS, PAGES)
    assert len(canaries) == 12 and len({c.name for c in canaries}) == 12
    by_name = {c.name: c for c in canaries}
    assert by_name["lcl-rgnl-home"].url == "http://127.0.1.1:8001/home"
    assert by_name["lcl-rgnl-home"].target == "us-east-1"
    assert by_name["rmt-rgnl-cart"].url == "http://127.0.1.1:9002/cart"  # no double slash
    assert by_name["rmt-rgnl-cart"].target == "us-west-2"
    assert by_name["global-cart"].url == "http://127.0.0.1:7000/cart"  # the reference's global-cart hit the remote ALB
    assert {c.region for c in canaries} == {"us-east-1"}
    assert plan("us-east-1", TARGETS, ("/", "/a/b"))[0].name == "lcl-rgnl-root"
    assert plan("us-east-1", TARGETS, ("/", "/a/b"))[1].name == "lcl-rgnl-a-b"


@pytest.mark.parametrize(("status", "error", "ok", "reason"), [
    (200, None, True, ""),
    (204, None, True, ""),
    (303, None, False, "redirected (303); a canary wants the page itself"),
    (404, None, False, "HTTP 404"),
    (503, None, False, "HTTP 503"),
    (None, None, False, "no response within 3 s"),
    (None, "ConnectError: refused", False, "ConnectError: refused"),
])
def test_only_a_2xx_passes(status: int | None, error: str | None, ok: bool, reason: str) -> None:
    assert judge(status, error, 3.0) == (ok, reason)


def run(at: float, ok: bool, duration: float = 0.1) -> Run:
    return Run(at=at, ok=ok, duration_s=duration, status=200 if ok else 503, reason="" if ok else "HTTP 503")


def test_a_board_keeps_the_window_and_says_since_when_a_canary_fails() -> None:
    canaries = plan("us-east-1", TARGETS, ("/home",))
    board = Board(canaries, window=4)
    assert [s.state for s in board.summaries()] == ["pending"] * 3
    for i, ok in enumerate([False, True, True, True, False, False]):  # the first run leaves the window of 4
        board.record("lcl-rgnl-home", run(float(i), ok, duration=0.1 * (i + 1)))
    summary = board.summaries()[0]
    assert (summary.runs, summary.failed, summary.success_percent) == (4, 2, 50.0)
    assert summary.state == "fail" and summary.failing_since == 4.0
    assert summary.duration_max_s == pytest.approx(0.6)
    assert summary.duration_p50_s == pytest.approx(0.4)
    board.record("lcl-rgnl-home", run(6.0, True))
    assert board.summaries()[0].failing_since is None and board.summaries()[0].state == "pass"


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0.5) == 5.0
    assert percentile(values, 0.9) == 9.0
    assert percentile(values, 1.0) == 10.0
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([], 0.5) is None


def fake_shop(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/home":
        return httpx.Response(200, text="ok")
    if request.url.path == "/cart":
        return httpx.Response(302, headers={"Location": "/login"})
    if request.url.path == "/catalog":
        raise httpx.ConnectError("connection refused", request=request)
    if request.url.path == "/orders":
        raise httpx.ReadTimeout("timed out", request=request)
    return httpx.Response(500)


def test_a_round_records_each_outcome_with_its_reason_and_metrics() -> None:
    canaries = plan("us-east-1", TARGETS, PAGES)
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake_shop), follow_redirects=False)
    runner = CanaryRunner("us-east-1", canaries, interval_s=5, timeout_s=2, window=10, http=http)
    asyncio.run(runner.run_round())
    report = runner.report()
    states = {c["name"]: (c["state"], c["last"]["reason"]) for c in report["canaries"]}
    assert states["lcl-rgnl-home"] == ("pass", "")
    assert states["global-cart"][0] == "fail" and states["global-cart"][1].startswith("redirected (302)")
    assert states["rmt-rgnl-catalog"] == ("fail", "ConnectError: connection refused")
    assert states["lcl-rgnl-orders"] == ("fail", "no response within 2 s")
    assert report["counts"] == {"pass": 3, "fail": 9, "pending": 0} and report["rounds"] == 1

    metrics = TestClient(create_app(runner)).get("/metrics").text
    assert ('regionctl_canary_runs_total{canary="lcl-rgnl-home",kind="local",region="us-east-1",result="pass"} 1.0'
            in metrics)
    assert 'regionctl_canary_success{canary="global-cart",kind="global",region="us-east-1"} 0.0' in metrics
    assert ('regionctl_canary_responses_total{canary="rmt-rgnl-catalog",kind="remote",region="us-east-1",'
            'status="none"} 1.0' in metrics)


def test_the_plan_survives_the_trip_through_the_environment() -> None:
    canaries = plan("us-west-2", TARGETS, ("/home",))
    knobs = load_settings().canaries
    loaded = load_plan(dump_plan("us-west-2", knobs, canaries))
    assert loaded == {"region": "us-west-2", "interval_s": knobs.interval_s, "timeout_s": knobs.timeout_s,
                      "window": knobs.window, "canaries": canaries}


@pytest.mark.parametrize(("knobs", "problem"), [
    ({"timeout_s": 10, "interval_s": 5}, "timeout_s must not exceed interval_s"),
    ({"pages": ["/home", "/home"]}, "pages repeat or would share a canary name: /home"),
    ({"pages": ["/cart", "/cart/"]}, "pages repeat or would share a canary name: /cart, /cart/"),
    ({"pages": ["/a/b", "/a-b"]}, "pages repeat or would share a canary name: /a-b, /a/b"),
    ({"pages": ["home"]}, "canaries.pages.0"),
    ({"pages": []}, "canaries.pages"),
    ({"interval_s": 0.1}, "canaries.interval_s"),
    ({"window": 0}, "canaries.window"),
    ({"surprise": 1}, "canaries.surprise"),
])
def test_bad_canary_settings_are_refused_by_name(knobs: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace(".", r"\.")):
        load_settings(canaries=knobs)


def test_an_unexpected_error_fails_the_run_and_a_stalled_loop_turns_health_red() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise ValueError("no such scheme")

    canaries = plan("us-east-1", TARGETS, ("/home",))
    http = httpx.AsyncClient(transport=httpx.MockTransport(broken))
    runner = CanaryRunner("us-east-1", canaries, interval_s=5, timeout_s=2, window=10, http=http)
    client = TestClient(create_app(runner))
    runner.last_round_at -= 100  # no round for 100 s
    assert client.get("/health").status_code == 503
    asyncio.run(runner.run_round())
    assert runner.report()["canaries"][0]["last"]["reason"] == "ValueError: no such scheme"
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["rounds"] == 1
