"""The gate in front of every plane's mutating calls: who is calling (the bearer token's operator), whether
their role permits the call, and an audit entry for every mutation with who made it and its answer.

A plane installs it once (``install``: the audit middleware) and puts ``requires(permission)`` on each mutating
route. The check runs before the body is validated, so an unauthenticated call is a 401 whatever it carries;
a refusal names the permission and the roles that have it. Reads stay open.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from fastapi import FastAPI, Request, Response

from regionctl.errors import Forbidden, Unauthorized
from regionctl.operators.audit import AuditLog
from regionctl.operators.roles import WHAT, permits, roles_with
from regionctl.operators.store import Operator

UNKNOWN = "missing or unknown bearer token (Authorization: Bearer <operator token>)"


class Authenticator(Protocol):
    def authenticate(self, token: str) -> Operator | None: ...


class Gate:
    def __init__(self, plane: str, operators: Authenticator, audit: AuditLog | None = None) -> None:
        self.plane = plane
        self.operators = operators
        self.audit = audit

    def identify(self, authorization: str | None) -> Operator | None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return None
        return self.operators.authenticate(given)

    def requires(self, permission: str) -> Callable[[Request], Awaitable[Operator]]:
        """A FastAPI dependency: the caller, when its role permits ``permission``; 401 or 403 otherwise."""

        async def caller(request: Request) -> Operator:
            request.state.params = await _params(request)
            found = self.identify(request.headers.get("authorization"))
            if found is None:
                self._append(request, None, 401, "no or unknown bearer token")
                raise Unauthorized(UNKNOWN)
            if not permits(found.role, permission):
                why = refusal(found, permission)
                self._append(request, found, 403, why)
                raise Forbidden(why)
            request.state.operator = found
            return found

        return caller

    def install(self, app: FastAPI) -> None:
        """One audit entry per mutation that got past the gate, with its answer."""

        @app.middleware("http")
        async def audit_mutations(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                                  ) -> Response:
            response = await call_next(request)
            who = getattr(request.state, "operator", None)
            if request.method != "GET" and who is not None:
                self._append(request, who, response.status_code, "ok" if response.status_code < 400 else "refused")
            return response

    def _append(self, request: Request, who: Operator | None, status: int, result: str) -> None:
        if self.audit is not None:
            self.audit.append(who.name if who else "(unknown)", who.role if who else "-", request.method,
                              f"{self.plane}{request.url.path}", getattr(request.state, "params", None), result,
                              status)


def refusal(who: Operator, permission: str) -> str:
    """Why ``who`` may not: the permission missing and the roles that have it (every plane says it alike)."""
    return (f"operator {who.name} ({who.role}) may not {WHAT[permission]}: that needs the {permission} "
            f"permission (roles: {', '.join(roles_with(permission))})")


async def _params(request: Request) -> dict[str, Any]:
    """The call's query and JSON body, for the audit entry (``AuditLog`` scrubs secrets from them)."""
    params: dict[str, Any] = dict(request.query_params)
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    if isinstance(body, dict):
        params.update(body)
    elif body is not None:
        params["body"] = body
    return params
