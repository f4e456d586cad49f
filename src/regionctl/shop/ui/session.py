"""Per-visitor sessions: a random ``SESSIONID`` cookie (the reference gave every visitor the same constant, so
all shared one cart). Its value is the customer id for carts and checkout."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "SESSIONID"
VALID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MAX_AGE_S = 30 * 24 * 3600


def session_for(cookie: str | None) -> tuple[str, bool]:
    """(session id, is new): the cookie's id when well formed, else a fresh random one."""
    if cookie and VALID.match(cookie):
        return cookie, False
    return str(uuid.uuid4()), True


class SessionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session_id, new = session_for(HTTPConnection(scope).cookies.get(COOKIE))
        scope.setdefault("state", {})["session_id"] = session_id

        async def send_cookie(message: Message) -> None:
            if new and message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(
                    "Set-Cookie", f"{COOKIE}={session_id}; Path=/; Max-Age={MAX_AGE_S}; HttpOnly; SameSite=Lax")
            await send(message)

        await self.app(scope, receive, send_cookie)
