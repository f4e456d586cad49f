"""The ui's calls to its backends over aiohttp, against a real server on a real socket: bodies, parameters and
headers go out and come back as they did over httpx, an error status names the service and the message, a port
nobody listens on is named, and a backend that answers too late is reported as such."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from regionctl.shop.kit.http import AiohttpExchange, AsyncServiceClient, ServiceCallError

app = FastAPI()


@app.post("/echo/{name}")
async def echo(name: str, request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"name": name, "body": body, "page": request.query_params.get("page"),
                         "key": request.headers.get("idempotency-key")}, headers={"X-Total-Count": "7"})


@app.get("/refuse")
async def refuse() -> JSONResponse:
    return JSONResponse({"message": "no such cart"}, status_code=404)


@app.get("/slow")
async def slow() -> dict[str, str]:
    await asyncio.sleep(2)
    return {"late": "yes"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def with_server(test: Callable[[str], Awaitable[Any]]) -> Any:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        return await test(f"http://127.0.0.1:{server.config.port}")
    finally:
        server.should_exit = True
        await serving


def test_a_call_carries_json_params_and_headers_and_reads_headers_in_any_case() -> None:
    async def test(url: str) -> None:
        client = AsyncServiceClient("orders", AiohttpExchange(url, read_timeout_s=5))
        body, headers = await client.call_with_headers("POST", "/echo/a b", json={"n": 1}, params={"page": 2},
                                                       headers={"Idempotency-Key": "k-1"})
        assert body == {"name": "a b", "body": {"n": 1}, "page": "2", "key": "k-1"}
        assert headers.get("x-total-count") == headers.get("X-Total-Count") == "7"
        raw = await client.raw("GET", "/refuse")
        assert (raw.status_code, raw.json()) == (404, {"message": "no such cart"})
        with pytest.raises(ServiceCallError, match="^carts: HTTP 404 no such cart$") as refused:
            await AsyncServiceClient("carts", client.exchange).call("GET", "/refuse")
        assert (refused.value.status, refused.value.answer_status) == (404, 502)
        await client.exchange.close()

    asyncio.run(with_server(test))


def test_a_backend_nobody_listens_on_is_named_as_unavailable() -> None:
    async def test() -> None:
        client = AsyncServiceClient("catalog", AiohttpExchange(f"http://127.0.0.1:{free_port()}", read_timeout_s=5))
        with pytest.raises(ServiceCallError, match="^catalog: cannot connect") as failed:
            await client.call("GET", "/catalogue")
        assert failed.value.status is None and failed.value.answer_status == 503
        await client.exchange.close()

    asyncio.run(test())


def test_an_answer_later_than_the_read_timeout_is_reported_as_late() -> None:
    async def test(url: str) -> None:
        client = AsyncServiceClient("checkout", AiohttpExchange(url, read_timeout_s=0.3))
        with pytest.raises(ServiceCallError, match=r"^checkout: no answer to GET /slow in time$") as late:
            await client.call("GET", "/slow")
        assert late.value.status is None
        await client.exchange.close()

    asyncio.run(with_server(test))
