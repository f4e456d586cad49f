"""HTTP API of the runbook engine. Reads are open; every mutation needs the control bearer token.

    GET  /healthz                          the engine is up
    GET  /runbooks                         bundled and deployment runbooks
    GET  /runbooks/{name}                  one document (parameters, steps, source)
    POST /runbooks/validate                {"source": yaml} -> problems with line and field
    POST /executions                       {"runbook", "parameters", "actor"} -> 201 the execution
    GET  /executions?status=&limit=        recent executions
    GET  /executions/{id}                  steps, attempts, outputs, timings, recovery time, approvals waited for
    GET  /executions/{id}/history?after=   the journal's events
    POST /executions/{id}/{approve|decline|pause|resume|cancel|retry|skip}

Errors are ``{"error": "...", "problems": [...]}`` with 400 (bad input), 401, 404, 409 (not now), 422 (invalid
document or body), 502 (a port failed).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from regionctl.errors import ConflictError, ExternalError, InputError, NotFoundError, RegionctlError
from regionctl.runbooks.engine import Engine
from regionctl.runbooks.loader import DocumentError
from regionctl.runbooks.model import Recovery
from regionctl.runbooks.views import event_view, execution_summary, execution_view, runbook_view


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartRequest(_Body):
    runbook: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    actor: str = Field("operator", min_length=1, max_length=100)
    recovery_probe: str | None = Field(None, description="measure the time to this probe's first success")
    recovery_after: str | None = Field(None, description="start probing once this step has succeeded")


class DecisionRequest(_Body):
    approver: str = Field(min_length=1, max_length=100)
    comment: str = Field("", max_length=2000)
    step: str | None = None


class ControlRequest(_Body):
    actor: str = Field("operator", min_length=1, max_length=100)
    step: str | None = None


class ValidateRequest(_Body):
    source: str = Field(min_length=1, max_length=1_000_000)
    name: str | None = None


STATUS = {InputError: 400, NotFoundError: 404, ConflictError: 409, ExternalError: 502}


def _status_of(exc: RegionctlError) -> int:
    if isinstance(exc, DocumentError):
        return 422
    for kind, code in STATUS.items():
        if isinstance(exc, kind):
            return code
    return 500


def create_app(build_engine: Callable[[], Engine], token: str) -> FastAPI:
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

    async def authorized(authorization: str | None = Header(None)) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise _Unauthorized()

    auth = [Depends(authorized)]

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

    @app.post("/executions", status_code=201, dependencies=auth)
    async def start(body: StartRequest, request: Request) -> dict[str, Any]:
        engine = engine_of(request)
        recovery = None
        if body.recovery_probe:
            recovery = Recovery.model_validate({"probe": body.recovery_probe, "after": body.recovery_after})
        elif body.recovery_after:
            raise InputError("recovery_after needs recovery_probe")
        execution = await engine.start(body.runbook, body.parameters, body.actor, recovery=recovery)
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

    @app.post("/executions/{execution_id}/approve", dependencies=auth)
    async def approve(execution_id: str, body: DecisionRequest, request: Request) -> dict[str, Any]:
        engine = engine_of(request)
        engine.decide(execution_id, body.approver, True, body.comment, body.step)
        return execution_view(engine.journal.execution(execution_id), engine.journal)

    @app.post("/executions/{execution_id}/decline", dependencies=auth)
    async def decline(execution_id: str, body: DecisionRequest, request: Request) -> dict[str, Any]:
        engine = engine_of(request)
        if not body.comment.strip():
            raise InputError("comment: say why the step is declined")
        engine.decide(execution_id, body.approver, False, body.comment, body.step)
        return execution_view(engine.journal.execution(execution_id), engine.journal)

    @app.post("/executions/{execution_id}/{control}", dependencies=auth)
    async def control(execution_id: str, control: str, body: ControlRequest, request: Request) -> dict[str, Any]:
        engine = engine_of(request)
        if control in ("pause", "resume", "cancel"):
            if body.step is not None:
                raise InputError(f"{control} applies to the whole execution; drop 'step'")
            getattr(engine, control)(execution_id, body.actor)
        elif control in ("retry", "skip"):
            getattr(engine, control)(execution_id, body.actor, body.step)
        else:
            raise NotFoundError(f"no control {control!r}; use approve, decline, pause, resume, cancel, retry, skip")
        return execution_view(engine.journal.execution(execution_id), engine.journal)

    return app


class _Unauthorized(Exception):
    pass


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
        return JSONResponse({"error": "missing or wrong bearer token (Authorization: Bearer <control token>)"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        return JSONResponse({"error": "; ".join(problems), "problems": problems}, status_code=422)

