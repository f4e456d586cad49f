"""The checkout HTTP contract (reference section 1.4) with its defects fixed: the total includes shipping, the
state is in the regional store, and a submit makes exactly one order however often it is retried."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient

from regionctl.shop.checkout import rules
from regionctl.shop.checkout.models import CheckoutRequest
from regionctl.shop.checkout.service import HttpOrders, create_checkout_app
from regionctl.shop.kit.app import ServiceKit
from regionctl.shop.orders.service import create_orders_app
from regionctl.shop.regional import GuardedStore
from tests.unit.shop.fakes import MemoryOrders, MemoryRegionalStore
from tests.unit.shop.shopstack import ClientExchange

ITEMS = [{"id": "w1", "name": "Wood Watch", "quantity": 2, "unitCost": 50, "totalCost": 100, "imageUrl": "/a.svg"},
         {"id": "w2", "name": "Pocket Watch", "quantity": 1, "unitCost": 385, "totalCost": 385}]
ADDRESS = {"firstName": "Ada", "lastName": "Lovelace", "address1": "1 Main St", "city": "Springfield",
           "state": "IL", "zip": "62701"}


@pytest.fixture()
def orders() -> MemoryOrders:
    return MemoryOrders()


@pytest.fixture()
def memory() -> MemoryRegionalStore:
    return MemoryRegionalStore("us-east-1")


@pytest.fixture()
def client(orders: MemoryOrders, memory: MemoryRegionalStore) -> TestClient:
    orders_http = TestClient(create_orders_app(ServiceKit.create("orders", "us-east-1"), orders))
    app = create_checkout_app(ServiceKit.create("checkout", "us-east-1"), GuardedStore(lambda: memory),
                              HttpOrders(ClientExchange(orders_http)), rng=random.Random(7))
    return TestClient(app)


def complete(client: TestClient, customer: str = "c1") -> dict[str, object]:
    response = client.post(f"/checkout/{customer}/update", json={
        "items": ITEMS, "subtotal": 485, "customerEmail": "ada@example.com", "shippingAddress": ADDRESS,
        "deliveryOptionToken": "priority-mail-express"})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_an_unknown_checkout_is_404(client: TestClient) -> None:
    response = client.get("/checkout/c1")
    assert response.status_code == 404 and response.json()["message"] == "Checkout not found"


def test_first_update_has_rates_but_no_tax_or_shipping_yet(client: TestClient) -> None:
    body = client.post("/checkout/c1/update", json={"items": ITEMS, "subtotal": 485}).json()
    assert (body["subtotal"], body["tax"], body["shipping"], body["total"]) == (485, -1, -1, 485)
    assert [(r["name"], r["amount"], r["token"], r["estimatedDays"]) for r in body["shippingRates"]["rates"]] == [
        ("Priority Mail", 5, "priority-mail", 10), ("Priority Mail Express", 15, "priority-mail-express", 5)]
    assert len(body["paymentId"]) == 16 and len(body["paymentToken"]) == 32
    assert client.get("/checkout/c1").json() == body


def test_tax_is_five_percent_rounded_down_and_the_total_includes_shipping(client: TestClient) -> None:
    body = complete(client)
    assert body["tax"] == 24 and body["shipping"] == 15
    assert body["total"] == 485 + 24 + 15


def test_inconsistent_figures_are_refused(client: TestClient) -> None:
    wrong_line = client.post("/checkout/c1/update", json={"items": [{**ITEMS[0], "totalCost": 99}]})
    assert wrong_line.status_code == 400 and "totalCost" in wrong_line.json()["message"]
    wrong_subtotal = client.post("/checkout/c1/update", json={"items": ITEMS, "subtotal": 1})
    assert wrong_subtotal.status_code == 400 and "subtotal" in wrong_subtotal.json()["message"]
    bad_zip = client.post("/checkout/c1/update", json={"items": ITEMS, "shippingAddress": {**ADDRESS, "zip": "1"}})
    assert bad_zip.status_code == 400 and "zip" in bad_zip.json()["message"]


def test_submit_creates_the_order_with_unit_prices_and_closes_the_checkout(client: TestClient,
                                                                           orders: MemoryOrders) -> None:
    complete(client)
    response = client.post("/checkout/c1/submit")
    assert response.status_code == 201
    submitted = response.json()
    assert submitted["customerEmail"] == "ada@example.com"
    order = orders.get(submitted["orderId"])
    assert order is not None and order.total == 524 and order.shipping == 15 and order.tax == 24
    assert [(i.productId, i.quantity, i.price, i.totalCost) for i in order.items] == [
        ("w1", 2, 50, 100), ("w2", 1, 385, 385)]
    assert client.get("/checkout/c1").status_code == 404


def test_a_retried_submit_returns_the_same_order_and_creates_no_other(client: TestClient,
                                                                      orders: MemoryOrders) -> None:
    complete(client)
    first = client.post("/checkout/c1/submit").json()
    second = client.post("/checkout/c1/submit").json()
    assert first == second and len(orders.orders) == 1


def test_a_submit_lost_before_its_answer_is_not_doubled(client: TestClient, orders: MemoryOrders,
                                                        memory: MemoryRegionalStore) -> None:
    """The order was created but the checkout never recorded it (crash in between): the retry reuses the key."""
    complete(client)
    before = memory.get("checkout", "c1")
    first = client.post("/checkout/c1/submit").json()
    assert before is not None and before.value is not None
    memory.put("checkout", "c1", before.value)  # the state as it was before the lost submit
    assert client.post("/checkout/c1/submit").json() == first
    assert len(orders.orders) == 1


def test_an_incomplete_checkout_cannot_be_submitted(client: TestClient) -> None:
    client.post("/checkout/c1/update", json={"items": ITEMS})
    response = client.post("/checkout/c1/submit")
    assert response.status_code == 409
    assert "customerEmail" in response.json()["message"] and "deliveryOptionToken" in response.json()["message"]
    assert client.post("/checkout/nobody/submit").status_code == 404


def test_an_orders_outage_is_503_and_the_checkout_survives_it(client: TestClient, orders: MemoryOrders) -> None:
    from regionctl.errors import DatabaseError

    complete(client)
    orders.broken = DatabaseError("orders-writer: connection refused")
    assert client.post("/checkout/c1/submit").status_code == 503
    orders.broken = None
    assert client.post("/checkout/c1/submit").status_code == 201


def test_the_rules_alone() -> None:
    assert rules.tax(199, True) == 9 and rules.tax(199, False) == -1
    assert rules.total(100, -1, -1) == 100 and rules.total(100, 5, 15) == 120
    checkout = rules.price(CheckoutRequest(items=[]), "X ", random.Random(1))
    assert checkout.shippingRates.rates[0].name == "X Priority Mail"
    assert rules.missing_for_submit(checkout) == ["items", "customerEmail", "shippingAddress", "deliveryOptionToken"]


def test_random_ids_have_their_length_and_use_every_character_alike() -> None:
    ids = [rules.random_id(n, random.Random(n)) for n in (1, 16, 32, 300)]
    assert [len(i) for i in ids] == [1, 16, 32, 300] and set("".join(ids)) <= set(rules.ALNUM)
    assert rules.random_id(32, random.Random(5)) == rules.random_id(32, random.Random(5))
    drawn = rules.random_id(62_000, random.Random(3))
    counts = [drawn.count(c) for c in rules.ALNUM]
    assert min(counts) > 850 and max(counts) < 1150  # 1000 each expected; a modulo bias would skew the first 8
