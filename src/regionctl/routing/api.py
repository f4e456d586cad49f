"""The control API (FastAPI): reads are open, every mutation needs the bearer token; every change is audited.

Run as a global-plane process: ``python -m regionctl.routing.api --plane <plane.json>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from regionctl.errors import ConflictError, InputError, NotFoundError, RegionctlError
from regionctl.routing import schemas
from regionctl.routing.health import HealthMonitor, HealthState
from regionctl.routing.metrics import CONTENT_TYPE_LATEST, PlaneMetrics, render
from regionctl.routing.model import ChangeRequest, Panel, RuleConfig, RuleKind, RuleType, SafetyRule
from regionctl.routing.rules import rule_statuses
from regionctl.routing.service import ControlService
from regionctl.routing.store import AuditEntry, rule_to_dict
from regionctl.routing.view import routing_view

MUTATING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
RULE_NAME = Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="lower-case letters, digits and dashes")
bearer = HTTPBearer(auto_error=False, description="the control token (`regionctl` keeps it in secrets/control-token)")
AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorOut, "description": "missing or wrong bearer token"},
}
BAD: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorOut, "description": "the body cannot be parsed at all"},
    422: {"model": schemas.ErrorOut, "description": "malformed request; the detail names the problem"},
}


_BEARER = Depends(bearer)


def _documented_auth(_: HTTPAuthorizationCredentials | None = _BEARER) -> None:
    """Declares the bearer scheme in OpenAPI; the check itself runs first, in the middleware."""


def _state(on: bool) -> schemas.State:
    return "On" if on else "Off"


def _audit_out(entry: AuditEntry) -> schemas.AuditOut:
    r = entry.record
    return schemas.AuditOut(
        id=entry.id, at=r.at, time=datetime.fromtimestamp(r.at, UTC).isoformat(), actor=r.actor, action=r.action,
        outcome=r.outcome, summary=r.summary, detail=r.detail,
    )


def _rules_out(panel: Panel, now: float) -> list[schemas.RuleOut]:
    statuses = {s.rule: s for s in rule_statuses(panel, now)}
    result = []
    for name, rule in sorted(panel.rules.items()):
        status = statuses[name]
        result.append(schemas.RuleOut(
            **{k: v for k, v in rule_to_dict(rule).items()}, description=status.description, holds=status.holds,
            wait_remaining_s=status.wait_remaining_s, status=status.reason,
        ))
    return result


def _controls_out(panel: Panel) -> list[schemas.ControlOut]:
    return [
        schemas.ControlOut(name=c.name, state=_state(c.on), changed_at=c.changed_at or None)
        for c in sorted(panel.controls.values(), key=lambda c: c.name)
    ]


def _error_text(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "malformed request: " + "; ".join(parts)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()]
        return JSONResponse({"detail": _error_text(exc), "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in detail:
            detail = "malformed request: the body is not JSON (or not UTF-8)"
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RegionctlError)
    async def _ours(_: Request, exc: RegionctlError) -> JSONResponse:
        status = 422 if isinstance(exc, InputError) else 404 if isinstance(exc, NotFoundError) else 409 if isinstance(
            exc, ConflictError) else 503
        return JSONResponse({"detail": str(exc)}, status_code=status)


def _install_auth(app: FastAPI, token: str) -> None:
    expected = token.encode()

    @app.middleware("http")
    async def _require_token(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Checked before the body is read, so an unauthenticated mutation is a 401 whatever it carries."""
        if request.method in MUTATING:
            header = request.headers.get("authorization", "")
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                return JSONResponse(
                    {"detail": "this call changes routing and needs 'Authorization: Bearer <control token>'"},
                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
            if not hmac.compare_digest(given.strip().encode(), expected):
                return JSONResponse({"detail": "the bearer token was not accepted"}, status_code=401,
                                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return await call_next(request)


HealthReader = Callable[[], Mapping[str, HealthState]]


def create_app(
    service: ControlService,
    token: str,
    regions: Sequence[str],
    health: HealthReader = dict,
    monitor: HealthMonitor | None = None,
    metrics: PlaneMetrics | None = None,
) -> FastAPI:
    """The control API over ``service``. ``monitor``, when given, runs in the background for the status view."""
    plane_metrics = metrics or PlaneMetrics("routing-api")

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(monitor.run()) if monitor is not None else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="regionctl routing control API", version="1", lifespan=lifespan, responses={**BAD},
                  description="Routing controls, safety rules and their audit log for the global plane.")
    _install_errors(app)
    _install_auth(app, token)
    _add_read_routes(app, service, regions, health, plane_metrics)
    _add_write_routes(app, service, plane_metrics)
    return app


def _add_read_routes(app: FastAPI, service: ControlService, regions: Sequence[str], health: HealthReader,
                     metrics: PlaneMetrics) -> None:
    @app.get("/health")
    def alive() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", response_class=Response)
    def prometheus() -> Response:
        panel = service.panel()
        metrics.observe_controls(panel.states(), True)
        view = routing_view(regions, panel.states(), health())
        metrics.observe_routable({r.region: r.routable for r in view.regions})
        return Response(render(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/state", response_model=schemas.StateOut)
    def state() -> schemas.StateOut:
        panel = service.panel()
        return schemas.StateOut(version=panel.version, at=time.time(),
                                controls={n: _state(c.on) for n, c in sorted(panel.controls.items())})

    @app.get("/controls", response_model=list[schemas.ControlOut])
    def controls() -> list[schemas.ControlOut]:
        return _controls_out(service.panel())

    @app.get("/rules", response_model=list[schemas.RuleOut])
    def rules() -> list[schemas.RuleOut]:
        return _rules_out(service.panel(), service.clock())

    @app.get("/status", response_model=schemas.StatusOut)
    def status() -> schemas.StatusOut:
        panel = service.panel()
        view = routing_view(regions, panel.states(), health())
        return schemas.StatusOut(
            version=panel.version, routing=view.explain(), controls=_controls_out(panel),
            rules=_rules_out(panel, service.clock()),
            regions=[schemas.RegionOut(
                region=r.region, control=None if r.control_on is None else _state(r.control_on),
                health=schemas.HealthOut(healthy=r.health.healthy, last_ok=r.health.last_ok,
                                         detail=r.health.describe(), checked_at=r.health.checked_at,
                                         degraded=r.health.degraded),
                routable=r.routable, reason=r.reason, degraded=r.degraded,
                receives_traffic=r.region in view.healthy) for r in view.regions],
        )

    @app.get("/audit", response_model=list[schemas.AuditOut])
    def audit(limit: int = Query(50, ge=1, le=1000), before_id: int | None = Query(None, ge=1)) -> list[
            schemas.AuditOut]:
        return [_audit_out(e) for e in service.audit(limit=limit, before_id=before_id)]


def _add_write_routes(app: FastAPI, service: ControlService, metrics: PlaneMetrics) -> None:
    @app.post("/changes", response_model=schemas.ChangeOut, dependencies=[Depends(_documented_auth)],
              responses={**AUTH, **BAD, 409: {"model": schemas.RefusalOut, "description": "refused by a rule"}})
    def change(body: schemas.ChangeBody) -> Any:
        """Set one or more routing controls in one transaction, checked against the safety rules."""
        request = ChangeRequest(
            states={name: state == "On" for name, state in body.controls.items()},
            override=frozenset(body.override), actor=body.actor, reason=body.reason,
        )
        result = service.change(request)
        metrics.changes.labels(result.outcome).inc()
        verdicts = [schemas.VerdictOut(rule=v.rule, kind=v.kind.value, outcome=v.outcome.value, reason=v.reason)
                    for v in result.decision.verdicts]
        if not result.decision.allowed:
            wait = result.decision.retry_after_s
            refusal = schemas.RefusalOut(detail=result.decision.reason, blocking=list(result.decision.blocking),
                                         verdicts=verdicts, audit_id=result.audit_id, retry_after_s=wait)
            headers = {} if wait is None else {"Retry-After": str(max(1, math.ceil(wait)))}
            return JSONResponse(refusal.model_dump(), status_code=409, headers=headers)
        d = result.decision
        return schemas.ChangeOut(
            applied=result.applied, outcome="applied" if result.applied else "no-op", version=result.version,
            reason=d.reason, changed=list(d.changed), before={k: _state(v) for k, v in d.before.items()},
            after={k: _state(v) for k, v in d.after.items()}, verdicts=verdicts, audit_id=result.audit_id,
        )

    @app.put("/rules/{name}", response_model=schemas.AuditOut, dependencies=[Depends(_documented_auth)],
             responses={**AUTH, **BAD})
    def put_rule(body: schemas.RuleBody, name: str = RULE_NAME) -> schemas.AuditOut:
        """Create or replace a safety rule."""
        kind = RuleKind(body.kind)
        if kind is RuleKind.ASSERTION and body.targets:
            raise InputError("an assertion rule takes no targets: its asserted controls are its targets")
        rule = SafetyRule(name=name, kind=kind, watched=tuple(body.controls), targets=tuple(body.targets),
                          config=RuleConfig(RuleType(body.type), body.threshold, body.inverted),
                          wait_period_s=body.wait_period_s)
        return _audit_out(service.put_rule(rule, body.actor))

    @app.delete("/rules/{name}", response_model=schemas.AuditOut, dependencies=[Depends(_documented_auth)],
                responses={**AUTH, **BAD, 404: {"model": schemas.ErrorOut, "description": "no such rule"}})
    def delete_rule(name: str = RULE_NAME, actor: str = Query("api", min_length=1, max_length=100)) -> (
            schemas.AuditOut):
        """Delete a safety rule (audited)."""
        return _audit_out(service.delete_rule(name, actor))


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the control API of a global plane described by a plane file."""
    import uvicorn

    from regionctl.routing.plane import load_plane, open_store

    parser = argparse.ArgumentParser(prog="regionctl.routing.api", description=main.__doc__)
    parser.add_argument("--plane", required=True, help="plane.json written by routing.launch")
    args = parser.parse_args(argv)
    plane = load_plane(args.plane)
    metrics = PlaneMetrics("routing-api")
    monitor = HealthMonitor(plane.endpoints(), plane.health_config(), listener=metrics.observe_health)
    service = ControlService(open_store(plane))
    app = create_app(service, plane.read_token(), plane.region_names(), lambda: monitor.states, monitor, metrics)
    uvicorn.run(app, host=plane.api.host, port=plane.api.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
