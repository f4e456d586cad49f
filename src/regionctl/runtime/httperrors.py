"""The platform's HTTP error contract, for every plane and the shop: one body, one status per kind of problem,
one way back to an exception.

    {"code": 400, "message": "controls.us-east-1: Input should be 'On' or 'Off'", "field": "controls.us-east-1"}

``code`` repeats the status (the reference catalog's shape), ``message`` names the problem in words an operator
can act on, ``field`` names the input at fault when one is. A refusal may add facts of its own (a routing change
adds the rules' verdicts, ``retry_after_s``). Statuses come from ``errors.http_status``; a request the schema
refuses is 400 like any other bad input. ``install`` puts the contract on an app, ``documented`` declares it in
OpenAPI, ``raise_for_error`` turns an answer back into the exception the server raised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from regionctl.errors import RegionctlError, RetryLater, Unauthorized, error_for_status, http_status

log = logging.getLogger("regionctl.http")
DESCRIPTIONS = {400: "invalid request; the message (and field) name the problem", 401: "no or unknown bearer token",
                403: "the caller's role does not permit the call", 404: "not found",
                409: "conflicts with the current state", 502: "another service refused the call",
                503: "a dependency is unavailable; retry later", 504: "waited for a condition that did not come"}


class ErrorBody(BaseModel):
    """Every error answer of every service."""

    code: int
    message: str
    field: str | None = None


def error_body(status: int, message: str, field: str | None = None, **facts: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": status, "message": message}
    if field:
        body["field"] = field
    return body | facts


def error_response(status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None,
                   **facts: Any) -> JSONResponse:
    return JSONResponse(error_body(status, message, field, **facts), status_code=status, headers=headers)


def validation_problems(exc: RequestValidationError) -> tuple[str, str | None]:
    """``field: what is wrong`` for every problem of a request body, path or query, and the first field."""
    problems, fields = [], []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "path", "query", "header"))
        fields.append(loc)
        problems.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request", next((f for f in fields if f), None)


def error_of(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and headers for an exception (pure: the one place an error becomes an answer)."""
    if isinstance(exc, RequestValidationError):
        message, field = validation_problems(exc)
        return 400, error_body(400, message, field), {}
    if isinstance(exc, StarletteHTTPException):
        detail = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in detail:
            detail = "the body is not JSON (or not UTF-8)"
        return exc.status_code, error_body(exc.status_code, detail), dict(exc.headers or {})
    if isinstance(exc, RegionctlError):
        status, headers = http_status(exc), {}
        if isinstance(exc, Unauthorized) and status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        facts: dict[str, Any] = {}
        if isinstance(exc, RetryLater):
            facts["retry_after_s"] = exc.retry_after_s
            headers["Retry-After"] = str(max(1, round(exc.retry_after_s + 0.5)))
        return status, error_body(status, str(exc), exc.field, **facts), headers
    return 500, error_body(500, "internal error"), {}


def install(app: FastAPI) -> None:
    """Every error of ``app`` answered by the contract; its OpenAPI documents 400 where FastAPI says 422."""

    async def answer(request: Request, exc: Exception) -> JSONResponse:
        status, body, headers = error_of(exc)
        if status >= 500:
            if isinstance(exc, RegionctlError):
                log.warning("%s %s failed: %s", request.method, request.url.path, exc)
            else:
                log.exception("unexpected error in %s %s", request.method, request.url.path)
        return JSONResponse(body, status_code=status, headers=headers)

    for kind in (RequestValidationError, StarletteHTTPException, RegionctlError, Exception):
        app.add_exception_handler(kind, answer)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route may answer with."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS.get(code, "error")} for code in codes}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, with FastAPI's 422 replaced by the 400 ``ErrorBody`` we really answer."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    error_ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", {"description": DESCRIPTIONS[400], **error_ref})
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components.setdefault("ErrorBody", ErrorBody.model_json_schema())
    app.openapi_schema = schema
    return schema


def response_message(response: httpx.Response) -> str:
    """The ``message`` of an error answer, else the start of its body, else its reason phrase."""
    body = _json(response)
    message = body.get("message")
    return str(message) if message else response.text[:200] or response.reason_phrase


def raise_for_error(response: httpx.Response, prefix: str = "", extra: Sequence[str] = ()) -> None:
    """Raise the exception an error answer stands for (``prefix`` says who answered); nothing on success.
    ``extra`` names body facts appended to the message (a runbook's problems, say)."""
    if response.status_code < 400:
        return
    body = _json(response)
    message = response_message(response)
    for key in extra:
        if body.get(key):
            message += ":\n  " + "\n  ".join(str(line) for line in body[key])
    retry = body.get("retry_after_s")
    raise error_for_status(response.status_code, prefix + message, body.get("field"),
                           float(retry) if isinstance(retry, (int, float)) else None)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
