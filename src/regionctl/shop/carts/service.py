"""The carts HTTP API (the reference's contract; a new line keeps the quantity asked for, a missing line is
404, and the chaos hook that turns health DOWN can be reset)."""

from __future__ import annotations

import logging
import threading
from typing import Annotated

from fastapi import FastAPI, Path, Query
from fastapi.responses import PlainTextResponse

from regionctl.runtime.httperrors import documented
from regionctl.shop.carts import cart as carts
from regionctl.shop.carts.models import ID_PATTERN, Cart, Item
from regionctl.shop.kit.app import ServiceKit, blocking, create_app
from regionctl.shop.kit.background import StartupTask
from regionctl.shop.kit.readiness import Check
from regionctl.shop.kit.settings import ServiceSettings
from regionctl.shop.regional import GuardedStore, store_factory

log = logging.getLogger("regionctl.shop.carts")
HEALTH_PATHS = ("/actuator/health",)
CustomerId = Annotated[str, Path(pattern=ID_PATTERN)]
ItemId = Annotated[str, Path(pattern=ID_PATTERN)]


class ChaosSwitch:
    """The reference's FailHealthIndicator: once failed, health is DOWN until recovered."""

    def __init__(self) -> None:
        self._failed = threading.Event()

    def fail(self) -> None:
        self._failed.set()

    def recover(self) -> None:
        self._failed.clear()

    def check(self) -> str:
        if self._failed.is_set():
            raise RuntimeError("failed on purpose via /actuator/fail")
        return "not failed"


def create_carts_app(kit: ServiceKit, store: GuardedStore) -> FastAPI:
    chaos = ChaosSwitch()
    kit.readiness.add(Check("regional-store", lambda: store.ready(carts.TABLE)))
    kit.readiness.add(Check("chaos", chaos.check))
    app = create_app(kit, title="carts", description="Shopping carts, one per customer.", health_paths=HEALTH_PATHS)
    app.state.chaos = chaos

    @app.get("/carts/{customerId}", response_model=Cart, responses=documented(400, 503))
    @blocking
    def get_cart(customerId: CustomerId) -> Cart:
        return carts.cart(store, customerId)

    @app.delete("/carts/{customerId}", response_model=Cart, status_code=202, responses=documented(400, 503))
    @blocking
    def delete_cart(customerId: CustomerId) -> Cart:
        carts.clear(store, customerId)
        return Cart(customerId=customerId, items=[])

    @app.get("/carts/{customerId}/merge", response_model=Cart, status_code=202, responses=documented(400, 503))
    @blocking
    def merge(customerId: CustomerId, sessionId: Annotated[str, Query(pattern=ID_PATTERN)]) -> Cart:
        return carts.merge(store, customerId, sessionId)

    @app.get("/carts/{customerId}/items", response_model=list[Item], responses=documented(400, 503))
    @blocking
    def list_items(customerId: CustomerId) -> list[Item]:
        return carts.items(store, customerId)

    @app.get("/carts/{customerId}/items/{itemId}", response_model=Item, responses=documented(400, 404, 503))
    @blocking
    def get_item(customerId: CustomerId, itemId: ItemId) -> Item:
        return carts.item(store, customerId, itemId)

    @app.post("/carts/{customerId}/items", response_model=Item, status_code=201, responses=documented(400, 503))
    @blocking
    def add_item(customerId: CustomerId, item: Item) -> Item:
        return carts.add(store, customerId, item)

    @app.patch("/carts/{customerId}/items", response_model=Item, status_code=202, responses=documented(400, 404, 503))
    @blocking
    def update_item(customerId: CustomerId, item: Item) -> Item:
        return carts.replace(store, customerId, item)

    @app.delete("/carts/{customerId}/items/{itemId}", status_code=202, responses=documented(400, 404, 503))
    @blocking
    def delete_item(customerId: CustomerId, itemId: ItemId) -> None:
        carts.remove(store, customerId, itemId)

    @app.post("/actuator/fail", include_in_schema=False)
    async def fail() -> PlainTextResponse:
        chaos.fail()
        kit.readiness.invalidate()
        log.warning("health forced DOWN by /actuator/fail")
        return PlainTextResponse("OK")

    @app.post("/actuator/recover", include_in_schema=False)
    async def recover() -> PlainTextResponse:
        chaos.recover()
        kit.readiness.invalidate()
        log.warning("health no longer forced DOWN (/actuator/recover)")
        return PlainTextResponse("OK")

    return app


def regional_store(settings: ServiceSettings, kit: ServiceKit) -> GuardedStore:
    """The regional store from settings, set up (migrated) in the background until its database answers."""
    store = GuardedStore(store_factory(settings.regional_store_impl, settings.dsn("regional_dsn"), settings.region))
    setup = StartupTask("regional store set-up", store.migrate)
    kit.on_start.append(setup.start)
    kit.on_stop.extend([store.close, setup.stop])
    kit.readiness.add(Check("store-setup", setup.status))
    return store


def from_settings(settings: ServiceSettings) -> FastAPI:
    kit = ServiceKit.create("carts", settings.region)
    return create_carts_app(kit, regional_store(settings, kit))
