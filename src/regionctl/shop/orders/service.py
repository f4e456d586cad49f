"""The orders HTTP API: ``POST /orders`` (idempotent with an ``Idempotency-Key``), ``GET /orders`` with paging
and an email filter, one order by id, and the OrderCreated consumer the outbox relay delivers to."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import FastAPI, Header, Path, Query, Response

from regionctl.errors import NotFoundError
from regionctl.runtime.httperrors import documented
from regionctl.shop.kit.app import ServiceKit, blocking, create_app
from regionctl.shop.kit.db import open_global_database
from regionctl.shop.kit.migrate import migration_task
from regionctl.shop.kit.readiness import Check
from regionctl.shop.kit.settings import ServiceSettings
from regionctl.shop.orders.models import (
    WRITER_HEADER,
    ConsumeResult,
    ExistingOrder,
    OrderCreatedEvent,
    OrderIn,
    ProductSales,
    check_idempotency_key,
)
from regionctl.shop.orders.outbox import HttpDelivery, OutboxRelay, PgOutbox, RelayResult
from regionctl.shop.orders.repository import OrdersRepository, PgOrders
from regionctl.shop.orders.schema import COMPONENT, MIGRATIONS

log = logging.getLogger("regionctl.shop.orders")
HEALTH_PATHS = ("/actuator/health",)
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def create_orders_app(kit: ServiceKit, repo: OrdersRepository, on_created: Callable[[], None] = lambda: None
                      ) -> FastAPI:
    kit.readiness.add(Check("orders-db", repo.ready))
    consumed = kit.metrics.counter("shop_order_events_consumed", "OrderCreated events consumed", ("outcome",))
    app = create_app(kit, title="orders", description="Orders, their items and order events.",
                     health_paths=HEALTH_PATHS)

    @app.post("/orders", response_model=ExistingOrder, responses=documented(400, 409, 503))
    @blocking
    def create_order(
        order: OrderIn, response: Response,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    ) -> ExistingOrder:
        created, fresh, writer = repo.create(order, check_idempotency_key(idempotency_key), kit.region)
        response.headers["Idempotent-Replayed"] = "false" if fresh else "true"
        response.headers[WRITER_HEADER] = writer
        if fresh:
            kit.metrics.order_created()
            log.info("Created Order: %s", created.id, extra={"order_id": created.id, "email_domain":
                     created.email.rsplit("@", 1)[-1], "items": len(created.items), "total": created.total})
            on_created()
        return created

    @app.get("/orders", response_model=list[ExistingOrder], responses=documented(400, 503))
    @blocking
    def list_orders(
        response: Response,
        email: Annotated[str | None, Query(max_length=254)] = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[ExistingOrder]:
        orders, total = repo.page(email or None, page, size)
        response.headers["X-Total-Count"] = str(total)
        return orders

    @app.get("/orders/{order_id}", response_model=ExistingOrder, responses=documented(400, 404, 503))
    @blocking
    def get_order(order_id: Annotated[str, Path(pattern=UUID_PATTERN)]) -> ExistingOrder:
        found = repo.get(order_id.lower())
        if found is None:
            raise NotFoundError(f"order {order_id} not found")
        return found

    @app.post("/events/order-created", response_model=ConsumeResult, responses=documented(400, 503))
    @blocking
    def consume(event: OrderCreatedEvent) -> ConsumeResult:
        fresh = repo.consume(event, kit.region)
        consumed.labels(kit.name, kit.region, "new" if fresh else "duplicate").inc()
        return ConsumeResult(eventId=event.eventId, duplicate=not fresh)

    @app.get("/sales", response_model=list[ProductSales], responses=documented(503))
    @blocking
    def sales() -> list[ProductSales]:
        """The consumer's projection: orders, units and revenue per product (the reference's watch.* metrics)."""
        return repo.sales()

    return app


def from_settings(settings: ServiceSettings) -> FastAPI:
    kit = ServiceKit.create("orders", settings.region)
    db = open_global_database(settings, "orders", "orders", kit.metrics.db_retry)
    runner = migration_task(db.writer, COMPONENT, MIGRATIONS)
    delivery = HttpDelivery(settings.order_events_endpoint or f"{settings.self_url}/events/order-created")
    pending = kit.metrics.gauge("shop_outbox_pending", "undelivered order events on the writer")
    relayed = kit.metrics.counter("shop_outbox_events", "outbox delivery attempts", ("outcome",))

    def record(result: RelayResult, backlog: int | None) -> None:
        relayed.labels(kit.name, kit.region, "delivered").inc(result.delivered)
        relayed.labels(kit.name, kit.region, "failed").inc(result.failed)
        if backlog is not None:
            pending.labels(kit.name, kit.region).set(backlog)

    relay = OutboxRelay(PgOutbox(db.writer), delivery, f"orders-{settings.region}",
                        interval_s=settings.outbox_interval_s, on_result=record)
    kit.on_start.extend([runner.start, relay.start])
    kit.on_stop.extend([db.close, delivery.close, relay.stop, runner.stop])
    kit.readiness.add(Check("migrations", runner.status, critical=False))
    kit.readiness.add(Check("outbox-relay", lambda: _relay_status(relay), critical=False))
    return create_orders_app(kit, PgOrders(db), on_created=relay.wake)


def _relay_status(relay: OutboxRelay) -> str:
    if relay.last_error:
        raise RuntimeError(relay.last_error)
    return "relaying"
