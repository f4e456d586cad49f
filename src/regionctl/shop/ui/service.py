"""The ui app: pages, per-visitor sessions, HTML error pages, and a readiness that reflects every backend."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from regionctl.errors import RegionctlError
from regionctl.runtime.httperrors import error_of
from regionctl.shop.kit.app import ServiceKit, create_app
from regionctl.shop.kit.http import (
    AiohttpExchange,
    CannotConnect,
    Exchange,
    HttpExchange,
    NoAnswerInTime,
    ServiceCallError,
    SyncExchange,
)
from regionctl.shop.kit.readiness import Check, Degraded
from regionctl.shop.kit.settings import ServiceSettings
from regionctl.shop.ui import checkout_pages, pages
from regionctl.shop.ui.clients import HEALTH_PATHS, Backends
from regionctl.shop.ui.context import STATIC, UiContext, render
from regionctl.shop.ui.session import SessionMiddleware

log = logging.getLogger("regionctl.shop.ui")


def create_ui_app(kit: ServiceKit, backends: Backends, banner: str = "", checks: tuple[Check, ...] = ()) -> FastAPI:
    for check in checks:
        kit.readiness.add(check)
    app = create_app(kit, title="ui", description="The store front.", health_paths=("/actuator/health",),
                     json_api=False)
    app.state.ui = UiContext(kit.region, banner, backends)
    app.add_middleware(SessionMiddleware)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(pages.router)
    app.include_router(checkout_pages.router)
    _install_error_pages(app)
    kit.on_stop_async.append(backends.close)
    return app


def _install_error_pages(app: FastAPI) -> None:
    async def page(request: Request, status: int, message: str) -> HTMLResponse:
        try:
            return await render(request, "error.html", status_code=status, status=status, message=message,
                                cart_count=None)
        except Exception:  # rendering must not fail the error page itself
            return HTMLResponse(f"<h1>Oops! Sorry.</h1><p>{status}</p>", status_code=status)

    async def answer(request: Request, exc: Exception) -> HTMLResponse:
        """The platform's error contract (``runtime.httperrors``) rendered as a page."""
        status, body, _ = error_of(exc)
        if isinstance(exc, ServiceCallError) and exc.status is not None and 400 <= exc.status < 500:
            status = exc.status
        if status >= 500:
            log.warning("%s %s failed: %s", request.method, request.url.path, exc)
            message = "Part of the store is unavailable right now. Please try again in a moment."
        elif status == 404 and isinstance(exc, StarletteHTTPException):
            message = "Page not found."
        else:
            message = body["message"]
        return await page(request, status, message)

    for kind in (RegionctlError, StarletteHTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, answer)  # replace the kit's JSON answers, class by class


def backend_check(name: str, exchange: SyncExchange) -> Check:
    """Ready when the backend's own health endpoint answers 200; degraded when it says it is."""

    def check() -> str:
        try:
            response = exchange.request("GET", HEALTH_PATHS[name])
        except CannotConnect as exc:
            raise RuntimeError(f"cannot connect: {exc}") from None
        except NoAnswerInTime:
            raise RuntimeError("no answer in time") from None
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code} {body.get('reason', '')}".strip())
        if body.get("degraded"):
            raise Degraded(f"{name} is degraded ({body.get('reason', '')})")
        return "UP"

    return Check(name, check)


def from_settings(settings: ServiceSettings) -> FastAPI:
    kit = ServiceKit.create("ui", settings.region)
    urls = {name: settings.endpoint(name) for name in HEALTH_PATHS}
    exchanges: dict[str, Exchange] = {name: AiohttpExchange(url, read_timeout_s=settings.http_timeout_s + 10)
                                      for name, url in urls.items()}
    # the readiness probes go out from worker threads, over http.client: a quarter of httpx's CPU a call
    probes = {name: HttpExchange(url, read_timeout_s=2.0) for name, url in urls.items()}
    checks = tuple(backend_check(name, probe) for name, probe in probes.items())
    backends = Backends.over(exchanges)
    kit.on_stop.extend(probe.close for probe in probes.values())
    return create_ui_app(kit, backends, settings.retail_ui_banner, checks)
