"""The operations console: one page that shows the whole deployment, and the system metrics behind it.

A global-plane process (it outlives either region). ``/`` is the page (it polls ``/api/overview``), ``/metrics``
exposes the reference's "System dashboard" as Prometheus gauges (database lag and writer per region, regional
store backlog, canaries by state, attention flags): the gaps the reference listed (catalog lag, reverse-direction
lag, routing state, alarms) included. Reading needs no credential; acting (``acting``: start a runbook, decide a
waiting step, change routing) relays the signed-in operator's own token to the planes, which authorize and audit.
``/api/history`` draws the metrics history (Prometheus) as charts; ``/executions/ID`` is one runbook execution's
page (timeline, recovery, outputs, reports).
"""

from __future__ import annotations

import argparse
import html
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import FastAPI, Path, Query, Response
from fastapi.responses import HTMLResponse
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from regionctl.errors import InputError, NotFoundError
from regionctl.observe import acting, execution_page
from regionctl.observe.history import History
from regionctl.observe.overview import Sources, collect
from regionctl.runtime import httperrors

PAGE = "console.html"
SCRAPE_MAX_AGE_S = 3.0  # below the 5 s scrape interval, above the page's 2 s poll


class CachedOverview:
    """The overview read at most once per ``ttl_s``, however many pages and scrapers ask."""

    def __init__(self, read: Callable[[], dict[str, Any]], ttl_s: float = 1.0,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._read, self._ttl_s, self._now = read, ttl_s, now
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._at = 0.0

    def get(self, max_age_s: float | None = None) -> dict[str, Any]:
        """The overview no older than ``max_age_s`` (default the cache's ttl)."""
        with self._lock:
            limit = self._ttl_s if max_age_s is None else max_age_s
            if self._value is None or self._now() - self._at > limit:
                self._value, self._at = self._read(), self._now()
            return self._value


def system_metrics(overview: dict[str, Any]) -> bytes:
    """The overview as Prometheus gauges, in a registry built per scrape (nothing stale survives a scrape)."""
    registry = CollectorRegistry()
    lag_bytes = Gauge("regionctl_globaldb_lag_bytes", "replay lag of a standby member", ["database", "region"],
                      registry=registry)
    lag_seconds = Gauge("regionctl_globaldb_lag_seconds", "replay lag of a standby member in time",
                        ["database", "region"], registry=registry)
    writer = Gauge("regionctl_globaldb_writer", "1 for the region holding the database's writer",
                   ["database", "region"], registry=registry)
    backlog = Gauge("regionctl_regionalstore_direction_backlog", "changes not yet applied at the target",
                    ["source", "target"], registry=registry)
    routable = Gauge("regionctl_console_region_routable", "1 when the region receives traffic", ["region"],
                     registry=registry)
    canaries = Gauge("regionctl_console_canaries", "canaries of a region by the state of their last run",
                     ["region", "state"], registry=registry)
    flags = Gauge("regionctl_console_attention", "attention flags raised now, by severity", ["severity"],
                  registry=registry)
    up = Gauge("regionctl_console_source_up", "1 when the console could read the part", ["part"], registry=registry)
    degraded = Gauge("regionctl_console_region_degraded", "1 when the region serves but something further away is "
                     "missing", ["region"], registry=registry)
    at_risk = Gauge("regionctl_globaldb_at_risk_transactions", "transactions a failover right now would lose",
                    ["database"], registry=registry)
    at_risk_bytes = Gauge("regionctl_globaldb_at_risk_bytes", "WAL a failover right now would lose", ["database"],
                          registry=registry)
    lease_fence_in = Gauge("regionctl_lease_fence_in_seconds", "seconds until the writer fences itself unless its "
                           "lease is renewed", ["database", "region"], registry=registry)
    held_since = Gauge("regionctl_commits_held_since_seconds", "epoch seconds since when commits wait for the "
                       "standby (bounded mode); 0 when they do not", ["database", "region", "mode"],
                       registry=registry)
    waiting = Gauge("regionctl_runbook_waiting_for_approval", "1 while the execution waits for an approval",
                    ["runbook", "execution"], registry=registry)
    for execution in (overview.get("runbooks") or {}).get("data") or []:
        if execution.get("waiting_for"):
            waiting.labels(execution["runbook"], execution["id"]).set(1)
    for part in ("routing", "databases", "store", "runbooks", "agents"):
        if part in overview:
            up.labels(part).set(1 if overview[part]["ok"] else 0)
    for agent in (overview.get("agents") or {}).get("data") or []:
        for database, lease in (agent.get("leases") or {}).items():
            lease_fence_in.labels(database, agent["region"]).set(lease.get("fence_in_s") or 0)
            held_since.labels(database, agent["region"], lease.get("mode", "?")).set(lease.get("held_since") or 0)
    for db in overview["databases"]["data"] or []:
        for member in db["members"]:
            writer.labels(db["name"], member["region"]).set(1 if member["region"] == db["writer"] else 0)
            if member["lag_bytes"] is not None:
                lag_bytes.labels(db["name"], member["region"]).set(member["lag_bytes"])
            if member["lag_ms"] is not None:
                lag_seconds.labels(db["name"], member["region"]).set(member["lag_ms"] / 1000)
        risk = db.get("at_risk") or {}
        if risk.get("count") is not None:
            at_risk.labels(db["name"]).set(risk["count"])
            at_risk_bytes.labels(db["name"]).set(risk.get("window_bytes") or 0)
    for direction in (overview["store"]["data"] or {}).get("directions", []):
        if direction["backlog"] is not None:
            backlog.labels(direction["source"], direction["target"]).set(direction["backlog"])
    for region in (overview["routing"]["data"] or {}).get("regions", []):
        routable.labels(region["region"]).set(1 if region["routable"] else 0)
        degraded.labels(region["region"]).set(1 if region.get("degraded") else 0)
    for region, part in overview["canaries"].items():
        up.labels(f"canaries/{region}").set(1 if part["ok"] else 0)
        for state, count in ((part["data"] or {}).get("counts") or {}).items():
            canaries.labels(region, state).set(count)
    for severity in ("critical", "warning"):
        flags.labels(severity).set(sum(1 for f in overview["attention"] if f["severity"] == severity))
    return generate_latest(registry)


@dataclass(frozen=True)
class Pages:
    """What the console serves beyond the overview, each optional (a unit test's fake sources have none)."""

    drill: Callable[[str], str] | None = None  # a stored drill's page
    history: Callable[[], History] | None = None  # the metrics history
    execution: Callable[[str], tuple[Any, Any]] | None = None  # a runbook execution's view and its events


def create_app(overview: CachedOverview, title: str, pages: Pages = Pages(), relay: acting.Relay | None = None
               ) -> FastAPI:
    app = FastAPI(title=title, docs_url=None, redoc_url=None)
    httperrors.install(app)
    if relay is not None:
        acting.install(app, relay)
    drill_page = pages.drill
    page = resources.files("regionctl.observe").joinpath(PAGE).read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def console() -> HTMLResponse:
        return HTMLResponse(page.replace("{{title}}", html.escape(title)))

    @app.get("/api/overview")
    async def api_overview() -> dict[str, Any]:
        return await run_in_threadpool(overview.get)

    @app.get("/metrics")
    async def metrics() -> Response:
        # a scrape takes what an open page read in the last scrape interval (2 s polls): one read serves both
        body = system_metrics(await run_in_threadpool(overview.get, SCRAPE_MAX_AGE_S))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/drills/{drill_id}", response_class=HTMLResponse)
    async def drill(drill_id: str) -> HTMLResponse:
        """A stored drill's page (verdict, figures, timeline), as `regionctl drill run` wrote it."""
        if drill_page is None:
            return HTMLResponse("no drills in this console", status_code=404)
        try:
            return HTMLResponse(await run_in_threadpool(drill_page, drill_id))
        except (InputError, NotFoundError) as exc:
            return HTMLResponse(html.escape(str(exc)), status_code=400 if isinstance(exc, InputError) else 404)

    @app.get("/api/history")
    async def history(range: str = Query("5m", max_length=20)) -> dict[str, Any]:  # noqa: A002 - the API's word
        """Every chart of the range as SVG, runbooks and drills drawn on them (see observe/history.py)."""
        if pages.history is None:
            raise NotFoundError("no metrics history in this console")
        return await run_in_threadpool(lambda: pages.history().charts(range))  # type: ignore[misc]

    @app.get("/executions/{execution_id}", response_class=HTMLResponse)
    async def execution(execution_id: str = Path(..., pattern=r"^[A-Za-z0-9._-]{1,100}$")) -> HTMLResponse:
        """One runbook execution's timeline, recovery, outputs and reports."""
        if pages.execution is None:
            raise NotFoundError("no runbook engine behind this console")
        view, events = await run_in_threadpool(pages.execution, execution_id)
        return HTMLResponse(execution_page.page(view, events))

    @app.get("/health")  # async: never waits behind overview reads in the thread pool
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def build(sources: Sources, regions: tuple[str, ...], title: str, ttl_s: float = 1.0,
          now: Callable[[], float] = time.monotonic) -> FastAPI:
    targets = getattr(sources, "acting_targets", None)
    pages = Pages(getattr(sources, "drill_page", None), getattr(sources, "history", None),
                  getattr(sources, "execution_and_events", None))
    return create_app(CachedOverview(lambda: collect(sources, regions), ttl_s, now), title, pages,
                      acting.Relay(targets()) if targets else None)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the operations console of the deployment whose settings this process inherited."""
    import uvicorn

    from regionctl.config import load_settings
    from regionctl.observe.overview import LiveSources

    parser = argparse.ArgumentParser(prog="regionctl.observe.console", description=main.__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    app = build(LiveSources(settings), settings.regions, f"regionctl console ({settings.env})")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
