"""The kit's database access against real PostgreSQL: migrations, reconnects, and a writer that moves."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from regionctl.runtime.postgres import PgInstance
from regionctl.shop.catalog.models import ProductQuery, parse_order, parse_tags
from regionctl.shop.catalog.repository import PgCatalog
from regionctl.shop.catalog.schema import COMPONENT, MIGRATIONS
from regionctl.shop.kit.db import Conn, Database, GlobalDatabase
from regionctl.shop.kit.migrate import apply_migrations
from tests.integration.shop.pg import TEST_SETTINGS, destroy, dsn, multi_host_dsn, scratch_dir, start_primary

pytestmark = pytest.mark.integration


def test_catalog_migrations_are_idempotent_even_when_two_regions_race(shop_pg: PgInstance) -> None:
    dbs = [Database(dsn(shop_pg, "catalog"), f"catalog-{i}") for i in range(2)]
    results: list[list[int]] = []
    threads = [threading.Thread(target=lambda d=d: results.append(apply_migrations(d, COMPONENT, MIGRATIONS)))
               for d in dbs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=len) == [[], [1, 2]]
    assert apply_migrations(dbs[0], COMPONENT, MIGRATIONS) == []
    assert shop_pg.scalar("select count(*) from product", dbname="catalog") == 6
    assert shop_pg.scalar("select count(*) from tag", dbname="catalog") == 4
    assert shop_pg.scalar("select count(*) from product_tag", dbname="catalog") == 9
    for db in dbs:
        db.close()


@pytest.fixture()
def catalog(shop_pg: PgInstance) -> Iterator[PgCatalog]:
    db = Database(dsn(shop_pg, "catalog"), "catalog")
    apply_migrations(db, COMPONENT, MIGRATIONS)
    yield PgCatalog(GlobalDatabase(db, Database(dsn(shop_pg, "catalog"), "catalog-reader")))
    db.close()


def test_catalog_queries_order_filter_and_page_in_sql(catalog: PgCatalog) -> None:
    by_price = catalog.products(ProductQuery((), parse_order("-price"), 1, 10))
    assert [p.price for p in by_price] == [5100, 795, 650, 385, 180, 50]
    page2 = catalog.products(ProductQuery((), parse_order("name"), 2, 4))
    assert [p.name for p in page2] == ["Smart 3.0", "Wood Watch"]
    tagged = catalog.products(ProductQuery(parse_tags("luxury,casual"), parse_order("price"), 1, 10))
    assert [(p.name, p.tag) for p in tagged] == [("Wood Watch", ["casual"]),
                                                 ("Chronograf Classic", ["dress", "luxury"])]
    assert catalog.count(parse_tags("dress")) == 5
    assert [t.name for t in catalog.tags()] == ["smart", "dress", "luxury", "casual"]
    assert catalog.product("ee3715be-b4ba-11ea-b3de-0242ac130004").tag == ["smart", "dress"]  # type: ignore[union-attr]
    assert catalog.product("missing") is None
    assert catalog.ready() == "schema v2"


def test_a_pooled_connection_survives_a_server_restart(shop_pg: PgInstance) -> None:
    db = Database(dsn(shop_pg, "scratch"), "scratch", deadline_s=30)
    assert db.run(lambda c: c.execute("select 1 as x").fetchone())["x"] == 1  # type: ignore[index]
    shop_pg.stop("fast")
    restarter = threading.Timer(0.5, lambda: shop_pg.start(TEST_SETTINGS))
    restarter.start()
    try:
        assert db.run(lambda c: c.execute("select 2 as x").fetchone())["x"] == 2  # type: ignore[index]
    finally:
        restarter.join()
        db.close()


def test_writes_follow_the_writer_when_it_moves_without_a_new_database_object() -> None:
    """Two members; the writable one flips. The pooled connection hits a read-only error and is replaced."""
    root = scratch_dir("regionctl-shop-move-")
    a = start_primary(root, "a", ("app",))
    b = start_primary(root, "b", ("app",))
    try:
        for member in (a, b):
            member.query("create table t (member text)", dbname="app")
        b.query("alter system set default_transaction_read_only = on")
        b.query("select pg_reload_conf()")
        db = Database(multi_host_dsn([a, b], "app"), "app-writer", deadline_s=20)

        def insert(conn: Conn) -> str:
            conn.execute("insert into t values (current_setting('cluster_name'))")
            return str(conn.execute("select current_setting('cluster_name') as m").fetchone()["m"])  # type: ignore[index]

        assert db.run(insert) == "a"
        a.query("alter system set default_transaction_read_only = on")
        a.query("select pg_reload_conf()")
        b.query("alter system set default_transaction_read_only = off")
        b.query("select pg_reload_conf()")
        assert db.run(insert) == "b"
        assert a.scalar("select count(*) from t", dbname="app") == 1
        assert b.scalar("select count(*) from t", dbname="app") == 1
        db.close()
    finally:
        destroy([a, b], root)
