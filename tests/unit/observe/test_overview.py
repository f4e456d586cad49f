"""The console's overview: parts read on their own, what raises a flag, the page and the system metrics."""

from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from regionctl.errors import ExternalError
from regionctl.observe.console import CachedOverview, build
from regionctl.observe.overview import collect

REGIONS = ("us-east-1", "us-west-2")


def member(region: str, role: str, lag: int | None = None) -> dict[str, Any]:
    return {"region": region, "role": role, "lag_bytes": lag, "lag_ms": None if lag is None else 12.0,
            "timeline": 1}


class FakeSources:
    """A healthy deployment; tests break one part at a time."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {
            "routing": {"regions": [{"region": r, "control": "On", "routable": True, "reason": "On and healthy",
                                     "health": {"healthy": True}} for r in REGIONS]},
            "databases": [{"name": n, "writer": "us-east-1", "problems": [],
                           "members": [member("us-east-1", "writer"), member("us-west-2", "standby", 0)]}
                          for n in ("orders", "catalog")],
            "store": {"problems": [], "directions": [
                {"source": a, "target": b, "paused": False, "backlog": 0, "problems": [], "replicator_error": None}
                for a, b in (REGIONS, REGIONS[::-1])]},
            "runbooks": [],
            "agents": [{"region": r, "reachable": True, "members": [], "operations": []} for r in REGIONS],
            "drills": [{"id": "drill-20261202-045002-6670", "fault": "partition", "verdict": "PASS", "reason": "ok"}],
            "reports": [{"report_id": "orders-1", "database": "orders", "lost_transactions": 0, "conflicts": 0,
                         "replays": 0, "resolutions": {}}],
            "alerts": [],
            "canaries": {r: {"region": r, "counts": {"pass": 2, "fail": 0, "pending": 0}, "canaries": [
                {"name": "lcl-rgnl-home", "state": "pass"}, {"name": "rmt-rgnl-home", "state": "pass"}]}
                for r in REGIONS},
        }
        self.broken: dict[str, Exception] = {}
        self.calls = 0

    def _get(self, name: str) -> Any:
        self.calls += 1
        if name in self.broken:
            raise self.broken[name]
        return copy.deepcopy(self.data[name])

    def routing(self) -> Any:
        return self._get("routing")

    def databases(self) -> Any:
        return self._get("databases")

    def store(self) -> Any:
        return self._get("store")

    def runbooks(self) -> Any:
        return self._get("runbooks")

    def agents(self) -> Any:
        return self._get("agents")

    def drills(self) -> Any:
        return self._get("drills")

    def reports(self) -> Any:
        return self._get("reports")

    def alerts(self) -> Any:
        return self._get("alerts")

    def canaries(self, region: str) -> Any:
        if f"canaries/{region}" in self.broken:
            raise self.broken[f"canaries/{region}"]
        return copy.deepcopy(self.data["canaries"][region])


def test_a_healthy_deployment_needs_no_attention() -> None:
    overview = collect(FakeSources(), REGIONS, now=lambda: 1.0)
    assert overview["attention"] == []
    assert overview["routing"]["ok"] and overview["canaries"]["us-west-2"]["ok"] and overview["at"] == 1.0


def test_each_broken_part_is_flagged_and_the_rest_still_shows() -> None:
    sources = FakeSources()
    sources.broken = {"routing": ExternalError("the routing control API is not reachable"),
                      "canaries/us-east-1": OSError("connection refused")}
    sources.data["databases"][0]["problems"] = ["writer us-east-1 is unreachable"]
    sources.data["store"]["directions"][1].update(paused=True)
    sources.data["canaries"]["us-west-2"]["canaries"][1]["state"] = "fail"
    sources.data["runbooks"] = [
        {"id": "ex1", "runbook": "RegionFailover", "status": "running", "current_step": "approve-replay",
         "waiting_for": {"approvers": ["ops-lead"]}},
        {"id": "ex2", "runbook": "Failback", "status": "failed", "error": "lag too high", "waiting_for": None}]
    overview = collect(sources, REGIONS)
    flags = [(f["severity"], f["what"]) for f in overview["attention"]]
    assert flags == [
        ("critical", "routing: cannot be read (the routing control API is not reachable)"),
        ("critical", "database orders: writer us-east-1 is unreachable"),
        ("warning", "regional store us-west-2 -> us-east-1 is paused"),
        ("warning", "canaries of us-east-1 cannot be read (connection refused)"),
        ("warning", "us-west-2: 1 canaries failing (rmt-rgnl-home)"),
        ("warning", "runbook RegionFailover (ex1) waits at step approve-replay for approval by ops-lead"),
        ("warning", "runbook Failback (ex2) failed: lag too high"),
    ]
    assert overview["routing"] == {"ok": False, "data": None,
                                   "error": "the routing control API is not reachable"}
    assert overview["databases"]["ok"] and overview["canaries"]["us-west-2"]["ok"]


def test_a_region_that_cannot_be_reached_is_flagged_unreachable_never_as_stopped() -> None:
    sources = FakeSources()
    sources.data["agents"][0] = {"region": "us-east-1", "reachable": False, "error": "did not answer in time",
                                 "members": [], "operations": []}
    flags = collect(sources, REGIONS)["attention"]
    assert flags[0]["severity"] == "critical" and flags[0]["what"].startswith("us-east-1 is unreachable")
    assert not any("us-west-2" in f["what"] for f in flags)


def test_commits_held_back_by_the_bound_on_data_loss_are_flagged() -> None:
    sources = FakeSources()
    sources.data["agents"][0]["leases"] = {"orders": {"mode": "bounded", "held_since": 86400.0 + 3600},
                                           "catalog": {"mode": "bounded", "held_since": None}}
    flags = [f["what"] for f in collect(sources, REGIONS)["attention"]]
    assert flags == ["orders: commits held back in us-east-1 since 01:00:00 UTC (bounded: the standby stopped "
                     "confirming)"]


def test_no_routable_region_is_critical() -> None:
    sources = FakeSources()
    for region in sources.data["routing"]["regions"]:
        region.update(routable=False, reason="control Off")
    flags = collect(sources, REGIONS)["attention"]
    assert flags[0] == {"severity": "critical", "what": "no region receives traffic"}
    assert {"severity": "warning", "what": "us-east-1 receives no traffic: control Off"} in flags


def test_a_degraded_region_is_flagged_with_its_reason() -> None:
    sources = FakeSources()
    west = sources.data["routing"]["regions"][1]
    west.update(degraded=True, reason="routing control On, health check passing but degraded (orders: far)")
    flags = collect(sources, REGIONS)["attention"]
    assert flags == [{"severity": "warning", "what": "us-west-2 is degraded: routing control On, health check "
                                                     "passing but degraded (orders: far)"}]


def test_the_console_serves_the_page_the_overview_and_the_system_metrics_from_one_cached_read() -> None:
    sources = FakeSources()
    sources.data["databases"][1]["members"][1] = member("us-west-2", "standby", 4096)
    sources.broken = {"runbooks": ExternalError("the runbook engine is not reachable")}
    sources.data["databases"][0]["at_risk"] = {"count": 3, "window_s": 0.4, "window_bytes": 900}
    sources.data["agents"][0]["leases"] = {"orders": {"fence_in_s": 3.2, "mode": "bounded", "held_since": 1700.0}}
    sources.data["routing"]["regions"][1]["degraded"] = True
    now = [0.0]
    client = TestClient(build(sources, REGIONS, "regionctl console <test>", ttl_s=1.0, now=lambda: now[0]))
    page = client.get("/")
    assert page.status_code == 200 and "<title>regionctl console &lt;test&gt;</title>" in page.text
    overview = client.get("/api/overview").json()
    calls = sources.calls
    metrics = client.get("/metrics").text
    assert sources.calls == calls  # within the cache's second: no second read
    now[0] += 1.5
    client.get("/api/overview")
    assert sources.calls > calls  # a second later: read again
    assert [f["what"] for f in overview["attention"]] == [
        "orders: commits held back in us-east-1 since 00:28:20 UTC (bounded: the standby stopped confirming)",
        "runbooks: cannot be read (the runbook engine is not reachable)", "us-west-2 is degraded: On and healthy"]
    assert 'regionctl_globaldb_writer{database="orders",region="us-east-1"} 1.0' in metrics
    assert 'regionctl_globaldb_writer{database="orders",region="us-west-2"} 0.0' in metrics
    assert 'regionctl_globaldb_lag_bytes{database="catalog",region="us-west-2"} 4096.0' in metrics
    assert 'regionctl_console_source_up{part="runbooks"} 0.0' in metrics
    assert 'regionctl_console_canaries{region="us-west-2",state="pass"} 2.0' in metrics
    assert 'regionctl_console_attention{severity="warning"} 2.0' in metrics
    assert 'regionctl_console_region_routable{region="us-east-1"} 1.0' in metrics
    assert 'regionctl_console_region_degraded{region="us-west-2"} 1.0' in metrics
    assert 'regionctl_globaldb_at_risk_transactions{database="orders"} 3.0' in metrics
    assert 'regionctl_globaldb_at_risk_bytes{database="orders"} 900.0' in metrics
    assert 'regionctl_lease_fence_in_seconds{database="orders",region="us-east-1"} 3.2' in metrics
    assert 'regionctl_commits_held_since_seconds{database="orders",mode="bounded",region="us-east-1"} 1700.0' \
        in metrics


def test_many_viewers_at_once_cause_one_read() -> None:
    reads: list[int] = []
    started = threading.Barrier(8)

    def read() -> dict[str, Any]:
        reads.append(1)
        time.sleep(0.2)  # a slow read: the others arrive while it runs
        return {"n": len(reads)}

    cache = CachedOverview(read, ttl_s=60)

    def view() -> dict[str, Any]:
        started.wait()
        return cache.get()

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda _: view(), range(8)))
    assert len(reads) == 1 and all(s == {"n": 1} for s in seen)


def test_a_scrape_takes_a_read_as_old_as_it_allows_instead_of_reading_again() -> None:
    clock = [0.0]
    reads: list[float] = []
    cache = CachedOverview(lambda: reads.append(clock[0]) or {"at": clock[0]}, ttl_s=1.0, now=lambda: clock[0])
    cache.get()
    clock[0] = 2.5  # the page's read is 2.5 s old: too old for the page, young enough for a scrape
    assert cache.get(max_age_s=3.0) == {"at": 0.0} and reads == [0.0]
    assert cache.get() == {"at": 2.5} and reads == [0.0, 2.5]


def test_an_unexpected_part_shape_is_flagged_instead_of_failing_the_overview() -> None:
    sources = FakeSources()
    sources.data["routing"] = {"regions": [{"no": "region key"}]}
    overview = collect(sources, REGIONS)
    assert overview["attention"][0]["severity"] == "critical"
    assert overview["attention"][0]["what"].startswith("attention flags cannot be computed")
    assert overview["databases"]["ok"]


def test_a_failed_latest_drill_is_flagged_with_its_reason() -> None:
    sources = FakeSources()
    sources.data["drills"].insert(0, {"id": "drill-20261202-050000-abcd", "fault": "isolate", "verdict": "FAIL",
                                      "reason": "1 acknowledged writes lost without a trace"})
    overview = collect(sources, REGIONS)
    assert overview["drills"]["ok"] and len(overview["drills"]["data"]) == 2
    assert overview["attention"] == [{"severity": "warning", "what": "the latest drill drill-20261202-050000-abcd "
                                      "(isolate) ended FAIL: 1 acknowledged writes lost without a trace"}]


def test_a_report_of_lost_transactions_nobody_replayed_is_flagged_with_what_the_policies_would_resolve() -> None:
    sources = FakeSources()
    sources.data["reports"] = [
        {"report_id": "orders-2", "database": "orders", "lost_transactions": 12, "conflicts": 3, "replays": 0,
         "resolutions": {"apply": 2, "refused": 1}},
        {"report_id": "catalog-2", "database": "catalog", "lost_transactions": 4, "conflicts": 0, "replays": 1,
         "resolutions": {}}]
    flags = [f["what"] for f in collect(sources, REGIONS)["attention"]]
    assert flags == ["orders: report orders-2 lists 12 lost transactions (3 conflicts, 2 resolvable by the merge "
                     "policies), not replayed yet"]
    sources.broken["reports"] = OSError("permission denied")
    overview = collect(sources, REGIONS)
    assert overview["reports"] == {"ok": False, "data": None, "error": "permission denied"}
    assert overview["attention"] == []  # the report store unread is no alarm: the rest of the overview stands
