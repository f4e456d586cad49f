"""The carts HTTP contract (reference section 1.3) with its defects fixed, on an in-memory regional store."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from regionctl.errors import DatabaseError
from regionctl.shop.carts.service import create_carts_app
from regionctl.shop.kit.app import ServiceKit
from regionctl.shop.regional import GuardedStore
from tests.unit.shop.fakes import MemoryRegionalStore

WATCH = {"itemId": "a0a4f044-b040-410d-8ead-4de0446aec7e", "quantity": 3, "unitPrice": 50}


@pytest.fixture()
def memory() -> MemoryRegionalStore:
    return MemoryRegionalStore("us-east-1")


@pytest.fixture()
def client(memory: MemoryRegionalStore) -> TestClient:
    store = GuardedStore(lambda: memory, retry_delay_s=0)
    return TestClient(create_carts_app(ServiceKit.create("carts", "us-east-1"), store))


def test_an_unknown_cart_is_empty(client: TestClient) -> None:
    assert client.get("/carts/c1").json() == {"customerId": "c1", "items": []}
    assert client.get("/carts/c1/items").json() == []


def test_a_new_item_keeps_the_quantity_asked_for(client: TestClient) -> None:
    response = client.post("/carts/c1/items", json=WATCH)
    assert response.status_code == 201 and response.json() == WATCH
    assert client.get("/carts/c1").json()["items"] == [WATCH]


def test_adding_an_item_again_adds_to_its_quantity(client: TestClient) -> None:
    client.post("/carts/c1/items", json=WATCH)
    again = client.post("/carts/c1/items", json={**WATCH, "quantity": 2})
    assert again.json()["quantity"] == 5
    assert client.get(f"/carts/c1/items/{WATCH['itemId']}").json()["quantity"] == 5


def test_patch_sets_quantity_and_price_and_404s_a_missing_line(client: TestClient) -> None:
    client.post("/carts/c1/items", json=WATCH)
    response = client.patch("/carts/c1/items", json={**WATCH, "quantity": 1, "unitPrice": 45})
    assert response.status_code == 202 and response.json() == {**WATCH, "quantity": 1, "unitPrice": 45}
    assert client.patch("/carts/c1/items", json={**WATCH, "itemId": "other"}).status_code == 404


def test_missing_items_are_404_not_500(client: TestClient) -> None:
    response = client.get("/carts/c1/items/nope")
    assert response.status_code == 404 and "nope" in response.json()["message"]
    assert client.delete("/carts/c1/items/nope").status_code == 404


def test_deleting_an_item_and_the_cart(client: TestClient) -> None:
    client.post("/carts/c1/items", json=WATCH)
    client.post("/carts/c1/items", json={**WATCH, "itemId": "second"})
    assert client.delete(f"/carts/c1/items/{WATCH['itemId']}").status_code == 202
    assert [i["itemId"] for i in client.get("/carts/c1/items").json()] == ["second"]
    emptied = client.delete("/carts/c1")
    assert emptied.status_code == 202 and emptied.json() == {"customerId": "c1", "items": []}
    assert client.get("/carts/c1").json()["items"] == []


def test_carts_do_not_leak_between_customers_sharing_a_prefix(client: TestClient) -> None:
    client.post("/carts/c1/items", json=WATCH)
    assert client.get("/carts/c/items").json() == []
    assert client.get("/carts/c10/items").json() == []


def test_merge_moves_an_anonymous_cart_into_the_customer_cart(client: TestClient) -> None:
    client.post("/carts/anon/items", json=WATCH)
    client.post("/carts/c1/items", json={**WATCH, "quantity": 1})
    merged = client.get("/carts/c1/merge", params={"sessionId": "anon"})
    assert merged.status_code == 202 and merged.json()["items"][0]["quantity"] == 4
    assert client.get("/carts/anon/items").json() == []


def test_ids_that_could_collide_in_store_keys_are_refused(client: TestClient) -> None:
    assert client.get("/carts/a:b").status_code == 400
    assert client.post("/carts/c1/items", json={**WATCH, "itemId": "x%"}).status_code == 400
    assert client.post("/carts/c1/items", json={**WATCH, "quantity": 0}).status_code == 400


def test_chaos_fail_turns_health_down_until_recovered(client: TestClient) -> None:
    assert client.get("/actuator/health").status_code == 200
    assert client.post("/actuator/fail").text == "OK"
    down = client.get("/actuator/health")
    assert down.status_code == 503 and down.json()["components"]["chaos"]["status"] == "DOWN"
    client.post("/actuator/recover")
    assert client.get("/actuator/health").status_code == 200


def test_a_store_outage_is_503_and_the_store_is_reopened_afterwards(client: TestClient,
                                                                   memory: MemoryRegionalStore) -> None:
    memory.broken = DatabaseError("connection refused")
    assert client.get("/carts/c1").status_code == 503
    memory.broken = None
    assert client.get("/carts/c1").status_code == 200


def test_a_quantity_beyond_the_limit_is_refused_and_nothing_changes(client: TestClient) -> None:
    client.post("/carts/c1/items", json={**WATCH, "quantity": 9_999})
    response = client.post("/carts/c1/items", json={**WATCH, "quantity": 2})
    assert response.status_code == 400 and "10000" in response.json()["message"]
    assert client.get(f"/carts/c1/items/{WATCH['itemId']}").json()["quantity"] == 9_999
