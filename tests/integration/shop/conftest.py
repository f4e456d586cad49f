"""Session-wide PostgreSQL for the shop's integration tests: one instance, one database per use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from regionctl.runtime.postgres import PgInstance
from tests.integration.shop.pg import destroy, scratch_dir, start_primary


@pytest.fixture(scope="session")
def shop_pg() -> Iterator[PgInstance]:
    root = scratch_dir("regionctl-shop-pg-")
    instance = start_primary(root, "shop", ("catalog", "orders", "regional", "scratch"))
    try:
        yield instance
    finally:
        destroy([instance], root)
