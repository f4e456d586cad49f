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

    GET  /whoami                           the caller's operator, role and permissions (token needed)

Errors follow the platform's contract (``runtime.httperrors``): 400 (bad input; an invalid runbook adds
``problems``, each ``file:line: field: message``), 401 (no or unknown token), 403 (the role does not permit it,
or the two-person rule), 404, 409 (not now), 503 (a port failed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from regionctl.errors import InputError, NotFoundError
from regionctl.operators.audit import AuditLog
from regionctl.operators.gate import Authenticator, Gate
from regionctl.operators.roles import ADMIN, APPROVE, OPERATE, READ, permits
from regionctl.operators.store import Operator
from regionctl.runbooks.engine import Engine
from regionctl.runbooks.loader import DocumentError
from regionctl.runbooks.model import Recovery
from regionctl.runbooks.views import event_view, execution_summary, execution_view, runbook_view
from regionctl.runtime import httperrors


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
    app = FastAPI(title="regionctl runbooks", lifespan=lifespan,
                  responses=httperrors.documented(400, 401, 403, 404, 409, 503, 504))
    _errors(app)

    def engine_of(request: Request) -> Engine:
        engine: Engine = request.app.state.engine
        return engine

    gate = Gate("runbooks", operators, audit)
    gate.install(app)
    app.state.gate = gate  # the mounted report routes use it too
    operate = Depends(gate.requires(OPERATE))
    approve_ = Depends(gate.requires(APPROVE))
    reader = Depends(gate.requires(READ))

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        engine = engine_of(request)
        return {"ok": True, "running": len(engine.journal.unfinished())}

    @app.get("/whoami")
    async def whoami(who: Operator = reader) -> dict[str, Any]:
        return {"operator": who.name, "role": who.role,
                "permissions": sorted(p for p in (READ, OPERATE, APPROVE, ADMIN) if permits(who.role, p))}

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
        engine = engine_of(request)
        engine.decide(execution_id, _as_caller(who, body.approver, "approver"), True, body.comment, body.step,
                      role=who.role)
        return execution_view(engine.journal.execution(execution_id), engine.journal)

    @app.post("/executions/{execution_id}/decline")
    async def decline(execution_id: str, body: DecisionRequest, request: Request,
                      who: Operator = approve_) -> dict[str, Any]:
        engine = engine_of(request)
        if not body.comment.strip():
            raise InputError("comment: say why the step is declined")
        engine.decide(execution_id, _as_caller(who, body.approver, "approver"), False, body.comment, body.step,
                      role=who.role)
        return execution_view(engine.journal.execution(execution_id), engine.journal)

    @app.post("/executions/{execution_id}/{control}")
    async def control(execution_id: str, control: str, body: ControlRequest, request: Request,
                      who: Operator = operate) -> dict[str, Any]:
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


def _as_caller(who: Operator, named: str | None, field: str) -> str:
    """The caller's name; a body naming someone else is refused, never believed."""
    if named is not None and named != who.name:
        raise InputError(f"{field}: the {field} is the authenticated caller ({who.name}), not {named!r}; drop it")
    return who.name


def _errors(app: FastAPI) -> None:
    httperrors.install(app)

    @app.exception_handler(DocumentError)
    async def invalid_document(_request: Request, exc: DocumentError) -> JSONResponse:
        return httperrors.error_response(400, f"{len(exc.problems)} problem(s) in the runbook", problems=[
            f"{p.file}:{p.line}: {p.field}: {p.message}" for p in exc.problems])
