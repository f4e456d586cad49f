"""What happened, over time: the console's charts, read from the deployment's Prometheus (its HTTP API), with
runbook executions, drills and chaos experiments drawn on every chart, and the alerts Prometheus says fire.

The charts are a table (``CHARTS``: title, unit, PromQL, how a series is named), so adding one is one line.
Ranges are the last 5 minutes, the last hour, or since the last runbook started (a minute before it, to show
what led to it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from regionctl.errors import ExternalError, InputError
from regionctl.observe.charts import Annotation, Series, render


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    unit: str
    query: str
    legend: str  # a format string over the series' labels


CHARTS = (
    Chart("orders", "Orders acknowledged per second", "orders/s",
          "sum by (region) (rate(shop_orders_created_total[30s]))", "{region}"),
    Chart("entry", "Entry traffic per region", "requests/s",
          "sum by (region) (rate(regionctl_entry_requests_total[30s]))", "{region}"),
    Chart("lag_bytes", "Global database lag (bytes)", "bytes", "regionctl_globaldb_lag_bytes",
          "{database} standby in {region}"),
    Chart("lag_seconds", "Global database lag (seconds)", "s", "regionctl_globaldb_lag_seconds",
          "{database} standby in {region}"),
    Chart("store_lag", "Regional store replication lag p99", "s",
          "histogram_quantile(0.99, sum by (source, target, le) "
          "(rate(regionalstore_replication_lag_seconds_bucket[1m])))", "{source} -> {target}"),
    Chart("store_conflicts", "Regional store conflicts", "conflicts/s",
          "sum by (source, target) (rate(regionalstore_conflicts_total[1m]))", "{source} -> {target}"),
    Chart("canary_success", "Canary success by kind", "share passing",
          "avg by (region, kind) (regionctl_canary_success)", "{region} {kind}"),
    Chart("canary_latency", "Canary latency p90 by kind", "s",
          "histogram_quantile(0.9, sum by (region, kind, le) (rate(regionctl_canary_duration_seconds_bucket[1m])))",
          "{region} {kind}"),
    Chart("leases", "Seconds until the writer fences itself", "s", "regionctl_lease_fence_in_seconds",
          "{database} in {region}"),
    Chart("held", "Commits held back (bounded mode)", "held",
          "regionctl_commits_held_since_seconds > bool 0", "{database} in {region}"),
)
RANGES = {"5m": 300.0, "1h": 3600.0}
SINCE_RUNBOOK = "runbook"
POINTS = 120  # per series and range: the step follows the range
SCRAPE_LABELS = ("deployment", "instance", "job", "site", "component")


def window(range_name: str, now: float, last_runbook_at: float | None, scrape_s: float) -> tuple[float, float, float]:
    """(start, end, step) of a range; refuses, naming it, a range it does not know."""
    if range_name in RANGES:
        start = now - RANGES[range_name]
    elif range_name == SINCE_RUNBOOK:
        start = (last_runbook_at - 60.0) if last_runbook_at is not None else now - RANGES["5m"]
    else:
        raise InputError(f"range must be one of {', '.join([*RANGES, SINCE_RUNBOOK])}, not {range_name!r}", "range")
    return start, now, max(scrape_s, round((now - start) / POINTS, 1))


def series_of(result: Sequence[Mapping[str, Any]], legend: str) -> list[Series]:
    """Prometheus's matrix result as named series (a label a legend names but the series lacks shows as ?)."""
    out = []
    for item in result:
        labels = _Labels(item.get("metric", {}))
        points = tuple((float(t), float(v)) for t, v in item.get("values", []))
        out.append(Series(legend.format_map(labels), points))
    return sorted(out, key=lambda s: s.label)


class _Labels(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def annotations_of(executions: Sequence[Mapping[str, Any]], drills: Sequence[Mapping[str, Any]],
                   experiments: Sequence[Mapping[str, Any]] = ()) -> list[Annotation]:
    """A runbook's start and end, a drill's fault, a chaos experiment's faults in and out: the moments an
    operator looks for on a chart."""
    marks = []
    for run in experiments:
        if run.get("started_at"):
            marks.append(Annotation(float(run["started_at"]), f"chaos {run['experiment']}"))
            marks.append(Annotation(float(run["started_at"]) + float(run.get("duration_s") or 0),
                                    f"chaos {run['experiment']} reverted"))
    for ex in executions:
        started = ex.get("started_at") or ex.get("created_at")
        if started:
            marks.append(Annotation(float(started), f"{ex['runbook']} {ex['id']} started"))
        if ex.get("ended_at"):
            marks.append(Annotation(float(ex["ended_at"]), f"{ex['runbook']} {ex['id']} {ex.get('status', 'ended')}"))
    for drill in drills:
        if drill.get("fault_at"):
            marks.append(Annotation(float(drill["fault_at"]), f"drill {drill['id']}: {drill.get('fault', 'fault')}"))
    return sorted(marks, key=lambda a: a.at)


class PrometheusReader:
    """The few calls of Prometheus's HTTP API the console makes."""

    def __init__(self, base_url: Callable[[], str | None], timeout_s: float = 5.0) -> None:
        self.base_url = base_url
        self._http = httpx.Client(timeout=timeout_s, trust_env=False)

    def _get(self, path: str, params: Mapping[str, Any]) -> Any:
        base = self.base_url()
        if base is None:
            raise ExternalError("Prometheus has not been started in this deployment")
        try:
            answer = self._http.get(base + path, params=params)
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ExternalError(f"Prometheus at {base} does not answer ({type(exc).__name__})") from None
        if body.get("status") != "success":
            raise ExternalError(f"Prometheus refused {path}: {body.get('error', answer.status_code)}")
        return body["data"]

    def query_range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query_range", {"query": query, "start": start, "end": end, "step": step})
        return list(data.get("result", []))

    def alerts(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/alerts", {}).get("alerts", []))


def alert_rows(alerts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Firing first, then pending; each with its name, severity, labels that tell which, summary and since."""
    rows = []
    for a in alerts:
        labels = dict(a.get("labels", {}))
        name, severity = labels.pop("alertname", "?"), labels.pop("severity", "")
        for scrape_label in SCRAPE_LABELS:  # where the series was scraped from, not what the alert is about
            labels.pop(scrape_label, None)
        rows.append({"alert": name, "state": a.get("state"), "severity": severity, "labels": labels,
                     "summary": a.get("annotations", {}).get("summary", ""), "since": a.get("activeAt")})
    return sorted(rows, key=lambda r: (r["state"] != "firing", r["alert"], sorted(r["labels"].items())))


@dataclass
class History:
    reader: PrometheusReader
    marks: Callable[[], list[Annotation]]
    unavailable: str | None  # why there is no history at all (no binary), or None
    scrape_s: float = 5.0
    clock: Callable[[], float] = time.time

    def charts(self, range_name: str) -> dict[str, Any]:
        """Every chart of the range as SVG, with the annotations drawn; a chart Prometheus cannot answer says so
        in its place and the others still show."""
        if self.unavailable:
            return {"available": False, "reason": self.unavailable, "charts": []}
        marks = self.marks()
        started = [m.at for m in marks if m.label.endswith(" started")]
        start, end, step = window(range_name, self.clock(), max(started, default=None), self.scrape_s)
        charts = []
        for chart in CHARTS:
            try:
                series = series_of(self.reader.query_range(chart.query, start, end, step), chart.legend)
                charts.append({"name": chart.name, "title": chart.title,
                               "svg": render(chart.title, chart.unit, series, marks, start, end)})
            except ExternalError as exc:
                charts.append({"name": chart.name, "title": chart.title, "error": str(exc)})
        return {"available": True, "range": range_name, "start": start, "end": end, "step": step,
                "annotations": [{"at": m.at, "label": m.label} for m in marks if start <= m.at <= end],
                "charts": charts}

    def alerts(self) -> list[dict[str, Any]]:
        if self.unavailable:
            raise ExternalError(self.unavailable)
        return alert_rows(self.reader.alerts())
