"""The console's history without a Prometheus: ranges, series naming, annotations, charts as SVG, a chart that
cannot be read among others, alerts ordered for a person, and a runbook execution's page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from regionctl.errors import ExternalError, InputError
from regionctl.observe import execution_page
from regionctl.observe.charts import Annotation, Series, render
from regionctl.observe.history import CHARTS, History, alert_rows, annotations_of, series_of, window


def test_ranges_and_their_steps_and_an_unknown_range_is_refused_by_name() -> None:
    assert window("5m", 1000.0, None, 5.0) == (700.0, 1000.0, 5.0)
    assert window("1h", 10_000.0, None, 5.0) == (6400.0, 10_000.0, 30.0)  # 120 points
    assert window("runbook", 1000.0, 900.0, 5.0)[0] == 840.0  # a minute before the last runbook started
    assert window("runbook", 1000.0, None, 5.0)[0] == 700.0  # none yet: the last five minutes
    with pytest.raises(InputError) as refused:
        window("1y", 1000.0, None, 5.0)
    assert refused.value.field == "range" and "5m, 1h, runbook" in str(refused.value)


def test_series_are_named_by_their_labels_and_a_missing_label_shows_as_a_question_mark() -> None:
    result = [{"metric": {"region": "us-west-2"}, "values": [[1, "2.5"], [2, "3"]]},
              {"metric": {}, "values": [[1, "1"]]}]
    assert series_of(result, "{region}") == [Series("?", ((1.0, 1.0),)),
                                              Series("us-west-2", ((1.0, 2.5), (2.0, 3.0)))]


def test_runbooks_and_drills_become_annotations_in_time_order() -> None:
    marks = annotations_of([{"id": "e1", "runbook": "RegionSwitchover", "created_at": 50.0, "ended_at": 80.0,
                             "status": "succeeded"}],
                           [{"id": "drill-1", "fault": "partition", "fault_at": 60.0}, {"id": "drill-0"}],
                           [{"experiment": "link-partition", "started_at": 55.0, "duration_s": 10.0}])
    assert marks == [Annotation(50.0, "RegionSwitchover e1 started"), Annotation(55.0, "chaos link-partition"),
                     Annotation(60.0, "drill drill-1: partition"), Annotation(65.0, "chaos link-partition reverted"),
                     Annotation(80.0, "RegionSwitchover e1 succeeded")]


def test_a_chart_draws_each_series_in_range_and_each_annotation_in_range() -> None:
    svg = render("Orders", "orders/s", [Series("us-east-1", ((10.0, 1.0), (20.0, 2.0), (99.0, 5.0))),
                                        Series("<us-west-2>", ((15.0, 0.5),))],
                 [Annotation(12.0, "RegionSwitchover e1 started"), Annotation(500.0, "later")], 0.0, 60.0)
    assert re.search(r'data-series="us-east-1" data-points="2"', svg)  # the point at 99 s is out of range
    assert 'data-series="&lt;us-west-2&gt;" data-points="1"' in svg  # labels are escaped
    assert svg.count("data-annotation=") == 1 and 'data-annotation="RegionSwitchover e1 started"' in svg
    assert "no data in this range" in render("Empty", "x", [], [], 0.0, 60.0)


class FakeReader:
    def __init__(self, broken: set[str]) -> None:
        self.broken = broken
        self.asked: list[tuple[str, float, float, float]] = []

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        self.asked.append((query, start, end, step))
        if query in self.broken:
            raise ExternalError("Prometheus refused /api/v1/query_range: bad_data")
        return [{"metric": {"region": "us-east-1", "database": "orders"}, "values": [[990, "1"], [995, "2"]]}]

    def alerts(self) -> list[dict[str, Any]]:
        return [{"labels": {"alertname": "RegionNotRoutable", "severity": "warning", "region": "us-east-1",
                            "deployment": "dev"}, "state": "pending", "annotations": {"summary": "s"}},
                {"labels": {"alertname": "GlobalDatabaseLagBytes", "severity": "critical", "database": "orders",
                            "instance": "127.0.0.1:1", "job": "regionctl", "site": "global", "component": "console"},
                 "state": "firing", "activeAt": "t", "annotations": {"summary": "orders behind"}}]


def test_every_chart_is_drawn_and_one_prometheus_refuses_says_so_in_its_place() -> None:
    reader = FakeReader({CHARTS[1].query})
    history = History(reader, lambda: [Annotation(950.0, "RegionFailover e2 started")], None, 5.0,
                      clock=lambda: 1000.0)
    body = history.charts("runbook")
    assert body["start"] == 890.0 and body["annotations"] == [{"at": 950.0, "label": "RegionFailover e2 started"}]
    assert [c["name"] for c in body["charts"]] == [c.name for c in CHARTS]
    assert body["charts"][1] == {"name": CHARTS[1].name, "title": CHARTS[1].title,
                                 "error": "Prometheus refused /api/v1/query_range: bad_data"}
    assert all("svg" in c for i, c in enumerate(body["charts"]) if i != 1)
    assert len(reader.asked) == len(CHARTS)


def test_without_prometheus_the_history_says_why_and_asks_nothing() -> None:
    reader = FakeReader(set())
    history = History(reader, lambda: [], "no Prometheus binary (PATH)")
    assert history.charts("5m") == {"available": False, "reason": "no Prometheus binary (PATH)", "charts": []}
    with pytest.raises(ExternalError):
        history.alerts()
    assert reader.asked == []


def test_alerts_firing_first_with_the_labels_that_tell_which() -> None:
    rows = alert_rows(FakeReader(set()).alerts())
    assert [(r["alert"], r["state"], r["labels"]) for r in rows] == [
        ("GlobalDatabaseLagBytes", "firing", {"database": "orders"}),
        ("RegionNotRoutable", "pending", {"region": "us-east-1"})]


VIEW = {"id": "e9", "runbook": "RegionFailover", "status": "succeeded", "actor": "olga", "started_at": 100.0,
        "ended_at": 160.0, "duration_s": 60.0, "recovery_s": 42.5,
        "recovery": {"recovered_at": 142.5, "recovery_s": 42.5},
        "steps": [{"step": "Promote", "status": "succeeded", "attempt": 2, "started_at": 100.0, "ended_at": 120.0,
                   "duration_s": 20.0, "outputs": {"report_id": "orders-r1"}},
                  {"step": "ApproveReplay", "status": "succeeded", "attempt": 1, "started_at": 120.0,
                   "ended_at": 150.0, "duration_s": 30.0, "outputs": {"report_ids": ["orders-r1", "catalog-r1"]}},
                  {"step": "Later", "status": "pending", "started_at": None}]}


def test_an_execution_page_shows_steps_waits_recovery_and_reports() -> None:
    events = [{"kind": "step.running", "step": "ApproveReplay", "at": 120.0},
              {"kind": "step.waiting", "step": "ApproveReplay", "at": 121.0}]
    page = execution_page.page(VIEW, events, now=200.0)
    assert page.count("<rect data-step=") == 2  # the step that never started has no bar
    assert '<rect data-wait="ApproveReplay"' in page and "waited 29.0 s for approval" in page
    assert 'id="recovered"' in page and "recovered after 42.5 s" in page
    assert "Promote: succeeded 20.0 s, 2 attempts" in page
    assert execution_page.reports_of(VIEW) == ["orders-r1", "catalog-r1"]
    assert 'data-report="catalog-r1"' in page
