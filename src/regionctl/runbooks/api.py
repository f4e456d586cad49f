"""HTTP API of the runbook engine. Reads are open; every mutation needs an operator's bearer token
(``regionctl.operators``) whose role permits it: starting and controlling executions needs ``operate``,
approving and declining needs ``approve``. The caller is the execution's actor and the approval's approver;
a body that names another is refused. Every mutation, refused or not, lands in the audit log.

    GET  /healthz                          the engine is up
    GET  /runbooks                         bundled and deployment runbooks
    GET  /runbooks/{name}                  one document (parameters, steps, source)
    POST /runbooks/validate                {"source": yaml} -> problems with line and field
    POST /executions                       {"runbook", "parameters"} -> 201 the execution
    GET  /executions?status=&limit=        recent executions
    GET  /executions/{id}                  steps, attempts, outputs, timings, recovery time, approvals waited for
    GET  /executions/{id}/history?after=   the journal's events
    POST /executions/{id}/{approve|decline|pause|resume|cancel|retry|skip}

Errors are ``{"error": "...", "problems": [...]}`` with 400 (bad input), 401 (no or unknown token), 403 (the
role does not permit it, or the two-person rule), 404, 409 (not now), 422 (invalid document or body), 502 (a
port failed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from regionctl.errors import ConflictError, ExternalError, Forbidden, InputError, NotFoundError, RegionctlError
from regionctl.operators.audit import AuditLog
from regionctl.operators.roles import APPROVE, OPERATE, WHAT, permits, roles_with
from regionctl.operators.store import Operator
from regionctl.runbooks.engine import Engine
from regionctl.runbooks.loader import DocumentError
from regionctl.runbooks.model import Recovery
from regionctl.runbooks.views import event_view, execution_summary, execution_view, runbook_view


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartRequest(_Body):
    runbook: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    actor: str | None = Field(None, max_length=100, description="the caller, if given: anything else is refused")
    recovery_probe: str | None = Field(None, description="measure the time to this probe's first success")
    recovery_after: str | None = Field(None, description="start probing once this step has succeeded")


class DecisionRequest(_Body):
    approver: str | None = Field(None, max_length=100, description="the caller, if given: anything else is refused")
    comment: str = Field("", max_length=2000)
    step: str | None = None


class ControlRequest(_Body):
    actor: str | None = Field(None, max_length=100, description="the caller, if given: anything else is refused")
    step: str | None = None


class ValidateRequest(_Body):
    source: str = Field(min_length=1, max_length=1_000_000)
    name: str | None = None


STATUS = {InputError: 400, Forbidden: 403, NotFoundError: 404, ConflictError: 409, ExternalError: 502}


def _status_of(exc: RegionctlError) -> int:
    if isinstance(exc, DocumentError):
        return 422
    for kind, code in STATUS.items():
        if isinstance(exc, kind):
            return code
    return 500


def create_app(build_engine: Callable[[], Engine], operators: Authenticator, audit: AuditLog | None = None
               ) -> FastAPI:
    """The app; ``build_engine`` runs inside the server's event loop at startup (then resumes executions)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = build_engine()
        app.state.engine = engine
        engine.resume_all()
        yield
        await engine.close()
        engine.journal.close()

    # every engine route is ``async def``: it runs on the engine's event loop (sync routes would run in a thread
    # pool, and the engine's tasks and signals belong to the loop); the mounted report routes never touch it
    app = FastAPI(title="regionctl runbooks", lifespan=lifespan)
    _errors(app)

    def engine_of(request: Request) -> Engine:
        engine: Engine = request.app.state.engine
        return engine

    def caller(permission: str) -> Callable[..., Awaitable[Operator]]:
        async def authenticated(request: Request, authorization: str | None = Header(None)) -> Operator:
            scheme, _, given = (authorization or "").partition(" ")
            found = operators.authenticate(given) if scheme.lower() == "bearer" and given.strip() else None
            if found is None:
                _audit(request, None, 401, "no or unknown bearer token")
                raise _Unauthorized()
            if not permits(found.role, permission):
                why = (f"operator {found.name} ({found.role}) may not {WHAT[permission]}: that needs the "
                       f"{permission} permission (roles: {', '.join(roles_with(permission))})")
                _audit(request, found, 403, why)
                raise Forbidden(why)
            request.state.operator = found
            return found

        return authenticated

    def _audit(request: Request, who: Operator | None, status: int, result: str) -> None:
        if audit is not None:
            audit.append(who.name if who else "(unknown)", who.role if who else "-", request.method,
                         request.url.path, getattr(request.state, "body", None), result, status)

    @app.middleware("http")
    async def audit_mutations(request: Request, call_next: Callable[[Request], Any]) -> Any:
        """One audit entry per mutation that got past authentication, with its answer."""
        response = await call_next(request)
        who = getattr(request.state, "operator", None)
        if request.method != "GET" and who is not None:
            _audit(request, who, response.status_code, "ok" if response.status_code < 400 else "refused")
        return response

    operate = Depends(caller(OPERATE))
    approve_ = Depends(caller(APPROVE))

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        engine = engine_of(request)
        return {"ok": True, "running": len(engine.journal.unfinished())}

    @app.get("/runbooks")
    async def list_runbooks(request: Request) -> list[dict[str, Any]]:
        return [dict(row) for row in engine_of(request).catalog.summaries()]

    @app.get("/runbooks/{name}")
    async def show_runbook(name: str, request: Request) -> dict[str, Any]:
        doc = engine_of(request).catalog.get(name)
        return runbook_view(doc.runbook, doc.source)

    @app.post("/runbooks/validate")
    async def validate(body: ValidateRequest, request: Request) -> dict[str, Any]:
        doc = engine_of(request).catalog.load_text(body.source, f"{body.name or 'document'}.yaml", name=body.name)
        return {"valid": True, "runbook": runbook_view(doc.runbook)}

    @app.post("/executions", status_code=201)
    async def start(body: StartRequest, request: Request, who: Operator = operate) -> dict[str, Any]:
        request.state.body = body.model_dump(exclude_none=True)
        engine = engine_of(request)
        recovery = None
        if body.recovery_probe:
            recovery = Recovery.model_validate({"probe": body.recovery_probe, "after": body.recovery_after})
        elif body.recovery_after:
            raise InputError("recovery_after needs recovery_probe")
        execution = await engine.start(body.runbook, body.parameters, _as_caller(who, body.actor, "actor"),
                                       recovery=recovery)
        return execution_view(engine.journal.execution(execution.id), engine.journal)

    @app.get("/executions")
    async def list_executions(request: Request, status: str | None = None,
                        limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        journal = engine_of(request).journal
        return [execution_summary(e, journal) for e in journal.executions(status=status, limit=limit)]

    @app.get("/executions/{execution_id}")
    async def show_execution(execution_id: str, request: Request) -> dict[str, Any]:
        journal = engine_of(request).journal
        return execution_view(journal.execution(execution_id), journal)

    @app.get("/executions/{execution_id}/history")
    async def history(execution_id: str, request: Request, after: int = Query(0, ge=0)) -> list[dict[str, Any]]:
        journal = engine_of(request).journal
        journal.execution(execution_id)
        return [event_view(e) for e in journal.events(execution_id, after)]

    @app.post("/executions/{execution_id}/approve")
    async def approve(execution_id: str, body: DecisionRequest, request: Request,
                      who: Operator = approve_) -> dict[str, Any]:
        request.state.body = body.model_dump(exclude_none=True)
        engine = engine_of(request)
        engine.decide(execution_id, _as_caller(who, body.approver, "approver"), True, body.comment, body.step,
                      role=who.role)
        return execution_view(engine.journal.execution(execution_id), engine.journal)

    @app.post("/executions/{execution_id}/decline")
    async def decline(execution_id: str, body: DecisionRequest, request: Request,
                      who: Operator = approve_) -> dict[str, Any]:
        request.state.body = body.model_dump(exclude_none=True)
        engine = engine_of(request)
        if not body.comment.strip():
            raise InputError("comment: say why the step is declined")
        engine.decide(execution_id, _as_caller(who, body.approver, "approver"), False, body.comment, body.step,
                      role=who.role)
        return execution_view(engine.journal.execution(execution_id), engine.journal)

    @app.post("/executions/{execution_id}/{control}")
    async def control(execution_id: str, control: str, body: ControlRequest, request: Request,
                      who: Operator = operate) -> dict[str, Any]:
        request.state.body = body.model_dump(exclude_none=True)
        engine = engine_of(request)
        actor = _as_caller(who, body.actor, "actor")
        if control in ("pause", "resume", "cancel"):
            if body.step is not None:
                raise InputError(f"{control} applies to the whole execution; drop 'step'")
            getattr(engine, control)(execution_id, actor)
        elif control in ("retry", "skip"):
            getattr(engine, control)(execution_id, actor, body.step)
        else:
            raise NotFoundError(f"no control {control!r}; use approve, decline, pause, resume, cancel, retry, skip")
        return execution_view(engine.journal.execution(execution_id), engine.journal)

    return app


class _Unauthorized(Exception):
    pass


class Authenticator(Protocol):
    def authenticate(self, token: str) -> Operator | None: ...


def _as_caller(who: Operator, named: str | None, field: str) -> str:
    """The caller's name; a body naming someone else is refused, never believed."""
    if named is not None and named != who.name:
        raise InputError(f"{field}: the {field} is the authenticated caller ({who.name}), not {named!r}; drop it")
    return who.name


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RegionctlError)
    async def regionctl_error(_request: Request, exc: RegionctlError) -> JSONResponse:
        body: dict[str, Any] = {"error": str(exc)}
        if isinstance(exc, DocumentError):
            body = {"error": f"{len(exc.problems)} problem(s) in the runbook",
                    "problems": [{"file": p.file, "line": p.line, "field": p.field, "message": p.message}
                                 for p in exc.problems]}
        return JSONResponse(body, status_code=_status_of(exc))

    @app.exception_handler(_Unauthorized)
    async def unauthorized(_request: Request, _exc: _Unauthorized) -> JSONResponse:
        return JSONResponse({"error": "missing or unknown bearer token (Authorization: Bearer <operator token>)"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        return JSONResponse({"error": "; ".join(problems), "problems": problems}, status_code=422)

