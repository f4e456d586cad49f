"""Orders on real PostgreSQL: one transaction for order, items and event; idempotent under concurrency; the
outbox relay delivers every event and the consumer applies each once even when delivered twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from regionctl.runtime.postgres import PgInstance
from regionctl.shop.kit.db import Database, GlobalDatabase
from regionctl.shop.kit.migrate import apply_migrations
from regionctl.shop.orders.models import OrderCreatedEvent, OrderIn
from regionctl.shop.orders.outbox import OutboxEvent, OutboxRelay, PgOutbox
from regionctl.shop.orders.repository import PgOrders
from regionctl.shop.orders.schema import COMPONENT, MIGRATIONS
from tests.integration.shop.pg import dsn

pytestmark = pytest.mark.integration
ORDER = OrderIn.model_validate({"firstName": "Ada", "lastName": "L", "email": "ada@example.com",
                                "items": [{"productId": "p1", "quantity": 2, "price": 50, "name": "Wood"},
                                          {"productId": "p2", "quantity": 1, "price": 385, "name": "Pocket"}]})


@pytest.fixture()
def orders(shop_pg: PgInstance) -> Iterator[PgOrders]:
    writer = Database(dsn(shop_pg, "orders"), "orders-writer")
    apply_migrations(writer, COMPONENT, MIGRATIONS)
    for table in ("order_event_consumed", "product_sales", "order_outbox", "customer_order_item", "customer_order"):
        shop_pg.query(f"delete from {table}", dbname="orders")
    db = GlobalDatabase(writer, Database(dsn(shop_pg, "orders"), "orders-reader"))
    yield PgOrders(db)
    db.close()


def test_an_order_its_items_and_its_event_are_written_together(orders: PgOrders, shop_pg: PgInstance) -> None:
    created, fresh, writer = orders.create(ORDER, "key-a", "us-east-1")
    assert fresh and [i.totalCost for i in created.items] == [100, 385] and created.total == 485
    assert writer == shop_pg.scalar("show cluster_name")  # the member that committed it names itself
    assert orders.get(created.id) == created
    rows = shop_pg.query("select event_type, payload from order_outbox", dbname="orders")
    assert len(rows) == 1 and rows[0]["payload"]["order"]["id"] == created.id


def test_concurrent_retries_with_one_key_make_one_order(orders: PgOrders, shop_pg: PgInstance) -> None:
    results: list[tuple[str, bool]] = []

    def post() -> None:
        order, fresh, _ = orders.create(ORDER, "key-b", "us-west-2")
        results.append((order.id, fresh))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({order_id for order_id, _ in results}) == 1
    assert sorted(fresh for _, fresh in results) == [False] * 5 + [True]
    assert shop_pg.scalar("select count(*) from customer_order", dbname="orders") == 1
    assert shop_pg.scalar("select count(*) from order_outbox", dbname="orders") == 1


def test_listing_filters_by_email_and_pages(orders: PgOrders) -> None:
    for n in range(5):
        orders.create(OrderIn.model_validate({**ORDER.model_dump(), "email": f"u{n % 2}@x.org"}), None, "us-east-1")
    page, total = orders.page("U0@x.org", 1, 2)
    assert total == 3 and len(page) == 2 and all(o.email == "u0@x.org" for o in page)
    assert page[0].createdOn >= page[1].createdOn
    assert len(orders.page(None, 3, 2)[0]) == 1


def test_the_relay_delivers_everything_and_duplicates_are_applied_once(orders: PgOrders, shop_pg: PgInstance) -> None:
    for n in range(25):
        orders.create(ORDER, f"relay-{n}", "us-east-1")
    delivered: list[OutboxEvent] = []

    def deliver(event: OutboxEvent) -> None:
        delivered.append(event)
        orders.consume(OrderCreatedEvent.model_validate(event.payload), "us-east-1")

    relays = [OutboxRelay(PgOutbox(orders.db.writer), deliver, f"w{i}", batch=10) for i in range(2)]
    while any(r.run_once().claimed for r in relays):
        pass
    assert len(delivered) == 25 and len({e.event_id for e in delivered}) == 25
    assert shop_pg.scalar("select count(*) from order_outbox where delivered_at is null", dbname="orders") == 0
    for event in delivered[:5]:  # at-least-once: a second delivery changes nothing
        assert not orders.consume(OrderCreatedEvent.model_validate(event.payload), "us-west-2")
    sales = {s.productId: s for s in orders.sales()}
    assert (sales["p1"].orders, sales["p1"].quantity, sales["p1"].revenue) == (25, 50, 2500)


def test_an_event_whose_delivery_failed_is_retried_later(orders: PgOrders, shop_pg: PgInstance) -> None:
    orders.create(ORDER, "flaky", "us-east-1")
    outbox = PgOutbox(orders.db.writer)

    def refuse(event: OutboxEvent) -> None:
        raise RuntimeError("consumer answered HTTP 503")

    assert OutboxRelay(outbox, refuse, "w").run_once().failed == 1
    row = shop_pg.query("select attempts, last_error, next_attempt_at > now() as later from order_outbox",
                        dbname="orders")[0]
    assert row["attempts"] == 1 and "503" in row["last_error"] and row["later"]
    assert OutboxRelay(outbox, refuse, "w").run_once().claimed == 0  # not due yet
