"""The canary process of one region: runs the region's canaries every interval and serves what they saw.

It lives in its region (killing the region kills its canaries, as losing an AWS region loses its Synthetics),
serves ``/canaries`` (JSON summaries over the window) and ``/metrics`` (Prometheus: runs by result, duration,
success of the last run), and needs nothing but the plan the launcher hands it in the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import httpx
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from regionctl.config import CanarySettings
from regionctl.observe.canaries import Board, Canary, Run, Summary, by_state, judge
from regionctl.runtime import httperrors

PLAN_ENV = "REGIONCTL_CANARY_PLAN"
log = logging.getLogger("regionctl.observe.canaries")
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class CanaryMetrics:
    """The reference's CloudWatchSynthetics metrics (SuccessPercent, Duration, Failed, 2xx/4xx/5xx) per canary."""

    def __init__(self, region: str) -> None:
        self.registry = CollectorRegistry()
        names = ["region", "canary", "kind"]
        self._region = region
        self.runs = Counter("regionctl_canary_runs_total", "canary runs by result", [*names, "result"],
                            registry=self.registry)
        self.responses = Counter("regionctl_canary_responses_total", "canary responses by status class",
                                 [*names, "status"], registry=self.registry)
        self.duration = Histogram("regionctl_canary_duration_seconds", "time to the whole page", names,
                                  buckets=DURATION_BUCKETS, registry=self.registry)
        self.success = Gauge("regionctl_canary_success", "1 when the canary's last run passed", names,
                             registry=self.registry)

    def observe(self, canary: Canary, run: Run) -> None:
        labels = (self._region, canary.name, canary.kind)
        self.runs.labels(*labels, "pass" if run.ok else "fail").inc()
        self.responses.labels(*labels, "none" if run.status is None else f"{run.status // 100}xx").inc()
        self.duration.labels(*labels).observe(run.duration_s)
        self.success.labels(*labels).set(1 if run.ok else 0)


async def check(http: httpx.AsyncClient, canary: Canary, timeout_s: float) -> Run:
    """One GET of the canary's page; never raises."""
    started, clock = time.time(), time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:  # httpx's timeout bounds each phase; the canary's bounds the whole page
        response = await asyncio.wait_for(http.get(canary.url, timeout=timeout_s), timeout_s)
        status = response.status_code
    except (TimeoutError, httpx.TimeoutException):
        error = f"no response within {timeout_s:g} s"
    except Exception as exc:  # noqa: BLE001 - a canary reports what went wrong; it never stops the others
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    ok, reason = judge(status, error, timeout_s)
    return Run(at=started, ok=ok, duration_s=round(time.perf_counter() - clock, 4), status=status, reason=reason)


class CanaryRunner:
    """Runs every canary of a region once per interval, all at once, and keeps the board and metrics."""

    def __init__(self, region: str, canaries: Sequence[Canary], interval_s: float, timeout_s: float, window: int,
                 http: httpx.AsyncClient | None = None) -> None:
        self.region = region
        self.canaries = list(canaries)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.board = Board(self.canaries, window)
        self.metrics = CanaryMetrics(region)
        self.rounds = 0
        self.last_round_at = time.monotonic()  # start counts as a round for staleness
        self._http = http or httpx.AsyncClient(follow_redirects=False, trust_env=False,
                                               headers={"User-Agent": f"regionctl-canary/{region}"})

    async def run_round(self) -> list[Run]:
        runs = await asyncio.gather(*(check(self._http, c, self.timeout_s) for c in self.canaries))
        for canary, run in zip(self.canaries, runs, strict=True):
            self.board.record(canary.name, run)
            self.metrics.observe(canary, run)
        self.rounds += 1
        self.last_round_at = time.monotonic()
        return list(runs)

    async def run_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.run_round()
            except Exception:  # noqa: BLE001 - the board keeps its last runs; /health shows the rounds stalled
                log.exception("canary round failed")
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    def report(self) -> dict[str, Any]:
        summaries = self.board.summaries()
        return {"region": self.region, "interval_s": self.interval_s, "rounds": self.rounds,
                "counts": dict(by_state(summaries)), "canaries": [summary_json(s) for s in summaries]}


def summary_json(summary: Summary) -> dict[str, Any]:
    return {**asdict(summary.canary), "state": summary.state, "runs": summary.runs, "failed": summary.failed,
            "success_percent": summary.success_percent, "duration_p50_s": summary.duration_p50_s,
            "duration_p90_s": summary.duration_p90_s, "duration_max_s": summary.duration_max_s,
            "last": None if summary.last is None else asdict(summary.last), "failing_since": summary.failing_since}


def create_app(runner: CanaryRunner) -> FastAPI:
    app = FastAPI(title=f"regionctl canaries ({runner.region})", docs_url=None, redoc_url=None)
    httperrors.install(app)

    @app.get("/health")
    async def health() -> JSONResponse:
        """503 once no round has completed for three intervals (the loop is stuck, not the shop)."""
        since = time.monotonic() - runner.last_round_at
        stalled = since > 3 * runner.interval_s + runner.timeout_s
        return JSONResponse({"region": runner.region, "rounds": runner.rounds, "since_last_round_s": round(since, 1),
                             "stalled": stalled}, status_code=503 if stalled else 200)

    @app.get("/canaries")  # async: on the loop that runs the rounds, so a report never shows half a round
    async def canaries() -> dict[str, Any]:
        return runner.report()

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(runner.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def dump_plan(region: str, knobs: CanarySettings, canaries: Sequence[Canary]) -> str:
    """What the launcher hands the runner (no secrets: URLs and knobs only)."""
    return json.dumps({"region": region, "interval_s": knobs.interval_s, "timeout_s": knobs.timeout_s,
                       "window": knobs.window, "canaries": [asdict(c) for c in canaries]})


def load_plan(text: str) -> dict[str, Any]:
    """The launcher's plan: region, interval, timeout, window and the canaries (validated by construction)."""
    plan = json.loads(text)
    plan["canaries"] = [Canary(**c) for c in plan["canaries"]]
    return dict(plan)


async def serve(runner: CanaryRunner, host: str, port: int) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(runner), host=host, port=port, log_level="warning",
                                           access_log=False))
    loop_task = asyncio.create_task(runner.run_forever())
    try:
        await server.serve()
    finally:
        loop_task.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    """Run one region's canaries; the plan comes in $REGIONCTL_CANARY_PLAN (JSON, written by observe.launch)."""
    parser = argparse.ArgumentParser(prog="regionctl.observe.canary_runner", description=main.__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    plan = load_plan(os.environ[PLAN_ENV])
    runner = CanaryRunner(plan["region"], plan["canaries"], plan["interval_s"], plan["timeout_s"], plan["window"])
    asyncio.run(serve(runner, args.host, args.port))


if __name__ == "__main__":
    main()
