"""Schemathesis against each JSON service's own OpenAPI, in process, on fakes: no server error, and every
answer is one the schema documents (status, content type, body shape)."""

from __future__ import annotations

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from regionctl.shop.carts.service import create_carts_app
from regionctl.shop.catalog.service import create_catalog_app
from regionctl.shop.checkout.service import HttpOrders, create_checkout_app
from regionctl.shop.kit.app import ServiceKit
from regionctl.shop.orders.service import create_orders_app
from regionctl.shop.regional import GuardedStore
from tests.unit.shop.fakes import MemoryCatalog, MemoryOrders, MemoryRegionalStore
from tests.unit.shop.shopstack import ClientExchange

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

catalog_schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_catalog_app(ServiceKit.create("catalog", "us-east-1"), MemoryCatalog())
)


@catalog_schema.parametrize()
@FUZZ
def test_catalog_api(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


orders_schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_orders_app(ServiceKit.create("orders", "us-east-1"), MemoryOrders())
)


@orders_schema.parametrize()
@FUZZ
def test_orders_api(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


carts_schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_carts_app(ServiceKit.create("carts", "us-east-1"), GuardedStore(lambda: MemoryRegionalStore("us-east-1"))),
)


@carts_schema.parametrize()
@FUZZ
def test_carts_api(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


_orders_for_checkout = TestClient(create_orders_app(ServiceKit.create("orders", "us-east-1"), MemoryOrders()))
checkout_schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_checkout_app(ServiceKit.create("checkout", "us-east-1"),
                        GuardedStore(lambda: MemoryRegionalStore("us-east-1")),
                        HttpOrders(ClientExchange(_orders_for_checkout))),
)


@checkout_schema.parametrize()
@FUZZ
def test_checkout_api(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
