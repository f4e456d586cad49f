"""Session-wide fixtures of the shop's tests (a pytest plugin, so integration and browser tests share them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from regionctl.runtime.postgres import PgInstance
from tests.integration.shop.pg import destroy, scratch_dir, start_primary
from tests.integration.shop.stack import Deployment, start_deployment, stop_deployment


@pytest.fixture(scope="session")
def shop_pg() -> Iterator[PgInstance]:
    """One PostgreSQL with a database per use (catalog, orders, regional, scratch)."""
    root = scratch_dir("regionctl-shop-pg-")
    instance = start_primary(root, "shop", ("catalog", "orders", "regional", "scratch"))
    try:
        yield instance
    finally:
        destroy([instance], root)


@pytest.fixture(scope="session")
def shop_deployment() -> Iterator[Deployment]:
    """Both regions' six services as real processes on a writer and a streaming standby."""
    deployment = start_deployment()
    try:
        yield deployment
    finally:
        stop_deployment(deployment)
