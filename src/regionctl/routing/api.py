"""The control API (FastAPI): reads are open; every mutation needs an operator whose role permits ``operate``
(``operators.gate``), is recorded under that operator's name in the routing audit, and lands in the deployment's
audit log. Errors follow the platform's contract (``runtime.httperrors``); a change the safety rules refuse is a
409 that also carries the rules' verdicts.

Run as a global-plane process: ``python -m regionctl.routing.api --plane <plane.json>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, Path, Query, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from regionctl.errors import InputError
from regionctl.operators.audit import AuditLog
from regionctl.operators.gate import Authenticator, Gate
from regionctl.operators.roles import OPERATE
from regionctl.operators.store import Operator, OperatorStore
from regionctl.routing import schemas
from regionctl.routing.health import HealthMonitor, HealthState
from regionctl.routing.metrics import CONTENT_TYPE_LATEST, PlaneMetrics, render
from regionctl.routing.model import ChangeRequest, Panel, RuleConfig, RuleKind, RuleType, SafetyRule
from regionctl.routing.rules import rule_statuses
from regionctl.routing.service import ControlService
from regionctl.routing.store import AuditEntry, rule_to_dict
from regionctl.routing.view import routing_view
from regionctl.runtime import httperrors
from regionctl.runtime.httperrors import documented

RULE_NAME = Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="lower-case letters, digits and dashes")
bearer = HTTPBearer(auto_error=False, description="an operator's token (`regionctl operators add`)")
AUTH = documented(401, 403)
BAD = documented(400)
_BEARER = Depends(bearer)


def _documented_auth(_: HTTPAuthorizationCredentials | None = _BEARER) -> None:
    """Declares the bearer scheme in OpenAPI; the gate does the check."""


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


HealthReader = Callable[[], Mapping[str, HealthState]]


def create_app(
    service: ControlService,
    operators: Authenticator,
    regions: Sequence[str],
    health: HealthReader = dict,
    monitor: HealthMonitor | None = None,
    metrics: PlaneMetrics | None = None,
    audit: AuditLog | None = None,
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

    app = FastAPI(title="regionctl routing control API", version="1", lifespan=lifespan, responses=BAD,
                  description="Routing controls, safety rules and their audit log for the global plane.")
    httperrors.install(app)
    gate = Gate("routing", operators, audit)
    gate.install(app)
    _add_read_routes(app, service, regions, health, plane_metrics)
    _add_write_routes(app, service, plane_metrics, Depends(gate.requires(OPERATE)))
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


def _add_write_routes(app: FastAPI, service: ControlService, metrics: PlaneMetrics, operate: Any) -> None:
    documented_auth = Depends(_documented_auth)

    @app.post("/changes", response_model=schemas.ChangeOut, dependencies=[documented_auth],
              responses={**AUTH, **BAD, 409: {"model": schemas.RefusalOut, "description": "refused by a rule"}})
    def change(body: schemas.ChangeBody, who: Operator = operate) -> Any:
        """Set one or more routing controls in one transaction, checked against the safety rules."""
        request = ChangeRequest(
            states={name: state == "On" for name, state in body.controls.items()},
            override=frozenset(body.override), actor=_actor(who, body.actor), reason=body.reason,
        )
        result = service.change(request)
        metrics.changes.labels(result.outcome).inc()
        verdicts = [schemas.VerdictOut(rule=v.rule, kind=v.kind.value, outcome=v.outcome.value, reason=v.reason)
                    for v in result.decision.verdicts]
        if not result.decision.allowed:
            wait = result.decision.retry_after_s
            refusal = schemas.RefusalOut(code=409, message=result.decision.reason,
                                         blocking=list(result.decision.blocking),
                                         verdicts=verdicts, audit_id=result.audit_id, retry_after_s=wait)
            headers = {} if wait is None else {"Retry-After": str(max(1, math.ceil(wait)))}
            return JSONResponse(refusal.model_dump(), status_code=409, headers=headers)
        d = result.decision
        return schemas.ChangeOut(
            applied=result.applied, outcome="applied" if result.applied else "no-op", version=result.version,
            reason=d.reason, changed=list(d.changed), before={k: _state(v) for k, v in d.before.items()},
            after={k: _state(v) for k, v in d.after.items()}, verdicts=verdicts, audit_id=result.audit_id,
        )

    @app.put("/rules/{name}", response_model=schemas.AuditOut, dependencies=[documented_auth],
             responses={**AUTH, **BAD})
    def put_rule(body: schemas.RuleBody, name: str = RULE_NAME, who: Operator = operate) -> schemas.AuditOut:
        """Create or replace a safety rule."""
        kind = RuleKind(body.kind)
        if kind is RuleKind.ASSERTION and body.targets:
            raise InputError("an assertion rule takes no targets: its asserted controls are its targets")
        rule = SafetyRule(name=name, kind=kind, watched=tuple(body.controls), targets=tuple(body.targets),
                          config=RuleConfig(RuleType(body.type), body.threshold, body.inverted),
                          wait_period_s=body.wait_period_s)
        return _audit_out(service.put_rule(rule, _actor(who, body.actor)))

    @app.delete("/rules/{name}", response_model=schemas.AuditOut, dependencies=[documented_auth],
                responses={**AUTH, **BAD, **documented(404)})
    def delete_rule(name: str = RULE_NAME, actor: str | None = Query(None, min_length=1, max_length=100),
                    who: Operator = operate) -> schemas.AuditOut:
        """Delete a safety rule (audited)."""
        return _audit_out(service.delete_rule(name, _actor(who, actor)))


def _actor(who: Operator, on_behalf_of: str | None) -> str:
    """The audited actor: the authenticated operator, with what the caller said it acts for (a runbook
    execution, say) after it in parentheses; a name in a body proves nothing, so it never replaces the caller."""
    if not on_behalf_of or on_behalf_of == who.name:
        return who.name
    return f"{who.name} ({on_behalf_of})"


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
    operators = OperatorStore(plane.operators_file, plane.read_token())
    audit = AuditLog(plane.audit_file) if plane.audit_file else None
    app = create_app(service, operators, plane.region_names(), lambda: monitor.states, monitor, metrics, audit)
    uvicorn.run(app, host=plane.api.host, port=plane.api.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
