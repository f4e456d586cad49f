"""Orders on PostgreSQL: creation on the writer in one transaction (order, items, outbox event), reads on the
local member. Creation is safe to retry: the id comes from the idempotency key and the insert does nothing if
the order is already there."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from regionctl.errors import ConflictError
from regionctl.shop.kit.db import Conn, GlobalDatabase
from regionctl.shop.kit.migrate import schema_version
from regionctl.shop.kit.readiness import Degraded
from regionctl.shop.orders.models import (
    EVENT_TYPE,
    ExistingOrder,
    OrderCreatedEvent,
    OrderIn,
    OrderItem,
    ProductSales,
    event_id_for,
    order_id_for,
    priced_items,
    request_hash,
    totals,
)
from regionctl.shop.orders.schema import COMPONENT, MIGRATIONS


class Created(NamedTuple):
    """A created (or replayed) order, and the database member that committed it: its ``cluster_name``, such as
    ``orders-us-west-2`` (a drill and a runbook's recovery probe tell a surviving write from a doomed one by it)."""

    order: ExistingOrder
    fresh: bool
    writer: str


class OrdersRepository(Protocol):
    def create(self, order: OrderIn, key: str | None, region: str) -> Created: ...
    def page(self, email: str | None, page: int, size: int) -> tuple[list[ExistingOrder], int]: ...
    def get(self, order_id: str) -> ExistingOrder | None: ...
    def consume(self, event: OrderCreatedEvent, region: str) -> bool: ...
    def sales(self) -> list[ProductSales]: ...
    def ready(self) -> str: ...


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ORDER_COLUMNS = "id, first_name, last_name, email, created_on, region, subtotal, tax, shipping, total"


def _writer(conn: Conn) -> str:
    row = conn.execute("select current_setting('cluster_name') as writer").fetchone()
    return str(row["writer"]) if row else ""


def _orders_with_items(conn: Conn, rows: list[dict[str, Any]]) -> list[ExistingOrder]:
    ids = [r["id"] for r in rows]
    items: dict[Any, list[OrderItem]] = {i: [] for i in ids}
    if ids:
        for item in conn.execute(
            "select order_id, product_id, name, quantity, price, total_cost from customer_order_item "
            "where order_id = any(%s) order by order_id, product_id", (ids,)
        ).fetchall():
            items[item["order_id"]].append(OrderItem(productId=item["product_id"], name=item["name"],
                                                     quantity=item["quantity"], price=item["price"],
                                                     totalCost=item["total_cost"]))
    return [
        ExistingOrder(id=str(r["id"]), firstName=r["first_name"], lastName=r["last_name"], email=r["email"],
                      createdOn=iso(r["created_on"]), region=r["region"], items=items[r["id"]],
                      subtotal=r["subtotal"], tax=r["tax"], shipping=r["shipping"], total=r["total"])
        for r in rows
    ]


class PgOrders:
    def __init__(self, db: GlobalDatabase) -> None:
        self.db = db

    def create(self, order: OrderIn, key: str | None, region: str) -> Created:
        """The order and True, or the order already stored under ``key`` and False (a replay)."""
        items = priced_items(order)
        subtotal, tax, shipping, total = totals(order, items)
        order_id = order_id_for(key)
        digest = request_hash(order)

        def insert(conn: Conn) -> Created:
            row = conn.execute(
                "insert into customer_order (id, first_name, last_name, email, region, idempotency_key, "
                "request_hash, subtotal, tax, shipping, total) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "on conflict do nothing returning " + _ORDER_COLUMNS + ", current_setting('cluster_name') as writer",
                (order_id, order.firstName, order.lastName, order.email, region, key, digest, subtotal, tax,
                 shipping, total),
            ).fetchone()
            if row is None:
                return Created(self._replay(conn, str(order_id), key, digest), False, _writer(conn))
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into customer_order_item (order_id, product_id, name, quantity, price, total_cost) "
                    "values (%s, %s, %s, %s, %s, %s)",
                    [(order_id, i.productId, i.name, i.quantity, i.price, i.totalCost) for i in items],
                )
            created = _orders_with_items(conn, [row])[0]
            event = OrderCreatedEvent(eventId=str(event_id_for(created.id)), occurredAt=created.createdOn,
                                      order=created)
            conn.execute(
                "insert into order_outbox (event_id, order_id, event_type, payload) values (%s, %s, %s, %s) "
                "on conflict do nothing",
                (event.eventId, order_id, EVENT_TYPE, json.dumps(event.model_dump(mode="json"))),
            )
            return Created(created, True, str(row["writer"]))

        return self.db.write(insert)

    @staticmethod
    def _replay(conn: Conn, order_id: str, key: str | None, digest: str) -> ExistingOrder:
        row = conn.execute(f"select {_ORDER_COLUMNS}, request_hash from customer_order where id = %s",
                           (order_id,)).fetchone()
        if row is None:  # cannot happen: the insert conflicted on this id or key
            raise ConflictError(f"order {order_id} conflicts with an order that is not visible")
        if row["request_hash"] != digest:
            raise ConflictError(f"Idempotency-Key {key!r} was already used for a different order ({order_id})")
        return _orders_with_items(conn, [row])[0]

    def page(self, email: str | None, page: int, size: int) -> tuple[list[ExistingOrder], int]:
        where = "where lower(email) = lower(%(email)s)" if email else ""
        params = {"email": email, "limit": size, "offset": (page - 1) * size}

        def read(conn: Conn) -> tuple[list[ExistingOrder], int]:
            count = conn.execute(f"select count(*) as n from customer_order {where}", params).fetchone()
            rows = conn.execute(
                f"select {_ORDER_COLUMNS} from customer_order {where} order by created_on desc, id "
                "limit %(limit)s offset %(offset)s", params,
            ).fetchall()
            return _orders_with_items(conn, rows), int(count["n"]) if count else 0

        return self.db.read(read)

    def get(self, order_id: str) -> ExistingOrder | None:
        def read(conn: Conn) -> ExistingOrder | None:
            row = conn.execute(f"select {_ORDER_COLUMNS} from customer_order where id = %s", (order_id,)).fetchone()
            return _orders_with_items(conn, [row])[0] if row else None

        return self.db.read(read)

    def consume(self, event: OrderCreatedEvent, region: str) -> bool:
        """Apply an OrderCreated event once: dedupe on its id and update the sales projection in one go."""

        def apply(conn: Conn) -> bool:
            fresh = conn.execute(
                "insert into order_event_consumed (event_id, order_id, consumer_region) values (%s, %s, %s) "
                "on conflict do nothing returning event_id", (event.eventId, event.order.id, region),
            ).fetchone()
            if fresh is None:
                return False
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into product_sales as s (product_id, orders, quantity, revenue) values (%s, 1, %s, %s) "
                    "on conflict (product_id) do update set orders = s.orders + 1, "
                    "quantity = s.quantity + excluded.quantity, revenue = s.revenue + excluded.revenue",
                    [(i.productId, i.quantity, i.totalCost) for i in event.order.items],
                )
            return True

        return self.db.write(apply)

    def sales(self) -> list[ProductSales]:
        def read(conn: Conn) -> list[ProductSales]:
            rows = conn.execute("select product_id, orders, quantity, revenue from product_sales "
                                "order by product_id").fetchall()
            return [ProductSales(productId=r["product_id"], orders=r["orders"], quantity=r["quantity"],
                                 revenue=r["revenue"]) for r in rows]

        return self.db.read(read)

    def ready(self) -> str:
        """Reads need the schema where we read (the local member, or the writer if it is down): without it the
        service cannot serve at all. New orders need the writer, possibly in the other region: without it the
        service is only degraded (order history still works), so the other region's loss cannot make this
        region unroutable."""
        target = max(m.version for m in MIGRATIONS)
        version = self.db.read(lambda conn: schema_version(conn, COMPONENT), deadline_s=0)
        if version is None or version < target:
            raise RuntimeError(f"orders schema v{version or 0} where we read, need v{target}")
        try:
            role = self.db.writer.probe()
        except Exception as exc:  # noqa: BLE001 - any failure to reach the writer is a degradation, named
            raise Degraded(f"new orders wait for the writer, which cannot be reached ({exc})") from None
        if role != "writer":
            raise Degraded(f"new orders wait for a writer: the writer DSN reached a {role}")
        return f"writer reachable, schema v{version}"
