"""The console acts through the planes, never beside them: each call a signed-in operator makes on the page is
relayed, with the operator's own bearer token, to the runbook API or the routing control API, which
authenticate, authorize and audit it like a call from the CLI. The console keeps no credential and decides
nothing; it relays the answer (the error contract's body included: a refusal by the safety rules comes back with
its verdicts).

    GET  /api/me                                who the token belongs to (the runbook API's /whoami)
    GET  /api/runbooks                          the runbooks one may start
    POST /api/executions                        {"runbook", "parameters"}: start one
    POST /api/executions/{id}/{verb}            approve, decline, pause, resume, cancel (a comment for decisions)
    POST /api/routing/changes                   {"controls", "override"?, "reason"?}: a routing change
    GET  /api/reports/{id}/conflicts            a reconciliation report's conflicts and proposed resolutions
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from regionctl.errors import ExternalError, NotFoundError, Unauthorized
from regionctl.runtime.httperrors import error_response

VERBS = ("approve", "decline", "pause", "resume", "cancel")
Targets = Mapping[str, Callable[[], str | None]]  # plane -> its base URL now (None: not started)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartBody(_Body):
    runbook: str = Field(min_length=1, max_length=200)
    parameters: dict[str, Any] = Field(default_factory=dict)


class DecisionBody(_Body):
    comment: str = Field("", max_length=2000)
    step: str | None = Field(None, max_length=200)


class ChangeBody(_Body):
    controls: dict[str, str] = Field(min_length=1, max_length=20)
    override: list[str] = Field(default_factory=list, max_length=20)
    reason: str = Field("", max_length=500)


class Relay:
    """Calls a plane as the operator whose token came with the page's request."""

    def __init__(self, targets: Targets, timeout_s: float = 30.0) -> None:
        self.targets = targets
        self._http = httpx.Client(timeout=timeout_s, trust_env=False)

    def call(self, plane: str, method: str, path: str, authorization: str | None, body: Any = None
             ) -> JSONResponse:
        if not authorization:
            raise Unauthorized("sign in with your operator token to act from the console")
        base = self.targets[plane]()
        if base is None:
            raise NotFoundError(f"the {plane} API has not been started in this deployment")
        try:
            answer = self._http.request(method, base + path, json=body, headers={"Authorization": authorization})
        except httpx.HTTPError as exc:
            raise ExternalError(f"the {plane} API at {base} does not answer ({type(exc).__name__})") from None
        try:
            content = answer.json()
        except ValueError:
            return error_response(502, f"the {plane} API answered {answer.status_code} without JSON")
        headers = {k: v for k, v in answer.headers.items() if k.lower() in ("retry-after", "www-authenticate")}
        return JSONResponse(content, status_code=answer.status_code, headers=headers)


def install(app: FastAPI, relay: Relay) -> None:
    """The acting routes; each runs the blocking relay in the thread pool."""

    async def relayed(request: Request, plane: str, method: str, path: str, body: Any = None) -> JSONResponse:
        authorization = request.headers.get("authorization")
        return await run_in_threadpool(relay.call, plane, method, path, authorization, body)

    @app.get("/api/me")
    async def me(request: Request) -> JSONResponse:
        return await relayed(request, "runbooks", "GET", "/whoami")

    @app.get("/api/runbooks")
    async def runbooks(request: Request) -> JSONResponse:
        return await relayed(request, "runbooks", "GET", "/runbooks")

    @app.post("/api/executions")
    async def start(body: StartBody, request: Request) -> JSONResponse:
        return await relayed(request, "runbooks", "POST", "/executions", body.model_dump())

    @app.post("/api/executions/{execution_id}/{verb}")
    async def control(execution_id: str, verb: str, body: DecisionBody, request: Request) -> JSONResponse:
        if verb not in VERBS:
            raise NotFoundError(f"no action {verb!r} from the console; use {', '.join(VERBS)}")
        payload = body.model_dump(exclude_none=True) if verb in ("approve", "decline") else {}
        return await relayed(request, "runbooks", "POST", f"/executions/{execution_id}/{verb}", payload)

    @app.get("/api/reports/{report_id}/conflicts")
    async def conflicts(report_id: str, request: Request) -> JSONResponse:
        return await relayed(request, "runbooks", "GET", f"/reconcile/reports/{quote(report_id, safe='')}/conflicts")

    @app.post("/api/routing/changes")
    async def change(body: ChangeBody, request: Request) -> JSONResponse:
        return await relayed(request, "routing", "POST", "/changes", body.model_dump())
