"""The app factory every service uses: health (readiness) at the reference's path names, liveness, Prometheus
metrics, errors by the platform's one contract (``runtime.httperrors``), an access log and an ``X-Region`` header."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from regionctl.runtime import httperrors
from regionctl.shop.kit.metrics import CONTENT_TYPE, ServiceMetrics
from regionctl.shop.kit.readiness import Readiness

log = logging.getLogger("regionctl.shop.access")
lifecycle = logging.getLogger("regionctl.shop.service")
PROBE_PATHS = ("/health", "/actuator/health", "/health.html", "/livez", "/metrics")  # polled: never at info
QUIET_PREFIXES = ("/static/", "/assets/")  # at info only when they fail
# Recent FastAPI traces and meters every request through OpenTelemetry unless told not to, asking OpenTelemetry on
# each request whether anyone listens: 3.8% of catalog's CPU under load (py-spy --gil). The shop's metrics are its
# own Prometheus series, so it is told not to (older FastAPI has no such option: nothing to turn off).
_OFF = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
NO_TELEMETRY: dict[str, Any] = ({"telemetry": _OFF} if "telemetry" in inspect.signature(FastAPI.__init__).parameters
                                else {})
# The threads blocking endpoints run in, as many as anyio would have lent (its default limit is 40).
_ENDPOINT_THREADS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="endpoint")
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class ServiceKit:
    """What one service process is made of besides its routes."""

    name: str
    region: str
    metrics: ServiceMetrics
    readiness: Readiness = field(default_factory=Readiness)
    on_start: list[Callable[[], None]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    on_stop_async: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def create(cls, name: str, region: str) -> ServiceKit:
        return cls(name, region, ServiceMetrics(name, region))


def create_app(kit: ServiceKit, *, title: str, description: str, health_paths: Sequence[str],
               json_api: bool = True) -> FastAPI:
    """A FastAPI app with the kit's routes, middleware and error handlers installed."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for start in kit.on_start:
            start()
        lifecycle.info("%s started in %s", kit.name, kit.region)
        try:
            yield
        finally:
            for stop_async in reversed(kit.on_stop_async):
                await stop_async()
            for stop in reversed(kit.on_stop):
                try:
                    stop()
                except Exception:
                    lifecycle.exception("error while stopping %s", kit.name)

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan,
                  docs_url="/docs" if json_api else None, redoc_url=None,
                  openapi_url="/openapi.json" if json_api else None, **NO_TELEMETRY)
    app.state.kit = kit
    app.add_middleware(ObserveMiddleware, kit=kit)
    httperrors.install(app)
    _install_kit_routes(app, kit, health_paths)
    return app


def blocking(endpoint: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """An endpoint whose body blocks (a database call) as a coroutine running that body in one worker thread.

    FastAPI runs a plain ``def`` endpoint in a thread and then validates its result in a thread a second time, both
    through anyio; one hand-off to a plain executor costs a fraction of that (a microbenchmark: 0.85 ms of CPU a
    request through anyio's worker threads, 0.63 through ``run_in_executor``). The signature stays the endpoint's, so
    parameters, validation and the OpenAPI document do not change.
    """

    @functools.wraps(endpoint)
    async def in_thread(*args: P.args, **kwargs: P.kwargs) -> T:
        call = functools.partial(contextvars.copy_context().run, endpoint, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(_ENDPOINT_THREADS, call)

    return in_thread


def _install_kit_routes(app: FastAPI, kit: ServiceKit, health_paths: Sequence[str]) -> None:
    async def health() -> JSONResponse:
        report = await run_in_threadpool(kit.readiness.evaluate)
        kit.metrics.readiness(report.ready, {c.name: c.up for c in report.components})
        return JSONResponse(report.as_json(kit.name, kit.region), status_code=200 if report.ready else 503)

    async def livez() -> PlainTextResponse:
        return PlainTextResponse("OK")

    async def metrics() -> Response:
        return Response(kit.metrics.render(), media_type=CONTENT_TYPE)

    for path in health_paths:
        app.add_api_route(path, health, methods=["GET"], include_in_schema=False)
    app.add_api_route("/livez", livez, methods=["GET"], include_in_schema=False)
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)


class ObserveMiddleware:
    """Metrics per route template, an access log line, and the serving region on every response."""

    def __init__(self, app: ASGIApp, kit: ServiceKit) -> None:
        self.app = app
        self.kit = kit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_region(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append("X-Region", self.kit.region)
            await send(message)

        try:
            await self.app(scope, receive, send_with_region)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.kit.metrics.observe_request(scope["method"], template, status, elapsed)
            path = scope.get("path", "")
            quiet = path in PROBE_PATHS or (path.startswith(QUIET_PREFIXES) and status < 500)
            level = logging.DEBUG if quiet else logging.INFO
            log.log(level, "%s %s %d", scope["method"], path, status,
                    extra={"method": scope["method"], "path": path, "route": template, "status": status,
                           "ms": round(elapsed * 1000, 1)})
