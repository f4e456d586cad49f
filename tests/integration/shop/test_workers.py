"""Several workers of one service on one address, as real processes on a real PostgreSQL: two orders workers
share PORT (SO_REUSEPORT) and migrate the same database at once; connections spread over both; a retried order
lands on the other worker and is still the same order; each worker's own port reports its health and its own
metrics, which add up to what was served; and when one worker dies the address still answers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from regionctl.runtime.postgres import PgInstance
from tests.integration.shop.pg import dsn, free_port

ORDER = {"firstName": "Ada", "lastName": "Lovelace", "email": "workers@example.com",
         "items": [{"productId": "p1", "quantity": 2, "price": 50, "name": "Wood Watch"}], "tax": 5, "shipping": 15}
CREATED = re.compile(r'^shop_orders_created_total\{[^}]*\} (\S+)$', re.M)
SERVED = re.compile(r'^shop_http_requests_total\{[^}]*route="/orders"[^}]*\} (\S+)$', re.M)


def wait_healthy(url: str, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not healthy within {deadline_s} s")


def total(pattern: re.Pattern[str], text: str) -> float:
    return sum(float(v) for v in pattern.findall(text))


@pytest.fixture()
def workers(shop_pg: PgInstance) -> Iterator[tuple[int, list[int], list[subprocess.Popen[bytes]]]]:
    shop_pg.query("create database workers")
    port, own = free_port(), [free_port(), free_port()]
    env = {**os.environ, "REGION": "us-east-1", "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "WARNING",
           "ORDERS_WRITER_DSN": dsn(shop_pg, "workers"), "ORDERS_READER_DSN": dsn(shop_pg, "workers"),
           "ORDER_EVENTS_ENDPOINT": f"http://127.0.0.1:{port}/events/order-created"}
    procs = [subprocess.Popen([sys.executable, "-m", "regionctl.shop", "orders"],
                              env={**env, "WORKER_PORT": str(p)}, stderr=subprocess.DEVNULL) for p in own]
    try:
        for p in own:
            wait_healthy(f"http://127.0.0.1:{p}/actuator/health")
        yield port, own, procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)
        shop_pg.query("drop database workers")


def test_two_workers_share_one_address_with_their_own_health_and_metrics(
        workers: tuple[int, list[int], list[subprocess.Popen[bytes]]]) -> None:
    port, own, procs = workers
    ids = []
    for n in range(40):  # a connection per order: the kernel picks the worker for each
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            response = client.post("/orders", json=ORDER, headers={"Idempotency-Key": f"w-{n}"})
            assert response.status_code == 200 and response.headers["Idempotent-Replayed"] == "false", response.text
            ids.append(response.json()["id"])
    for n in range(40):  # every retry on a fresh connection, so about half reach the other worker
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            again = client.post("/orders", json=ORDER, headers={"Idempotency-Key": f"w-{n}"})
            assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
            assert again.json()["id"] == ids[n]

    pages = [httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=5).text for p in own]
    created = [total(CREATED, page) for page in pages]
    served = [total(SERVED, page) for page in pages]
    assert sum(created) == 40  # each order counted once, by the worker that made it; replays by nobody
    assert all(s > 0 for s in served), served  # both workers took connections
    assert sum(served) == 80

    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait(timeout=10)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{own[0]}/actuator/health", timeout=2)  # the dead one is seen as dead
    for _ in range(10):  # the address still answers, from the survivor
        assert httpx.get(f"http://127.0.0.1:{port}/actuator/health", timeout=5).status_code == 200
