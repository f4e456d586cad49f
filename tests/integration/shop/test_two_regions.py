"""The shop as `regionctl up` runs it (the shared deployment): both regions' services over the global databases
(writer in us-east-1, standby in us-west-2 through the link) and the multi-active regional store.

Purchases in either region land on the one writer and show in both regions; order events are consumed once; a
cart line written in one region reaches the other, and both regions writing the same line end with one value;
`regionctl load` through the global entry logs only orders that exist."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from regionctl.regionalstore import Direction, control, endpoints, list_conflicts
from regionctl.shop import SERVICES
from regionctl.shop.launch import HEALTH_PATHS
from regionctl.shop.loadgen import read_acks
from tests.integration.shop.shopping import (
    EAST,
    WATCH,
    WEST,
    Visitor,
    entry_routes_to_both,
    order_api,
    orders_writer,
    unique_email,
)
from tests.support.deploy import RunningDeployment
from tests.support.poll import eventually

pytestmark = pytest.mark.integration
REGIONCTL = str(Path(sys.executable).with_name("regionctl"))


def test_every_service_in_both_regions_is_ready_and_exposes_metrics(deployment: RunningDeployment) -> None:
    supervised = deployment.pids()
    with httpx.Client(timeout=5) as client:
        for region in (EAST, WEST):
            for service in SERVICES:
                assert f"{region}/{service}" in supervised
                url = deployment.service(region, service)
                health = client.get(url + HEALTH_PATHS[service])
                assert health.status_code == 200, (region, service, health.text)
                assert health.headers["x-region"] == region
                assert "shop_http_requests_total" in client.get(url + "/metrics").text, (region, service)


def test_the_catalog_is_seeded_once_and_read_locally_in_both_regions(deployment: RunningDeployment) -> None:
    for region in (EAST, WEST):
        body = httpx.get(deployment.service(region, "catalog") + "/catalogue", params={"order": "-price"}).json()
        assert [p["price"] for p in body] == [5100, 795, 650, 385, 180, 50], region
    writer = deployment.gdbs.cluster("catalog").member(deployment.gdbs.state("catalog").writer)
    assert writer.scalar("select count(*) from product", dbname="catalog") == 6


def test_a_purchase_in_each_region_is_on_the_writer_and_visible_in_both(deployment: RunningDeployment) -> None:
    placed: dict[str, tuple[str, str]] = {}  # region -> (order id, email)
    for region in (EAST, WEST):
        with Visitor(deployment.ui(region), unique_email(f"buyer-{region}")) as visitor:
            placed[region] = (visitor.buy(), visitor.email)
            assert visitor.served_by == region

    for bought_in, (order_id, email) in placed.items():
        for region in (EAST, WEST):
            order = eventually(lambda r=region, o=order_id: order_api(deployment, r, o))  # type: ignore[misc]
            assert order["region"] == bought_in and order["email"] == email
            assert order["items"][0]["productId"] == WATCH.id and order["total"] == order["subtotal"] + \
                order["tax"] + order["shipping"]
            page = httpx.get(deployment.ui(region) + "/orders", params={"email": email}).text
            assert f'data-order-id="{order_id}"' in page, (bought_in, region)
    rows = orders_writer(deployment).query("select id::text, region from customer_order where id = any(%s::uuid[])",
                                           ([o for o, _ in placed.values()],), dbname="orders")
    assert {r["id"]: r["region"] for r in rows} == {o: region for region, (o, _) in placed.items()}


def test_every_order_event_is_delivered_and_consumed_once(deployment: RunningDeployment) -> None:
    with Visitor(deployment.ui(EAST), unique_email("events")) as visitor:
        order_id = visitor.buy()

    def consumed_once() -> None:
        row = orders_writer(deployment).query(
            "select (select count(*) from order_outbox where order_id = %(id)s and delivered_at is not null) "
            "as delivered, (select count(*) from order_event_consumed where order_id = %(id)s) as consumed",
            {"id": order_id}, dbname="orders")[0]
        assert row == {"delivered": 1, "consumed": 1}, row

    eventually(consumed_once)


# ----- carts: the multi-active regional store, through each region's carts service ---------------------------

def carts(deployment: RunningDeployment, region: str) -> str:
    return deployment.service(region, "carts")


def line(deployment: RunningDeployment, region: str, customer: str, item: str) -> dict[str, object]:
    response = httpx.get(f"{carts(deployment, region)}/carts/{customer}/items/{item}", timeout=5)
    assert response.status_code == 200, f"{region}: HTTP {response.status_code}"
    return response.json()  # type: ignore[no-any-return]


def test_a_cart_written_in_one_region_is_visible_in_the_other_after_replication(
    deployment: RunningDeployment,
) -> None:
    for source, target in ((EAST, WEST), (WEST, EAST)):
        customer = unique_email("cart").split("@")[0]
        added = httpx.post(f"{carts(deployment, source)}/carts/{customer}/items",
                           json={"itemId": WATCH.id, "quantity": 2, "unitPrice": WATCH.price})
        assert added.status_code == 201, added.text
        seen = eventually(lambda t=target, c=customer: line(deployment, t, c, WATCH.id))  # type: ignore[misc]
        assert seen == {"itemId": WATCH.id, "quantity": 2, "unitPrice": WATCH.price}
        cart = httpx.get(f"{carts(deployment, target)}/carts/{customer}").json()
        assert cart["items"] == [seen]


def at_once(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Start every call at the same moment (one thread each) and return their responses."""
    barrier = threading.Barrier(len(calls))
    results: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def converged(deployment: RunningDeployment, customer: str) -> int:
    east, west = (line(deployment, r, customer, WATCH.id) for r in (EAST, WEST))
    assert east == west, f"{EAST} has {east}, {WEST} has {west}"
    return int(east["quantity"])  # type: ignore[call-overload]


def set_quantity(deployment: RunningDeployment, region: str, customer: str, quantity: int) -> httpx.Response:
    return httpx.patch(f"{carts(deployment, region)}/carts/{customer}/items", timeout=10,
                       json={"itemId": WATCH.id, "quantity": quantity, "unitPrice": WATCH.price})


def test_both_regions_change_the_same_cart_line_at_once_and_end_with_one_value(
    deployment: RunningDeployment,
) -> None:
    customer = unique_email("both").split("@")[0]
    httpx.post(f"{carts(deployment, EAST)}/carts/{customer}/items",
               json={"itemId": WATCH.id, "quantity": 1, "unitPrice": WATCH.price}).raise_for_status()
    eventually(lambda: line(deployment, WEST, customer, WATCH.id))

    changes = at_once(lambda: set_quantity(deployment, EAST, customer, 3),
                      lambda: set_quantity(deployment, WEST, customer, 4))
    assert [r.status_code for r in changes] == [202, 202]
    assert eventually(lambda: converged(deployment, customer)) in (3, 4)

    # With replication paused each region surely keeps its own write until resumed: a real conflict.
    directions = [Direction(EAST, WEST), Direction(WEST, EAST)]
    dsns = endpoints.dsns(deployment.settings)
    try:
        for direction in directions:
            assert control.pause(dsns[direction.source], direction, "shop test: concurrent cart writes").drained
        assert [r.status_code for r in at_once(lambda: set_quantity(deployment, EAST, customer, 5),
                                               lambda: set_quantity(deployment, WEST, customer, 6))] == [202, 202]
        assert (line(deployment, EAST, customer, WATCH.id)["quantity"],
                line(deployment, WEST, customer, WATCH.id)["quantity"]) == (5, 6)
    finally:
        for direction in directions:
            control.resume(dsns[direction.source], direction)
    assert eventually(lambda: converged(deployment, customer)) in (5, 6)
    key = f"{customer}:{WATCH.id}"
    assert any(list_conflicts(dsns[region], table="carts", key=key) for region in (EAST, WEST))


# ----- the load generator and the chaos hook ---------------------------------------------------------------

def test_regionctl_load_through_the_global_entry_logs_orders_that_all_exist(
    deployment: RunningDeployment, tmp_path: Path,
) -> None:
    eventually(lambda: entry_routes_to_both(deployment), 30)
    log = tmp_path / "acks.jsonl"
    result = subprocess.run([REGIONCTL, "load", "--rate", "4", "--duration", "2", "--endpoint", deployment.entry,
                             "--ack-log", str(log), "--format", "json"],
                            env=deployment.cli_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    acks = read_acks(log)
    assert report["acknowledged"] == report["attempted"] == len(acks) == 8, report
    assert {a.region for a in acks} == {EAST, WEST}  # the entry spreads new visitors over both regions
    ids = [a.order_id for a in acks]
    found = orders_writer(deployment).scalar("select count(*) from customer_order where id = any(%s::uuid[])",
                                             (ids,), dbname="orders")
    assert found == len(set(ids)) == len(ids)


def ready(url: str) -> None:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, response.text


def test_fail_cart_makes_the_region_unready_until_recovered(deployment: RunningDeployment) -> None:
    ui = deployment.ui(EAST)
    assert httpx.post(ui + "/actuator/fail-cart").text == "OK"
    try:
        def down() -> None:
            response = httpx.get(ui + "/actuator/health")
            assert response.status_code == 503 and "carts" in response.json()["reason"], response.text

        eventually(down, 10)
    finally:
        httpx.post(ui + "/actuator/recover-cart")
    eventually(lambda: ready(ui + "/actuator/health"), 10)
    eventually(lambda: entry_routes_to_both(deployment), 30)  # left as found: the entry routes to both again
