"""The ui's view of the other services of its region: one small typed method per call the pages make."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from regionctl.shop.kit.http import AsyncServiceClient, Exchange, ServiceCallError

HEALTH_PATHS = {"catalog": "/health", "carts": "/actuator/health", "checkout": "/health",
                "orders": "/actuator/health", "assets": "/health.html"}
Json = dict[str, Any]
# The catalog has no write API (products are seeded with its schema), and a purchase looked the same product up twice
# (added to the cart, then shown at checkout): a product read in the last few seconds is used again.
PRODUCT_TTL_S = 5.0


@dataclass
class ProductCache:
    """Products by id as the catalog answered in the last ``ttl_s`` (a miss or an error is never kept)."""

    ttl_s: float = PRODUCT_TTL_S
    clock: Callable[[], float] = time.monotonic
    limit: int = 10_000
    _kept: dict[str, tuple[float, Json]] = field(default_factory=dict)

    def get(self, product_id: str) -> Json | None:
        kept = self._kept.get(product_id)
        if kept is None or self.clock() - kept[0] >= self.ttl_s:
            return None
        return kept[1]

    def keep(self, product_id: str, product: Json) -> None:
        if len(self._kept) >= self.limit:  # ids come from requests: never let them grow the process
            self._kept.clear()
        self._kept[product_id] = (self.clock(), product)


@dataclass
class Backends:
    catalog: AsyncServiceClient
    carts: AsyncServiceClient
    checkout: AsyncServiceClient
    orders: AsyncServiceClient
    assets: AsyncServiceClient
    products_seen: ProductCache = field(default_factory=ProductCache)

    @classmethod
    def over(cls, exchanges: dict[str, Exchange]) -> Backends:
        clients = {name: AsyncServiceClient(name, exchanges[name]) for name in HEALTH_PATHS}
        return cls(**clients, products_seen=ProductCache())

    async def close(self) -> None:
        for client in (self.catalog, self.carts, self.checkout, self.orders, self.assets):
            await client.exchange.close()

    # ----- catalog ------------------------------------------------------------------------------------------
    async def products(self, tag: str | None, page: int, size: int) -> list[Json]:
        params: dict[str, Any] = {"page": page, "size": size, "order": "name"}
        if tag:
            params["tags"] = tag
        return await self.catalog.call("GET", "/catalogue", params=params)

    async def product_count(self, tag: str | None) -> int:
        body = await self.catalog.call("GET", "/catalogue/size", params={"tags": tag} if tag else {})
        return int(body["size"])

    async def tags(self) -> list[Json]:
        return await self.catalog.call("GET", "/catalogue/tags")

    async def product(self, product_id: str) -> Json | None:
        kept = self.products_seen.get(product_id)
        if kept is not None:
            return kept
        try:
            found: Json = await self.catalog.call("GET", f"/catalogue/product/{product_id}")
        except ServiceCallError as exc:
            if exc.status in (400, 404):
                return None
            raise
        self.products_seen.keep(product_id, found)
        return found

    # ----- carts --------------------------------------------------------------------------------------------
    async def cart(self, customer_id: str) -> Json:
        return await self.carts.call("GET", f"/carts/{customer_id}")

    async def add_to_cart(self, customer_id: str, item_id: str, quantity: int, unit_price: int) -> Json:
        body = {"itemId": item_id, "quantity": quantity, "unitPrice": unit_price}
        return await self.carts.call("POST", f"/carts/{customer_id}/items", json=body)

    async def remove_from_cart(self, customer_id: str, item_id: str) -> None:
        try:
            await self.carts.call("DELETE", f"/carts/{customer_id}/items/{item_id}")
        except ServiceCallError as exc:
            if exc.status not in (400, 404):  # already gone (a retried click) is fine
                raise

    async def clear_cart(self, customer_id: str) -> None:
        await self.carts.call("DELETE", f"/carts/{customer_id}")

    # ----- checkout -----------------------------------------------------------------------------------------
    async def checkout_state(self, customer_id: str) -> Json | None:
        try:
            return await self.checkout.call("GET", f"/checkout/{customer_id}")
        except ServiceCallError as exc:
            if exc.status == 404:
                return None
            raise

    async def update_checkout(self, customer_id: str, request: Json) -> Json:
        return await self.checkout.call(
            "POST", f"/checkout/{customer_id}/update", json=request)

    async def submit_checkout(self, customer_id: str) -> Json:
        return await self.checkout.call("POST", f"/checkout/{customer_id}/submit")

    # ----- orders -------------------------------------------------------------------------------------------
    async def list_orders(self, email: str | None, page: int, size: int) -> tuple[list[Json], int]:
        params: dict[str, Any] = {"page": page, "size": size}
        if email:
            params["email"] = email
        response = await self.orders.raw("GET", "/orders", params=params)
        if response.status_code != 200:
            raise ServiceCallError("orders", f"HTTP {response.status_code} listing orders", response.status_code)
        return response.json(), int(response.headers.get("X-Total-Count", "0"))

    # ----- assets -------------------------------------------------------------------------------------------
    async def image(self, name: str) -> tuple[bytes, str] | None:
        response = await self.assets.raw("GET", f"/assets/{name}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ServiceCallError("assets", f"HTTP {response.status_code} for {name}", response.status_code)
        return response.content, response.headers.get("content-type", "application/octet-stream")
