"""The platform's HTTP error contract in one place: a request that fails validation is answered with every
problem named by its field, and a client reads an error answer's ``detail`` the same way everywhere."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def validation_problems(exc: RequestValidationError) -> str:
    """``field: what is wrong`` for every problem of a request body, path or query."""
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "path", "query")]
        problems.append(f"{'.'.join(loc) or 'body'}: {err.get('msg')}")
    return "; ".join(problems)


def install_validation_handler(app: FastAPI, status_code: int) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_problems(exc)}, status_code=status_code)


def response_detail(response: httpx.Response) -> str:
    """The ``detail`` of an error answer, else the start of its body, else its reason phrase."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail) if detail else response.text[:200] or response.reason_phrase
