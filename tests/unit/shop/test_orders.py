"""The orders HTTP contract (reference section 1.5) with its defects fixed, plus the outbox relay's rules."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from regionctl.errors import DatabaseError
from regionctl.shop.kit.app import ServiceKit
from regionctl.shop.orders.outbox import OutboxEvent, OutboxRelay, retry_delay_s
from regionctl.shop.orders.service import create_orders_app
from tests.unit.shop.fakes import MemoryOrders, MemoryOutbox

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ORDER = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
         "items": [{"productId": "p1", "quantity": 2, "price": 50, "name": "Wood Watch"}],
         "tax": 5, "shipping": 15}


@pytest.fixture()
def repo() -> MemoryOrders:
    return MemoryOrders()


@pytest.fixture()
def client(repo: MemoryOrders) -> TestClient:
    return TestClient(create_orders_app(ServiceKit.create("orders", "us-west-2"), repo))


def test_post_creates_an_order_with_a_uuid_iso_time_items_and_totals(client: TestClient) -> None:
    response = client.post("/orders", json=ORDER)
    assert response.status_code == 200
    body = response.json()
    assert UUID.match(body["id"]) and ISO.match(body["createdOn"])
    assert body["items"] == [{"productId": "p1", "name": "Wood Watch", "quantity": 2, "price": 50, "totalCost": 100}]
    assert (body["subtotal"], body["tax"], body["shipping"], body["total"]) == (100, 5, 15, 120)
    assert body["region"] == "us-west-2"
    assert client.get(f"/orders/{body['id']}").json() == body


def test_a_retried_post_with_the_same_key_returns_the_same_order_and_creates_nothing(client: TestClient) -> None:
    first = client.post("/orders", json=ORDER, headers={"Idempotency-Key": "k-1"})
    again = client.post("/orders", json=ORDER, headers={"Idempotency-Key": "k-1"})
    assert first.json() == again.json()
    assert (first.headers["Idempotent-Replayed"], again.headers["Idempotent-Replayed"]) == ("false", "true")
    assert len(client.get("/orders").json()) == 1
    metrics = client.get("/metrics").text
    assert 'shop_orders_created_total{region="us-west-2",service="orders"} 1.0' in metrics


def test_a_key_reused_for_a_different_order_is_refused(client: TestClient) -> None:
    client.post("/orders", json=ORDER, headers={"Idempotency-Key": "k-2"})
    other = client.post("/orders", json={**ORDER, "email": "bob@example.com"}, headers={"Idempotency-Key": "k-2"})
    assert other.status_code == 409 and "k-2" in other.json()["message"]


def test_bad_orders_are_refused_naming_the_field(client: TestClient) -> None:
    cases = {
        "email": {**ORDER, "email": "not-an-email"},
        "items": {**ORDER, "items": []},
        "quantity": {**ORDER, "items": [{"productId": "p", "quantity": 0, "price": 1}]},
        "total": {**ORDER, "total": 1},
        "listed twice": {**ORDER, "items": [{"productId": "p", "quantity": 1, "price": 1}] * 2},
    }
    for word, body in cases.items():
        response = client.post("/orders", json=body)
        assert response.status_code == 400, word
        assert word in response.json()["message"], (word, response.json())
    assert client.post("/orders", json=ORDER, headers={"Idempotency-Key": "bad key"}).status_code == 400


def test_list_pages_newest_first_and_filters_by_email(client: TestClient) -> None:
    for n in range(5):
        client.post("/orders", json={**ORDER, "email": f"u{n % 2}@example.com"})
    page1 = client.get("/orders", params={"page": 1, "size": 2})
    page3 = client.get("/orders", params={"page": 3, "size": 2})
    assert page1.headers["X-Total-Count"] == "5"
    assert len(page1.json()) == 2 and len(page3.json()) == 1
    assert page1.json()[0]["createdOn"] > page1.json()[1]["createdOn"]
    filtered = client.get("/orders", params={"email": "U1@example.com"}).json()
    assert len(filtered) == 2 and {o["email"] for o in filtered} == {"u1@example.com"}


def test_unknown_or_malformed_order_ids(client: TestClient) -> None:
    assert client.get("/orders/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/orders/nope").status_code == 400


def test_the_consumer_applies_each_event_once(client: TestClient) -> None:
    order = client.post("/orders", json=ORDER).json()
    event = {"eventId": "e-1", "eventType": "OrderCreated", "occurredAt": order["createdOn"], "order": order}
    assert client.post("/events/order-created", json=event).json() == {"eventId": "e-1", "duplicate": False}
    assert client.post("/events/order-created", json=event).json() == {"eventId": "e-1", "duplicate": True}
    assert client.get("/sales").json() == [{"productId": "p1", "orders": 1, "quantity": 2, "revenue": 100}]


def test_an_unreachable_writer_is_503_and_not_ready(client: TestClient, repo: MemoryOrders) -> None:
    repo.broken = DatabaseError("orders-writer: connection refused after 5 attempt(s)")
    assert client.post("/orders", json=ORDER).status_code == 503
    health = client.get("/actuator/health")
    assert health.status_code == 503 and "connection refused" in health.json()["reason"]


def _events(n: int) -> list[OutboxEvent]:
    return [OutboxEvent(f"e{i}", {"n": i}, 0) for i in range(n)]


def test_the_relay_delivers_claimed_events_and_marks_them() -> None:
    outbox = MemoryOutbox(_events(3))
    seen: list[str] = []
    relay = OutboxRelay(outbox, lambda e: seen.append(e.event_id), "w")
    result = relay.run_once()
    assert (result.claimed, result.delivered, result.failed) == (3, 3, 0)
    assert seen == ["e0", "e1", "e2"] and outbox.pending() == 0


def test_a_failed_delivery_is_retried_later_and_others_still_go_through() -> None:
    outbox = MemoryOutbox(_events(2))

    def deliver(event: OutboxEvent) -> None:
        if event.event_id == "e0":
            raise RuntimeError("consumer answered HTTP 503")

    relay = OutboxRelay(outbox, deliver, "w")
    result = relay.run_once()
    assert (result.delivered, result.failed) == (1, 1)
    assert outbox.failures[0][0] == "e0" and "503" in outbox.failures[0][2]
    assert outbox.pending() == 1


def test_retry_delays_grow_to_a_minute() -> None:
    assert retry_delay_s(1) == 0.5 and retry_delay_s(2) == 1.0 and retry_delay_s(20) == 60.0
