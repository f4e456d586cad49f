"""The app factory every service uses: health (readiness) at the reference's path names, liveness, Prometheus
metrics, errors as ``{code, message}`` with the right status, an access log and an ``X-Region`` header."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from regionctl.errors import ConflictError, ExternalError, InputError, NotFoundError, OperationTimeout
from regionctl.shop.kit.http import ServiceCallError
from regionctl.shop.kit.metrics import CONTENT_TYPE, ServiceMetrics
from regionctl.shop.kit.readiness import Readiness

log = logging.getLogger("regionctl.shop.access")
lifecycle = logging.getLogger("regionctl.shop.service")
HANDLED_ERRORS = (InputError, NotFoundError, ConflictError, ExternalError, OperationTimeout)
PROBE_PATHS = ("/health", "/actuator/health", "/health.html", "/livez", "/metrics")  # polled: never at info
QUIET_PREFIXES = ("/static/", "/assets/")  # at info only when they fail


class ErrorBody(BaseModel):
    """Every error of the JSON services (the reference catalog's shape)."""

    code: int
    message: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route may answer with."""
    text = {400: "invalid request", 404: "not found", 409: "conflicts with the current state",
            502: "another service refused the call", 503: "a dependency is unavailable; retry later"}
    return {code: {"model": ErrorBody, "description": text.get(code, "error")} for code in codes}


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
                  openapi_url="/openapi.json" if json_api else None)
    app.state.kit = kit
    app.add_middleware(ObserveMiddleware, kit=kit)
    _install_error_handlers(app)
    _install_kit_routes(app, kit, health_paths)
    if json_api:
        app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


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


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status_code=status)


def status_for(exc: Exception) -> int:
    """The HTTP status of an error raised by service code (pure; the table of the exception tree)."""
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, ServiceCallError):
        return 503 if exc.unavailable else 502
    if isinstance(exc, (ExternalError, OperationTimeout)):
        return 503
    return 500


def _install_error_handlers(app: FastAPI) -> None:
    async def validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, describe_validation(exc.errors()))

    async def http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        response = error_response(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def ours(request: Request, exc: Exception) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.warning("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(status, str(exc))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(500, "internal error")

    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
    for kind in HANDLED_ERRORS:
        app.add_exception_handler(kind, ours)
    app.add_exception_handler(Exception, unexpected)


def describe_validation(problems: Sequence[Any]) -> str:
    """FastAPI's validation errors as one line naming each bad field."""
    parts = []
    for problem in problems:
        loc = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "request"
        parts.append(f"{loc}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, with FastAPI's 422 replaced by the 400 ``{code, message}`` we really answer."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    error_ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", {"description": "invalid request", **error_ref})
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components.setdefault("ErrorBody", ErrorBody.model_json_schema())
    app.openapi_schema = schema
    return schema


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
