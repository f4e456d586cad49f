"""The checkout HTTP API: the state of a customer's checkout lives in the regional store (so it survives the
loss of a region and follows the customer to the other one); submitting turns it into an order exactly once."""

from __future__ import annotations

import logging
import random
import secrets
from typing import Annotated, Any, Protocol

from fastapi import FastAPI, Header, Path

from regionctl.errors import NotFoundError
from regionctl.runtime.httperrors import documented
from regionctl.shop.carts.models import ID_PATTERN
from regionctl.shop.carts.service import regional_store
from regionctl.shop.checkout.models import Checkout, CheckoutRequest, CheckoutSubmitted
from regionctl.shop.checkout.rules import order_payload, price, require_complete
from regionctl.shop.kit.app import ServiceKit, blocking, create_app
from regionctl.shop.kit.http import HttpExchange, SyncExchange, SyncServiceClient
from regionctl.shop.kit.readiness import Check, Degraded
from regionctl.shop.kit.settings import ServiceSettings
from regionctl.shop.orders.models import check_idempotency_key
from regionctl.shop.regional import GuardedStore

log = logging.getLogger("regionctl.shop.checkout")
HEALTH_PATHS = ("/health",)
TABLE = "checkout"
CustomerId = Annotated[str, Path(pattern=ID_PATTERN)]


class OrdersClient(Protocol):
    def create(self, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]: ...
    def ready(self) -> str: ...


class HttpOrders:
    """The orders service over HTTP; every create carries the checkout's idempotency key."""

    def __init__(self, exchange: SyncExchange) -> None:
        self.client = SyncServiceClient("orders", exchange)

    def create(self, payload: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        return self.client.call("POST", "/orders", json=payload,
                                headers={"Idempotency-Key": idempotency_key})

    def ready(self) -> str:
        body = self.client.call("GET", "/actuator/health")
        if isinstance(body, dict) and body.get("degraded"):
            raise Degraded(f"orders is degraded ({body.get('reason', '')})")
        return f"orders {body.get('status', '?') if isinstance(body, dict) else '?'}"


class CheckoutState:
    """The stored value: the checkout, the key its order will be created with, and the result once submitted."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.checkout = Checkout.model_validate(value["checkout"])
        self.order_key = str(value["orderKey"])
        self.submitted = value.get("submitted")

    @staticmethod
    def fresh(checkout: Checkout) -> dict[str, Any]:
        return {"checkout": checkout.model_dump(mode="json"), "orderKey": f"checkout-{secrets.token_hex(16)}",
                "submitted": None}


def create_checkout_app(kit: ServiceKit, store: GuardedStore, orders: OrdersClient, shipping_prefix: str = "",
                        rng: random.Random | None = None) -> FastAPI:
    rng = rng or random.SystemRandom()
    kit.readiness.add(Check("regional-store", lambda: store.ready(TABLE)))
    kit.readiness.add(Check("orders", orders.ready))
    app = create_app(kit, title="checkout", description="Checkouts in progress and their submission.",
                     health_paths=HEALTH_PATHS)

    def load(customer_id: str) -> CheckoutState | None:
        stored = store.get(TABLE, customer_id)
        return CheckoutState(stored.value) if stored is not None else None

    @app.get("/checkout/{customerId}", response_model=Checkout, responses=documented(400, 404, 503))
    @blocking
    def get_checkout(customerId: CustomerId) -> Checkout:
        state = load(customerId)
        if state is None or state.submitted:
            raise NotFoundError("Checkout not found")
        return state.checkout

    @app.post("/checkout/{customerId}/update", response_model=Checkout, status_code=201,
              responses=documented(400, 503))
    @blocking
    def update(customerId: CustomerId, request: CheckoutRequest) -> Checkout:
        checkout = price(request, shipping_prefix, rng)
        store.put(TABLE, customerId, CheckoutState.fresh(checkout))
        return checkout

    @app.post("/checkout/{customerId}/submit", response_model=CheckoutSubmitted, status_code=201,
              responses=documented(400, 404, 409, 502, 503))
    @blocking
    def submit(
        customerId: CustomerId,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    ) -> CheckoutSubmitted:
        """Create the order (once, however often this is retried) and close the checkout."""
        state = load(customerId)
        if state is None:
            raise NotFoundError("Checkout not found")
        key = check_idempotency_key(idempotency_key) or state.order_key
        if state.submitted:
            if state.submitted.get("key") != key:
                raise NotFoundError("Checkout not found")
            return CheckoutSubmitted.model_validate(state.submitted)
        require_complete(customerId, state.checkout)
        order = orders.create(order_payload(state.checkout), key)
        result = CheckoutSubmitted(orderId=order["id"], customerEmail=str(state.checkout.request.customerEmail))
        store.put(TABLE, customerId, {"checkout": state.checkout.model_dump(mode="json"),
                                      "orderKey": state.order_key, "submitted": {"key": key, **result.model_dump()}})
        log.info("checkout submitted as order %s", result.orderId, extra={"order_id": result.orderId})
        return result

    return app


def from_settings(settings: ServiceSettings) -> FastAPI:
    kit = ServiceKit.create("checkout", settings.region)
    store = regional_store(settings, kit)
    exchange = HttpExchange(settings.endpoint("orders"), read_timeout_s=settings.http_timeout_s + 5)
    kit.on_stop.append(exchange.close)
    return create_checkout_app(kit, store, HttpOrders(exchange), settings.shipping_name_prefix)
