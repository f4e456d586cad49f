"""What the shop's tests on the real deployment do and read: a visitor going through one region's ui over plain
HTTP (the requests a browser makes), and the orders as the global database's current writer holds them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from regionctl.runtime.postgres import PgInstance
from regionctl.shop.catalog.seed import PRODUCTS
from regionctl.shop.loadgen import CUSTOMER, ORDER_ID
from tests.support.deploy import RunningDeployment

EAST, WEST = "us-east-1", "us-west-2"
WATCH = PRODUCTS[1]


def unique_email(label: str) -> str:
    """The shared deployment keeps every test's orders: each test finds its own by a fresh address."""
    return f"{label}-{uuid.uuid4().hex[:10]}@example.com"


class Visitor:
    """One visitor with a session of their own, buying ``WATCH`` in one region's ui."""

    def __init__(self, ui: str, email: str) -> None:
        self.email = email
        self.client = httpx.Client(base_url=ui, timeout=60, cookies={"SESSIONID": str(uuid.uuid4())})
        self.served_by: str | None = None

    def __enter__(self) -> Visitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _post(self, path: str, expect: int, **data: str) -> httpx.Response:
        response = self.client.post(path, data=data)
        assert response.status_code == expect, f"POST {path}: HTTP {response.status_code} {response.text[-500:]}"
        self.served_by = response.headers.get("X-Region")
        return response

    def to_review(self) -> None:
        """Add the watch to the cart and go through checkout steps 1 to 3: the order is one click away."""
        self._post("/cart", 303, productId=WATCH.id)
        assert self.client.get("/checkout").status_code == 200
        self._post("/checkout", 200, **CUSTOMER, email=self.email)
        self._post("/checkout/delivery", 200, token="priority-mail")
        self._post("/checkout/payment", 200)

    def confirm(self) -> str:
        """Click "Order" on the review page; the id on the confirmation page."""
        found = ORDER_ID.search(self._post("/checkout/confirm", 200).text)
        assert found, "no order id on the confirmation page"
        return found.group(1)

    def buy(self) -> str:
        self.to_review()
        return self.confirm()


def entry_routes_to_both(deployment: RunningDeployment) -> None:
    """The global entry sends new visitors to both regions (AssertionError while it routes to fewer)."""
    healthy = httpx.get(deployment.entry + "/_entry/status", timeout=5).json()["healthy"]
    assert sorted(healthy) == [EAST, WEST], healthy


def orders_writer(deployment: RunningDeployment) -> PgInstance:
    """The member of the orders database that is the writer now."""
    gdbs = deployment.gdbs
    return gdbs.cluster("orders").member(gdbs.state("orders").writer)


def orders_by_email(deployment: RunningDeployment, emails: list[str]) -> dict[str, int]:
    """How many orders the writer holds for each address (a duplicate shows as 2)."""
    rows = orders_writer(deployment).query(
        "select email, count(*) as n from customer_order where email = any(%s) group by email", (emails,),
        dbname="orders")
    return {r["email"]: r["n"] for r in rows}


def order_api(deployment: RunningDeployment, region: str, order_id: str) -> dict[str, Any]:
    """The order as ``region``'s orders service reads it from its local member (AssertionError until it is there)."""
    response = httpx.get(f"{deployment.service(region, 'orders')}/orders/{order_id}", timeout=10)
    assert response.status_code == 200, f"{region}: HTTP {response.status_code} for order {order_id}"
    return response.json()  # type: ignore[no-any-return]
