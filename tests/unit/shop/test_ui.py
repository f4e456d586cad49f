"""The ui pages (reference section 2) against the five other services in process: a visitor browses, buys a
watch through the four checkout steps, and finds the order; sessions are per visitor."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from regionctl.errors import DatabaseError
from regionctl.shop.ui.forms import validate_shipping
from regionctl.shop.ui.session import COOKIE, session_for
from regionctl.shop.ui.views import Pagination, clamp
from tests.unit.shop.shopstack import Stack, build_stack

WOOD = "a0a4f044-b040-410d-8ead-4de0446aec7e"
CUSTOMER = {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com", "address1": "1 Main St",
            "address2": "", "city": "Springfield", "state": "IL", "zip": "62701"}


@pytest.fixture()
def stack() -> Stack:
    return build_stack(banner="demo")


@pytest.fixture()
def ui(stack: Stack) -> TestClient:
    return stack.ui


def buy(ui: TestClient, product: str = WOOD, quantity: int = 1) -> str:
    assert ui.post("/cart", data={"productId": product, "quantity": quantity}).status_code == 200
    assert ui.get("/checkout").status_code == 200
    assert ui.post("/checkout", data=CUSTOMER).status_code == 200
    assert ui.post("/checkout/delivery", data={"token": "priority-mail"}).status_code == 200
    assert ui.post("/checkout/payment", data={"cardNumber": "4111"}).status_code == 200
    confirmation = ui.post("/checkout/confirm")
    assert confirmation.status_code == 200
    found = re.search(r'id="order-id">([0-9a-f-]{36})<', confirmation.text)
    assert found, confirmation.text
    return found.group(1)


def test_root_redirects_home_and_home_shows_four_products_and_the_region(ui: TestClient) -> None:
    response = ui.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/home"
    home = ui.get("/home")
    assert home.text.count('class="card product-card"') == 4
    assert 'data-region="us-east-1"' in home.text and "demo" in home.text


def test_each_visitor_gets_a_random_session_cookie_of_their_own(stack: Stack) -> None:
    first = stack.ui.get("/home").cookies.get(COOKIE)
    other = TestClient(stack.ui.app).get("/home").cookies.get(COOKIE)
    assert first and other and first != other
    assert first != "3e8480f7-92fb-4043-8e30-41cf906e676f"
    assert session_for("forged:value")[1] and session_for(first) == (first, False)


def test_carts_are_per_visitor(stack: Stack) -> None:
    stack.ui.post("/cart", data={"productId": WOOD})
    stranger = TestClient(stack.ui.app)
    assert "You don't have any items" in stranger.get("/cart").text
    assert 'id="cart-count">1<' in stack.ui.get("/cart").text


def test_catalog_filters_by_tag_and_pages(ui: TestClient) -> None:
    page = re.sub(r"\s+", " ", ui.get("/catalog", params={"tag": "dress", "page": 2, "size": 3}).text)
    assert page.count('class="card product-card"') == 2
    assert "Showing 4&ndash;5 of 5 products" in page
    assert '<a href="/catalog?page=1&size=3&tag=dress" class="active">Dress</a>' in page
    assert 'tag=dress&page=2" class="active">2</a>' in page


def test_product_page_and_unknown_product(ui: TestClient) -> None:
    assert "Looks like a tree" in ui.get(f"/catalog/{WOOD}").text
    missing = ui.get("/catalog/nope")
    assert missing.status_code == 404 and "Oops! Sorry." in missing.text


def test_cart_adds_quantities_at_the_catalog_price_and_removes(ui: TestClient, stack: Stack) -> None:
    ui.post("/cart", data={"productId": WOOD, "quantity": 2})
    ui.post("/cart", data={"productId": WOOD})
    page = ui.get("/cart").text
    assert "$50 x 3" in page and 'id="cart-total">$150<' in page
    ui.post("/cart/remove", data={"productId": WOOD})
    assert "You don't have any items" in ui.get("/cart").text
    assert ui.post("/cart", data={"productId": "nope"}).status_code == 404


def test_the_purchase_flow_makes_one_order_with_shipping_in_the_total(ui: TestClient, stack: Stack) -> None:
    order_id = buy(ui, quantity=2)
    order = stack.orders.get(order_id)
    assert order is not None and order.email == "ada@example.com"
    assert (order.subtotal, order.tax, order.shipping, order.total) == (100, 5, 5, 110)
    assert "You don't have any items" in ui.get("/cart").text
    assert order_id in ui.get("/orders").text


def test_confirming_twice_shows_the_same_order_and_creates_one(ui: TestClient, stack: Stack) -> None:
    order_id = buy(ui)
    again = ui.post("/checkout/confirm")
    assert order_id in again.text and len(stack.orders.orders) == 1


def test_step_one_validation_names_each_bad_field(ui: TestClient) -> None:
    ui.post("/cart", data={"productId": WOOD})
    ui.get("/checkout")
    response = ui.post("/checkout", data={**CUSTOMER, "email": "nope", "zip": "123", "state": "Illinois",
                                          "city": ""})
    assert response.status_code == 400
    for field in ("email", "zip", "state", "city"):
        assert f'data-field="{field}"' in response.text
    assert 'value="Ada"' in response.text  # what was typed is kept


def test_an_unknown_delivery_option_is_refused(ui: TestClient) -> None:
    ui.post("/cart", data={"productId": WOOD})
    ui.get("/checkout")
    ui.post("/checkout", data=CUSTOMER)
    response = ui.post("/checkout/delivery", data={"token": "teleport"})
    assert response.status_code == 400 and "Choose one of the delivery options" in response.text


def test_skipping_steps_sends_the_visitor_back(ui: TestClient) -> None:
    assert ui.get("/checkout", follow_redirects=False).headers["location"] == "/cart"  # empty cart
    ui.post("/cart", data={"productId": WOOD})
    ui.get("/checkout")
    assert ui.post("/checkout/payment", follow_redirects=False).headers["location"] == "/checkout"
    assert ui.post("/checkout/confirm", follow_redirects=False).headers["location"] == "/checkout"


def test_orders_page_filters_by_email_and_pages(ui: TestClient) -> None:
    first = buy(ui)
    TestClient(ui.app).get("/home")
    page = ui.get("/orders", params={"email": "someone@else.org"}).text
    assert first not in page and "0 orders" in page
    assert first in ui.get("/orders", params={"email": "ada@example.com", "size": 1}).text


def test_images_are_proxied_with_a_long_cache(ui: TestClient) -> None:
    response = ui.get("/assets/wood_watch.svg")
    assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
    assert "max-age=2592000" in response.headers["cache-control"]
    assert ui.get("/assets/../service.py").status_code == 404


def test_fail_cart_turns_carts_down_and_recover_cart_brings_it_back(ui: TestClient, stack: Stack) -> None:
    carts = TestClient(stack.apps["carts"])
    assert ui.post("/actuator/fail-cart").text == "OK"
    assert carts.get("/actuator/health").status_code == 503
    assert ui.post("/actuator/recover-cart").text == "OK"
    assert carts.get("/actuator/health").status_code == 200


def test_a_backend_outage_is_a_friendly_503_page(ui: TestClient, stack: Stack) -> None:
    stack.catalog.broken = DatabaseError("catalog-reader: connection refused")
    response = ui.get("/home")
    assert response.status_code == 503 and "Oops! Sorry." in response.text
    assert "connection refused" not in response.text


def test_view_helpers() -> None:
    assert clamp("x", 3, 1, 9) == 3 and clamp("50", 3, 1, 9) == 9 and clamp(None, 1, 1, 5) == 1
    pagination = Pagination(2, 3, 7)
    assert (pagination.pages, pagination.first_shown, pagination.last_shown) == (3, 4, 6)
    assert validate_shipping({**CUSTOMER, "address2": None}).valid  # type: ignore[dict-item]
