"""The orders service across a real failover: the writer is killed, the standby promoted, and the same process
keeps taking orders (no restart), a retried POST finds its order instead of making a second one, and the outbox
relay delivers the new events on the new writer. Also: a service whose writer is down at start waits, unready,
and becomes ready on its own when the writer appears."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from regionctl.runtime.postgres import PgInstance
from regionctl.runtime.process import ProcessSpec, python_module
from regionctl.shop.catalog.seed import PRODUCTS
from regionctl.shop.loadgen import CUSTOMER, ORDER_ID
from tests.integration.shop.pg import (
    TEST_SETTINGS,
    destroy,
    dsn,
    free_port,
    multi_host_dsn,
    new_instance,
    scratch_dir,
    start_primary,
    start_standby,
)
from tests.integration.shop.stack import Deployment, eventually, start_deployment, start_process, stop_deployment

pytestmark = pytest.mark.integration
ORDER = {"firstName": "Ada", "lastName": "L", "email": "ada@example.com",
         "items": [{"productId": "p1", "quantity": 1, "price": 50, "name": "Wood Watch"}]}


def service(root: Path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    spec = ProcessSpec(name, "us-west-2", python_module("regionctl.shop", name),
                       {"REGION": "us-west-2", "HOST": "127.0.0.1", "PORT": str(port), **env})
    (root / "logs").mkdir(exist_ok=True)
    return start_process(spec, root / "logs"), f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def ready(url: str) -> None:
    try:
        response = httpx.get(url, timeout=3)
    except httpx.HTTPError as exc:
        raise AssertionError(str(exc)) from None
    assert response.status_code == 200, response.text


@pytest.fixture()
def pair() -> Iterator[tuple[PgInstance, PgInstance, Path]]:
    root = scratch_dir("regionctl-shop-failover-")
    writer = start_primary(root, "east", ("orders",))
    standby = start_standby(root, "west", writer)
    try:
        yield writer, standby, root
    finally:
        destroy([standby, writer], root)


def test_orders_survive_a_failover_without_restart_or_duplicates(pair: tuple[PgInstance, PgInstance, Path]) -> None:
    writer, standby, root = pair
    proc, url = service(root, "orders", {"ORDERS_WRITER_DSN": multi_host_dsn([writer, standby], "orders"),
                                         "ORDERS_READER_DSN": dsn(standby, "orders"), "DB_RETRY_DEADLINE_S": "20",
                                         "OUTBOX_INTERVAL_S": "0.2"})
    try:
        eventually(lambda: ready(url + "/actuator/health"), 60)
        before = httpx.post(url + "/orders", json=ORDER, headers={"Idempotency-Key": "before"}, timeout=30).json()
        eventually(lambda: ready(f"{url}/orders/{before['id']}"))  # replicated to the local (standby) reader

        writer.kill()  # the writer's region is gone
        standby.run([standby.bins("pg_ctl"), "promote", "-w", "-D", str(standby.datadir)])

        after = httpx.post(url + "/orders", json=ORDER, headers={"Idempotency-Key": "after"}, timeout=60)
        assert after.status_code == 200, after.text
        retried = httpx.post(url + "/orders", json=ORDER, headers={"Idempotency-Key": "before"}, timeout=60)
        assert retried.json()["id"] == before["id"] and retried.headers["Idempotent-Replayed"] == "true"
        assert standby.scalar("select count(*) from customer_order", dbname="orders") == 2
        assert proc.poll() is None  # the same process throughout

        def consumed() -> None:
            count = standby.scalar("select count(*) from order_event_consumed", dbname="orders")
            assert count == 2, count

        eventually(consumed, 30)
        eventually(lambda: ready(url + "/actuator/health"), 30)
        metrics = httpx.get(url + "/metrics").text
        assert 'shop_db_retries_total{database="orders-writer"' in metrics  # it did reconnect, and says so
    finally:
        stop(proc)


def test_a_service_whose_writer_is_down_at_start_becomes_ready_by_itself() -> None:
    root = scratch_dir("regionctl-shop-late-")
    late = new_instance(root, "late")
    late.initdb()
    proc, url = service(root, "catalog", {"CATALOG_WRITER_DSN": dsn(late, "postgres"),
                                          "CATALOG_READER_DSN": dsn(late, "postgres")})
    try:
        eventually(lambda: ready(url + "/livez"), 30)
        unready = httpx.get(url + "/health").json()
        assert unready["status"] == "DOWN" and "catalog-db" in unready["reason"]
        time.sleep(1)
        late.start(TEST_SETTINGS)
        eventually(lambda: ready(url + "/health"), 30)
        assert len(httpx.get(url + "/catalogue").json()) == 6
        assert proc.poll() is None
    finally:
        stop(proc)
        destroy([late], root)


@pytest.fixture(scope="module")
def doomed() -> Iterator[Deployment]:
    """A deployment of its own: this test kills its writer."""
    deployment = start_deployment()
    try:
        yield deployment
    finally:
        stop_deployment(deployment)


def _session(ui: str) -> httpx.Client:
    return httpx.Client(base_url=ui, timeout=60, cookies={"SESSIONID": str(uuid.uuid4())})


def _to_review(client: httpx.Client, email: str) -> None:
    assert client.post("/cart", data={"productId": PRODUCTS[1].id}).status_code == 303
    assert client.get("/checkout").status_code == 200
    assert client.post("/checkout", data={**CUSTOMER, "email": email}).status_code == 200
    assert client.post("/checkout/delivery", data={"token": "priority-mail"}).status_code == 200
    assert client.post("/checkout/payment").status_code == 200


def _confirm(client: httpx.Client) -> str:
    response = client.post("/checkout/confirm")
    assert response.status_code == 200, response.text[-500:]
    found = ORDER_ID.search(response.text)
    assert found, response.text[-500:]
    return found.group(1)


def _buy(client: httpx.Client, email: str) -> str:
    _to_review(client, email)
    return _confirm(client)


def test_purchases_through_the_standby_ui_go_on_after_the_writer_region_dies(doomed: Deployment) -> None:
    west = doomed.ui(doomed.settings.standby_region)
    pids = {key: proc.pid for key, proc in doomed.procs.items()}
    with _session(west) as before, _session(west) as midway, _session(west) as after:
        first = _buy(before, "before@example.com")
        _to_review(midway, "midway@example.com")  # this visitor is at step 4 when the writer dies
        eventually(lambda: ready(f"{doomed.url(doomed.settings.standby_region, 'orders')}/orders/{first}"))

        doomed.writer.kill()
        doomed.standby.run([doomed.standby.bins("pg_ctl"), "promote", "-w", "-D", str(doomed.standby.datadir)])

        second = _confirm(midway)
        third = _buy(after, "after@example.com")
        assert _confirm(midway) == second  # a repeated click on "Order" is the same order
    rows = doomed.standby.query("select email, count(*) as n from customer_order group by email order by email",
                                dbname="orders")
    assert [(r["email"], r["n"]) for r in rows] == [
        ("after@example.com", 1), ("before@example.com", 1), ("midway@example.com", 1)]
    assert len({first, second, third}) == 3
    west_keys = [k for k in pids if k.startswith(doomed.settings.standby_region)]
    assert all(doomed.procs[k].poll() is None and doomed.procs[k].pid == pids[k] for k in west_keys)
