"""Calls between services of one region: short connect timeout, a few retries on connection failures only (as
the reference's UI did), and errors that name the service and what went wrong."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx

from regionctl.errors import ExternalError
from regionctl.shop.kit.retry import backoff_s

CONNECT_RETRIES = 3
# A service keeps an idle connection open far longer than its callers keep it in their pools, so a caller never
# sends a request on a connection the server is closing at that instant ("Server disconnected without sending a
# response"). Both were 5 s (uvicorn's and httpx's defaults): a caller every 5 s (a canary) met that race.
SERVER_KEEPALIVE_S = 30
CLIENT_KEEPALIVE_S = 10.0
CLIENT_LIMITS = httpx.Limits(keepalive_expiry=CLIENT_KEEPALIVE_S)


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


def _decode(service: str, response: httpx.Response | Answer) -> Any:
    try:
        body: Any = response.json() if response.content else None
    except ValueError:
        body = response.text
    if response.status_code >= 400:
        message = body.get("message") if isinstance(body, dict) else None
        raise ServiceCallError(service, f"HTTP {response.status_code} {message or str(body)[:200]}".strip(),
                               response.status_code, body)
    return body


@dataclass(frozen=True)
class Answer:
    """A service's answer, read whole. ``headers`` look names up without regard to case."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class CannotConnect(Exception):
    """No connection was made: the request was never sent, so it is safe to send again."""


class NoAnswerInTime(Exception):
    """The request went out and no answer came within the read timeout."""


class Exchange(Protocol):
    """One service's address, as async code talks to it: a request out, the whole answer back.

    Raises CannotConnect, NoAnswerInTime, or OSError for anything else that went wrong on the way. The ui talks
    to real services through ``AiohttpExchange``; tests put their in-process apps behind this interface.
    """

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, headers: Mapping[str, str] | None = None) -> Answer: ...

    async def close(self) -> None: ...


class AiohttpExchange:
    """An ``Exchange`` over aiohttp with one pool of keep-alive connections to ``base_url``.

    The session is made on first use, inside the server's event loop (aiohttp binds it to the loop it is made in).
    """

    def __init__(self, base_url: str, read_timeout_s: float, connect_timeout_s: float = 1.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=CLIENT_KEEPALIVE_S, use_dns_cache=True)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, auto_decompress=True,
                                                  raise_for_status=False)
        return self._session

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, headers: Mapping[str, str] | None = None) -> Answer:
        try:
            async with self._open().request(method, self.base_url + path, params=params, json=json,
                                             headers=headers, allow_redirects=False) as response:
                return Answer(response.status, response.headers, await response.read())
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise CannotConnect(str(exc) or "no connection in time") from None
        except TimeoutError:  # aiohttp's read timeout (ServerTimeoutError) is one
            raise NoAnswerInTime() from None
        except aiohttp.ClientError as exc:
            raise OSError(str(exc) or type(exc).__name__) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AsyncServiceClient:
    """JSON calls to one service from async code (the ui)."""

    def __init__(self, service: str, exchange: Exchange) -> None:
        self.service = service
        self.exchange = exchange

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.call_with_headers(method, path, **kwargs))[0]

    async def call_with_headers(self, method: str, path: str, **kwargs: Any) -> tuple[Any, Mapping[str, str]]:
        """``call``, and the response's headers with the body; a connection never made is tried again."""
        for attempt in range(1, CONNECT_RETRIES + 2):
            try:
                answer = await self._send(method, path, kwargs)
                return _decode(self.service, answer), answer.headers
            except CannotConnect as exc:
                if attempt > CONNECT_RETRIES:
                    raise ServiceCallError(self.service, f"cannot connect: {exc or 'refused'}") from None
                await asyncio.sleep(backoff_s(attempt, base_s=0.1, cap_s=1.0))
        raise AssertionError("unreachable")

    async def raw(self, method: str, path: str, **kwargs: Any) -> Answer:
        """The answer whatever its status (the caller reads it), tried once."""
        try:
            return await self._send(method, path, kwargs)
        except CannotConnect as exc:
            raise ServiceCallError(self.service, f"cannot connect: {exc or 'refused'}") from None

    async def _send(self, method: str, path: str, kwargs: dict[str, Any]) -> Answer:
        try:
            return await self.exchange.request(method, path, **kwargs)
        except NoAnswerInTime:
            raise ServiceCallError(self.service, f"no answer to {method} {path} in time") from None
        except OSError as exc:
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
