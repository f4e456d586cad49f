"""The shop's single-PostgreSQL tests (kit, orders repository) share one throw-away instance; the tests that
need both regions use the suite's real deployment (the ``deployment`` fixture) instead."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from regionctl.runtime.postgres import PgInstance
from tests.integration.shop.pg import destroy, scratch_dir, start_primary


@pytest.fixture(scope="session")
def shop_pg() -> Iterator[PgInstance]:
    """One PostgreSQL with a database per use (catalog, orders, scratch)."""
    root = scratch_dir("regionctl-shop-pg-")
    instance = start_primary(root, "shop", ("catalog", "orders", "scratch"))
    try:
        yield instance
    finally:
        destroy([instance], root)
