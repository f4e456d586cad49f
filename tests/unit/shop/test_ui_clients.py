"""The ui's product lookups: a product the catalog gave in the last few seconds is used again (a purchase read
it twice), a missing product or a failed call is asked again every time, and nothing stays past its time."""

from __future__ import annotations

import asyncio
import json as _json
from collections.abc import Mapping
from typing import Any

import pytest

from regionctl.shop.kit.http import Answer, Exchange, ServiceCallError
from regionctl.shop.ui.clients import Backends, ProductCache


class Catalog:
    """The catalog's product endpoint as an Exchange: answers from ``products``, or ``status`` when set."""

    def __init__(self) -> None:
        self.products = {"w1": {"id": "w1", "name": "Watch", "price": 100}}
        self.status: int | None = None
        self.asked: list[str] = []

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, headers: Mapping[str, str] | None = None) -> Answer:
        product_id = path.rsplit("/", 1)[-1]
        self.asked.append(product_id)
        if self.status is not None:
            return Answer(self.status, {"content-type": "application/json"}, b'{"message": "down"}')
        if product_id not in self.products:
            return Answer(404, {"content-type": "application/json"}, b'{"message": "no such product"}')
        return Answer(200, {"content-type": "application/json"}, _json.dumps(self.products[product_id]).encode())

    async def close(self) -> None:
        pass


def backends(catalog: Catalog, now: list[float]) -> Backends:
    exchanges: dict[str, Exchange] = dict.fromkeys(("catalog", "carts", "checkout", "orders", "assets"), catalog)
    built = Backends.over(exchanges)
    built.products_seen = ProductCache(ttl_s=5.0, clock=lambda: now[0])
    return built


def test_a_product_is_read_once_within_its_time_and_again_after() -> None:
    catalog, now = Catalog(), [0.0]
    ui = backends(catalog, now)

    async def run() -> None:
        assert (await ui.product("w1"))["price"] == 100
        catalog.products["w1"] = {"id": "w1", "name": "Watch", "price": 120}
        now[0] = 4.9
        assert (await ui.product("w1"))["price"] == 100 and catalog.asked == ["w1"]
        now[0] = 5.0
        assert (await ui.product("w1"))["price"] == 120 and catalog.asked == ["w1", "w1"]

    asyncio.run(run())


def test_a_missing_product_and_a_failed_call_are_asked_again_every_time() -> None:
    catalog, now = Catalog(), [0.0]
    ui = backends(catalog, now)

    async def run() -> None:
        assert await ui.product("nope") is None and await ui.product("nope") is None
        catalog.status = 503
        with pytest.raises(ServiceCallError):
            await ui.product("w1")
        catalog.status = None
        assert (await ui.product("w1"))["id"] == "w1"
        assert catalog.asked == ["nope", "nope", "w1", "w1"]

    asyncio.run(run())


def test_the_cache_is_bounded_and_off_at_zero() -> None:
    cache = ProductCache(ttl_s=5.0, clock=lambda: 0.0, limit=2)
    for product_id in ("a", "b", "c"):
        cache.keep(product_id, {"id": product_id})
    assert cache.get("c") == {"id": "c"} and cache.get("a") is None
    off = ProductCache(ttl_s=0, clock=lambda: 0.0)
    off.keep("a", {"id": "a"})
    assert off.get("a") is None
