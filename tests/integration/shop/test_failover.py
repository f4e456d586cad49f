"""The shop across `regionctl db failover orders --to us-west-2` on the shared deployment: purchases through the
us-west-2 ui go on (one visitor was at the last checkout step when it happened) without restarting any process,
a retried confirmation or POST is the same order, and every order event is delivered and consumed once. The
fixture heals afterwards, as an operator would: rebuild us-east-1 (kept first), switch the writer back."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from regionctl.routing.client import ControlClient
from tests.integration.shop.shopping import (
    EAST,
    WEST,
    Visitor,
    entry_routes_to_both,
    order_api,
    orders_by_email,
    orders_writer,
    unique_email,
)
from tests.support.deploy import RunningDeployment
from tests.support.poll import eventually

pytestmark = pytest.mark.integration
REGIONCTL = str(Path(sys.executable).with_name("regionctl"))
DIRECT_ORDER = {"firstName": "Ada", "lastName": "L", "items": [
    {"productId": "a1c2e3f4-0000-4000-8000-00000000d1ec", "quantity": 2, "price": 50, "name": "Direct"}]}


def regionctl(deployment: RunningDeployment, *args: str) -> Any:
    result = subprocess.run([REGIONCTL, *args, "--format", "json"], env=deployment.cli_env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, f"regionctl {' '.join(args)}: {result.stderr}"
    return json.loads(result.stdout)


def healthy(deployment: RunningDeployment, name: str) -> None:
    status = deployment.gdbs.status(name)
    assert status.healthy, status.problems


@pytest.fixture()
def writer_back_in_east_afterwards(deployment: RunningDeployment) -> Iterator[None]:
    """Leave the deployment as the other tests expect it: orders written in us-east-1, both regions routed."""
    yield
    gdbs = deployment.gdbs
    if gdbs.state("orders").writer != EAST:
        rebuilt = gdbs.rebuild("orders", EAST)  # keeps the diverged copy first
        assert rebuilt.preserved_copy is not None and rebuilt.streaming
        gdbs.switchover("orders", EAST)
    eventually(lambda: healthy(deployment, "orders"), 60)
    eventually(lambda: entry_routes_to_both(deployment), 30)
    controls = ControlClient.from_settings(deployment.settings).state()["controls"]
    assert controls[EAST] == controls[WEST] == "On"


def sales(deployment: RunningDeployment) -> dict[str, tuple[int, int]]:
    """The order-event consumer's projection (product -> orders, units), read in us-west-2."""
    rows = httpx.get(deployment.service(WEST, "orders") + "/sales", timeout=10).json()
    return {r["productId"]: (r["orders"], r["quantity"]) for r in rows}


def sales_grew_by(deployment: RunningDeployment, before: dict[str, tuple[int, int]],
                  orders: list[dict[str, Any]]) -> None:
    expected: Counter[tuple[str, str]] = Counter()
    for order in orders:
        for item in order["items"]:
            expected[(item["productId"], "orders")] += 1
            expected[(item["productId"], "units")] += item["quantity"]
    now = sales(deployment)
    for product in {p for p, _ in expected}:
        grown = tuple(n - b for n, b in zip(now.get(product, (0, 0)), before.get(product, (0, 0)), strict=True))
        assert grown == (expected[(product, "orders")], expected[(product, "units")]), (product, grown)


def db_retries(deployment: RunningDeployment, region: str) -> float:
    """How often the region's orders service retried an operation on the orders writer (its metric)."""
    text = httpx.get(deployment.service(region, "orders") + "/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("shop_db_retries_total{") and 'database="orders-writer"' in line)


def post_order(deployment: RunningDeployment, key: str, email: str) -> httpx.Response:
    return httpx.post(deployment.service(WEST, "orders") + "/orders", json={**DIRECT_ORDER, "email": email},
                      headers={"Idempotency-Key": key}, timeout=60)


def test_after_an_orders_failover_purchases_in_us_west_2_go_on_without_restarts_or_duplicates(
    deployment: RunningDeployment, writer_back_in_east_afterwards: None,
) -> None:
    pids = deployment.pids()
    sales_before = sales(deployment)
    retries_before = db_retries(deployment, WEST)
    west = deployment.ui(WEST)
    direct_email, direct_key = unique_email("direct"), f"shop-test-{unique_email('key')}"
    with Visitor(west, unique_email("before")) as before, Visitor(west, unique_email("midway")) as midway, \
            Visitor(west, unique_email("after")) as after, Visitor(deployment.ui(EAST), unique_email("east")) as east:
        first = before.buy()
        direct = post_order(deployment, direct_key, direct_email).json()
        midway.to_review()  # this visitor is one click from ordering when the writer moves
        eventually(lambda: order_api(deployment, WEST, direct["id"]))  # replicated: the failover loses nothing

        failover = regionctl(deployment, "db", "failover", "orders", "--to", WEST, "--yes")
        assert (failover["from_region"], failover["to_region"], failover["fenced"]) == (EAST, WEST, True)

        second = midway.confirm()
        third = after.buy()
        fourth = east.buy()  # us-east-1's ui now writes to the new writer through the link
        assert midway.confirm() == second  # a repeated click on "Order" shows the same order
        retried = post_order(deployment, direct_key, direct_email)  # a client retrying after a lost answer
        assert retried.status_code == 200 and retried.json()["id"] == direct["id"]
        assert retried.headers["Idempotent-Replayed"] == "true"

    assert orders_writer(deployment) == deployment.gdbs.cluster("orders").member(WEST)
    emails = [v.email for v in (before, midway, after, east)] + [direct_email]
    assert orders_by_email(deployment, emails) == dict.fromkeys(emails, 1)
    assert len({first, second, third, fourth, direct["id"]}) == 5
    assert deployment.pids() == pids  # no process was restarted, in either region or the global plane
    assert db_retries(deployment, WEST) > retries_before  # it lost the old writer and found the new one

    ours = [eventually(lambda o=o: order_api(deployment, WEST, o)) for o in (first, second, third, fourth)]  # type: ignore[misc]
    eventually(lambda: sales_grew_by(deployment, sales_before, [*ours, direct]), 30)

    def all_delivered() -> list[dict[str, Any]]:  # the relay marks an event after its consumer answered: a moment later
        rows = orders_writer(deployment).query(
            "select o.payload, (select count(*) from order_event_consumed c where c.order_id = o.order_id) "
            "as consumed from order_outbox o where o.order_id = any(%s::uuid[]) and o.delivered_at is not null",
            ([o["id"] for o in [*ours, direct]],), dbname="orders")
        assert sorted(r["consumed"] for r in rows) == [1] * 5
        return rows

    delivered = eventually(all_delivered)

    again = httpx.post(deployment.service(WEST, "orders") + "/events/order-created", json=delivered[0]["payload"])
    assert again.json()["duplicate"] is True  # delivered once more (at least once): consumed still once
    sales_grew_by(deployment, sales_before, [*ours, direct])
