"""All six services in one process on fakes, wired the way they are in a region (ui -> others over HTTP)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from regionctl.shop.assets.service import create_assets_app, load_images
from regionctl.shop.carts.service import create_carts_app
from regionctl.shop.catalog.service import create_catalog_app
from regionctl.shop.checkout.service import HttpOrders, create_checkout_app
from regionctl.shop.kit.app import ServiceKit
from regionctl.shop.kit.http import Answer, Exchange
from regionctl.shop.orders.service import create_orders_app
from regionctl.shop.regional import GuardedStore
from regionctl.shop.ui.clients import Backends
from regionctl.shop.ui.service import create_ui_app
from tests.unit.shop.fakes import MemoryCatalog, MemoryOrders, MemoryRegionalStore


class ClientExchange:
    """A SyncExchange to an app in this process through its TestClient (checkout calling orders)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def request(self, method: str, path: str, *, json: Any = None,
                headers: Mapping[str, str] | None = None) -> Answer:
        response = self.client.request(method, path, json=json, headers=headers)
        return Answer(response.status_code, response.headers, response.content)

    def close(self) -> None:
        self.client.close()


class AsgiExchange:
    """The ui's Exchange to an app in this process (httpx's ASGI transport): the pages run, no socket opens."""

    def __init__(self, name: str, app: FastAPI) -> None:
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, headers: Mapping[str, str] | None = None) -> Answer:
        response = await self.client.request(method, path, params=params, json=json, headers=headers)
        return Answer(response.status_code, response.headers, response.content)

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class Stack:
    ui: TestClient
    apps: dict[str, FastAPI]
    orders: MemoryOrders
    catalog: MemoryCatalog
    regional: MemoryRegionalStore


def build_stack(region: str = "us-east-1", banner: str = "") -> Stack:
    orders, catalog, regional = MemoryOrders(), MemoryCatalog(), MemoryRegionalStore(region)
    store = GuardedStore(lambda: regional, retry_delay_s=0)
    orders_app = create_orders_app(ServiceKit.create("orders", region), orders)
    apps: dict[str, FastAPI] = {
        "catalog": create_catalog_app(ServiceKit.create("catalog", region), catalog),
        "carts": create_carts_app(ServiceKit.create("carts", region), store),
        "checkout": create_checkout_app(ServiceKit.create("checkout", region), store,
                                        HttpOrders(ClientExchange(TestClient(orders_app)))),
        "orders": orders_app,
        "assets": create_assets_app(ServiceKit.create("assets", region), load_images()),
    }
    exchanges: dict[str, Exchange] = {name: AsgiExchange(name, app) for name, app in apps.items()}
    ui = create_ui_app(ServiceKit.create("ui", region), Backends.over(exchanges), banner)
    return Stack(TestClient(ui), apps, orders, catalog, regional)
