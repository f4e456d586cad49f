"""Calls between services of one region: short connect timeout, a few retries on connection failures only (as
the reference's UI did), and errors that name the service and what went wrong."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from regionctl.errors import ExternalError
from regionctl.shop.kit.retry import backoff_s

CONNECT_RETRIES = 3
# A service keeps an idle connection open far longer than its callers keep it in their pools, so a caller never
# sends a request on a connection the server is closing at that instant ("Server disconnected without sending a
# response"). Both were 5 s (uvicorn's and httpx's defaults): a caller every 5 s (a canary) met that race.
SERVER_KEEPALIVE_S = 30
CLIENT_LIMITS = httpx.Limits(keepalive_expiry=10.0)


class ServiceCallError(ExternalError):
    """A call to another service failed; ``status`` is its HTTP status, or None if it never answered."""

    def __init__(self, service: str, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.status = status
        self.body = body

    @property
    def unavailable(self) -> bool:
        return self.status is None or self.status >= 500

    @property
    def answer_status(self) -> int:
        """503 when the other service was unavailable (retry later), 502 when it refused the call."""
        return 503 if self.unavailable else 502


def timeouts(read_s: float, connect_s: float = 1.0) -> httpx.Timeout:
    return httpx.Timeout(read_s, connect=connect_s)


def _decode(service: str, response: httpx.Response) -> Any:
    try:
        body: Any = response.json() if response.content else None
    except ValueError:
        body = response.text
    if response.status_code >= 400:
        message = body.get("message") if isinstance(body, dict) else None
        raise ServiceCallError(service, f"HTTP {response.status_code} {message or str(body)[:200]}".strip(),
                               response.status_code, body)
    return body


class AsyncServiceClient:
    """JSON calls to one service from async code (the ui)."""

    def __init__(self, service: str, client: httpx.AsyncClient) -> None:
        self.service = service
        self.client = client

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.call_with_headers(method, path, **kwargs))[0]

    async def call_with_headers(self, method: str, path: str, **kwargs: Any) -> tuple[Any, httpx.Headers]:
        """``call``, and the response's headers with the body."""
        for attempt in range(1, CONNECT_RETRIES + 2):
            try:
                response = await self.client.request(method, path, **kwargs)
                return _decode(self.service, response), response.headers
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt > CONNECT_RETRIES:
                    raise ServiceCallError(self.service, f"cannot connect: {exc or type(exc).__name__}") from None
                await asyncio.sleep(backoff_s(attempt, base_s=0.1, cap_s=1.0))
            except httpx.TimeoutException:
                raise ServiceCallError(self.service, f"no answer to {method} {path} in time") from None
            except httpx.HTTPError as exc:
                raise ServiceCallError(self.service, f"{method} {path} failed: {exc or type(exc).__name__}") from None
        raise AssertionError("unreachable")

    async def raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceCallError(self.service, f"{method} {path} failed: {exc or type(exc).__name__}") from None


class SyncServiceClient:
    """JSON calls to one service from synchronous code (checkout calling orders)."""

    def __init__(self, service: str, client: httpx.Client) -> None:
        self.service = service
        self.client = client

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(1, CONNECT_RETRIES + 2):
            try:
                response = self.client.request(method, path, **kwargs)
                return _decode(self.service, response)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt > CONNECT_RETRIES:
                    raise ServiceCallError(self.service, f"cannot connect: {exc or type(exc).__name__}") from None
                time.sleep(backoff_s(attempt, base_s=0.1, cap_s=1.0))
            except httpx.TimeoutException:
                raise ServiceCallError(self.service, f"no answer to {method} {path} in time") from None
            except httpx.HTTPError as exc:
                raise ServiceCallError(self.service, f"{method} {path} failed: {exc or type(exc).__name__}") from None
        raise AssertionError("unreachable")
