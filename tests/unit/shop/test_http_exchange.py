"""Calls between services against a real server on a real socket, the ui's over aiohttp and checkout's and the
outbox's over ``http.client``: bodies, parameters and headers go out and come back as they did over httpx, an error
status names the service and the message, a port nobody listens on is named, a backend that answers too late is
reported as such, and a kept connection is reused only while it is fresh."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from regionctl.shop.kit import http
from regionctl.shop.kit.http import (
    AiohttpExchange,
    AsyncServiceClient,
    HttpExchange,
    ServiceCallError,
    SyncServiceClient,
)
from regionctl.shop.kit.readiness import run_check
from regionctl.shop.orders.outbox import HttpDelivery, OutboxEvent
from regionctl.shop.ui.service import backend_check

app = FastAPI()


@app.post("/echo/{name}")
async def echo(name: str, request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"name": name, "body": body, "page": request.query_params.get("page"),
                         "key": request.headers.get("idempotency-key"),
                         "port": request.client.port if request.client else None}, headers={"X-Total-Count": "7"})


@app.get("/refuse")
async def refuse() -> JSONResponse:
    return JSONResponse({"message": "no such cart"}, status_code=404)


@app.get("/health")  # catalog's health path: up
async def up() -> dict[str, object]:
    return {"status": "UP", "degraded": False}


@app.get("/actuator/health")  # carts': up, but degraded
async def degraded() -> dict[str, object]:
    return {"status": "UP", "degraded": True, "reason": "writer unreachable"}


@app.get("/health.html")  # assets': down
async def down() -> JSONResponse:
    return JSONResponse({"status": "DOWN", "reason": "images missing"}, status_code=503)


@app.get("/slow")
async def slow() -> dict[str, str]:
    await asyncio.sleep(2)
    return {"late": "yes"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def with_server(test: Callable[[str], Awaitable[Any]], port: int | None = None) -> Any:
    """``test`` against a server started for it (on ``port``, or a free one) and stopped after."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port or free_port(), log_level="warning"))
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
        assert {k: v for k, v in body.items() if k != "port"} == {"name": "a b", "body": {"n": 1}, "page": "2",
                                                                  "key": "k-1"}
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


def in_thread(test: Callable[[str], Any]) -> Callable[[str], Awaitable[Any]]:
    """A synchronous client's test, run beside the server's event loop (never on it)."""
    async def run(url: str) -> Any:
        return await asyncio.to_thread(test, url)
    return run


def test_a_sync_call_carries_json_and_headers_reads_headers_in_any_case_and_reuses_its_connection() -> None:
    def test(url: str) -> None:
        exchange = HttpExchange(url, read_timeout_s=5)
        client = SyncServiceClient("orders", exchange)
        first = client.call("POST", "/echo/a", json={"n": [1, "é"]}, headers={"Idempotency-Key": "k-1"})
        assert {k: v for k, v in first.items() if k != "port"} == {"name": "a", "body": {"n": [1, "é"]},
                                                                   "page": None, "key": "k-1"}
        answer = exchange.request("POST", "/echo/b", json={})
        assert answer.headers.get("x-total-count") == answer.headers.get("X-Total-Count") == "7"
        assert answer.json()["port"] == first["port"]  # the same keep-alive connection
        with pytest.raises(ServiceCallError, match="^orders: HTTP 404 no such cart$") as refused:
            client.call("GET", "/refuse")
        assert (refused.value.status, refused.value.answer_status) == (404, 502)
        exchange.close()

    asyncio.run(with_server(in_thread(test)))


def test_a_kept_connection_idle_past_the_keepalive_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "CLIENT_KEEPALIVE_S", 0.2)

    def test(url: str) -> None:
        exchange = HttpExchange(url, read_timeout_s=5)
        first = exchange.request("POST", "/echo/a", json={}).json()["port"]
        assert exchange.request("POST", "/echo/a", json={}).json()["port"] == first
        time.sleep(0.3)
        assert exchange.request("POST", "/echo/a", json={}).json()["port"] != first
        exchange.close()

    asyncio.run(with_server(in_thread(test)))


def test_a_sync_call_to_nobody_is_unavailable_and_a_late_answer_is_late() -> None:
    with pytest.raises(ServiceCallError, match="^orders: cannot connect") as failed:
        SyncServiceClient("orders", HttpExchange(f"http://127.0.0.1:{free_port()}", read_timeout_s=5)).call(
            "POST", "/orders", json={})
    assert failed.value.status is None and failed.value.answer_status == 503

    def test(url: str) -> None:
        with pytest.raises(ServiceCallError, match=r"^orders: no answer to GET /slow in time$"):
            SyncServiceClient("orders", HttpExchange(url, read_timeout_s=0.3)).call("GET", "/slow")

    asyncio.run(with_server(in_thread(test)))
    with pytest.raises(ValueError, match="not an http:// address"):
        HttpExchange("orders:8080", read_timeout_s=1)


def test_the_outbox_delivers_to_its_consumers_path_and_names_a_refusal() -> None:
    def test(url: str) -> None:
        event = OutboxEvent("e-1", {"eventId": "e-1"}, 0)
        HttpDelivery(f"{url}/echo/consumer")(event)  # a 2xx: delivered
        with pytest.raises(RuntimeError, match="consumer answered HTTP 405"):  # /refuse takes no POST
            HttpDelivery(f"{url}/refuse")(event)
        nobody = f"http://127.0.0.1:{free_port()}/events"
        with pytest.raises(RuntimeError, match=f"^{nobody}: "):
            HttpDelivery(nobody)(event)

    asyncio.run(with_server(in_thread(test)))


def test_the_uis_readiness_reads_each_backends_health_over_one_kept_connection() -> None:
    def test(url: str) -> None:
        exchange = HttpExchange(url, read_timeout_s=2)
        seen = {name: run_check(backend_check(name, exchange)) for name in ("catalog", "carts", "assets")}
        assert (seen["catalog"].up, seen["catalog"].degraded, seen["catalog"].detail) == (True, False, "UP")
        assert (seen["carts"].up, seen["carts"].degraded) == (True, True)
        assert seen["carts"].detail == "carts is degraded (writer unreachable)"
        assert (seen["assets"].up, seen["assets"].detail) == (False, "HTTP 503 images missing")
        assert len(exchange._idle) == 1  # three probes, one connection
        nobody = run_check(backend_check("orders", HttpExchange(f"http://127.0.0.1:{free_port()}", read_timeout_s=2)))
        assert not nobody.up and nobody.detail.startswith("cannot connect")

    asyncio.run(with_server(in_thread(test)))


def test_a_kept_connection_the_server_closed_is_not_reused_after_a_restart() -> None:
    port = free_port()
    exchange = HttpExchange(f"http://127.0.0.1:{port}", read_timeout_s=5)
    client = SyncServiceClient("orders", exchange)
    before = asyncio.run(with_server(in_thread(lambda url: client.call("POST", "/echo/a", json={})), port))
    assert len(exchange._idle) == 1  # kept; then the server stopped (closing it) and a new one started
    after = asyncio.run(with_server(in_thread(lambda url: client.call("POST", "/echo/b", json={})), port))
    assert after["name"] == "b" and after["port"] != before["port"]
