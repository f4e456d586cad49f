"""In-memory stand-ins for the shop's I/O protocols, for contract tests without PostgreSQL."""

from __future__ import annotations

from typing import Any

from regionctl.errors import ConflictError
from regionctl.regionalstore.memory import MemoryStore
from regionctl.shop.catalog.models import Product, ProductQuery, Tag
from regionctl.shop.catalog.seed import PRODUCTS, TAGS
from regionctl.shop.orders.models import (
    ExistingOrder,
    OrderCreatedEvent,
    OrderIn,
    ProductSales,
    order_id_for,
    priced_items,
    request_hash,
    totals,
)
from regionctl.shop.orders.outbox import OutboxEvent
from regionctl.shop.orders.repository import Created


class MemoryCatalog:
    """The seed data in memory; ``broken`` makes every call fail like an unreachable database."""

    def __init__(self) -> None:
        self.items = [
            Product(id=p.id, name=p.name, description=p.description, imageUrl=p.image_url, price=p.price,
                    count=p.count, tag=sorted(p.tags, key=[t for t, _ in TAGS].index))
            for p in PRODUCTS
        ]
        self.broken: Exception | None = None

    def _check(self) -> None:
        if self.broken is not None:
            raise self.broken

    def _matching(self, tags: tuple[str, ...]) -> list[Product]:
        return [p for p in self.items if not tags or set(tags) & set(p.tag)]

    def products(self, query: ProductQuery) -> list[Product]:
        self._check()
        attr = {"id": "id", "name": "name", "price": "price", "count": "count"}[query.order.field]
        rows = sorted(self._matching(query.tags), key=lambda p: p.id)
        rows = sorted(rows, key=lambda p: getattr(p, attr), reverse=query.order.descending)
        return rows[query.offset: query.offset + query.size]

    def count(self, tags: tuple[str, ...]) -> int:
        self._check()
        return len(self._matching(tags))

    def tags(self) -> list[Tag]:
        self._check()
        return [Tag(name=n, displayName=d) for n, d in TAGS]

    def product(self, product_id: str) -> Product | None:
        self._check()
        return next((p for p in self.items if p.id == product_id), None)

    def ready(self) -> str:
        self._check()
        return "memory"


class MemoryOrders:
    """Orders in memory with the same rules as PgOrders (ids from keys, replay, hash check, dedupe)."""

    def __init__(self) -> None:
        self.orders: dict[str, tuple[ExistingOrder, str]] = {}
        self.consumed: set[str] = set()
        self.sales_by_product: dict[str, ProductSales] = {}
        self.broken: Exception | None = None
        self._clock = 0

    def create(self, order: OrderIn, key: str | None, region: str) -> Created:
        if self.broken is not None:
            raise self.broken
        items = priced_items(order)
        subtotal, tax, shipping, total = totals(order, items)
        order_id = str(order_id_for(key))
        digest = request_hash(order)
        if order_id in self.orders:
            existing, stored = self.orders[order_id]
            if stored != digest:
                raise ConflictError(f"Idempotency-Key {key!r} was already used for a different order")
            return Created(existing, False, "memory")
        self._clock += 1
        created = ExistingOrder(id=order_id, firstName=order.firstName, lastName=order.lastName, email=order.email,
                                createdOn=f"2026-01-01T00:00:{self._clock:02d}.000Z", region=region, items=items,
                                subtotal=subtotal, tax=tax, shipping=shipping, total=total)
        self.orders[order_id] = (created, digest)
        return Created(created, True, "memory")

    def page(self, email: str | None, page: int, size: int) -> tuple[list[ExistingOrder], int]:
        rows = sorted((o for o, _ in self.orders.values() if not email or o.email.lower() == email.lower()),
                      key=lambda o: (o.createdOn, o.id), reverse=True)
        return rows[(page - 1) * size: page * size], len(rows)

    def get(self, order_id: str) -> ExistingOrder | None:
        found = self.orders.get(order_id)
        return found[0] if found else None

    def consume(self, event: OrderCreatedEvent, region: str) -> bool:
        if event.eventId in self.consumed:
            return False
        self.consumed.add(event.eventId)
        for item in event.order.items:
            old = self.sales_by_product.get(item.productId, ProductSales(productId=item.productId, orders=0,
                                                                         quantity=0, revenue=0))
            self.sales_by_product[item.productId] = ProductSales(
                productId=item.productId, orders=old.orders + 1, quantity=old.quantity + item.quantity,
                revenue=old.revenue + item.totalCost)
        return True

    def sales(self) -> list[ProductSales]:
        return sorted(self.sales_by_product.values(), key=lambda s: s.productId)

    def ready(self) -> str:
        if self.broken is not None:
            raise self.broken
        return "memory"


class MemoryOutbox:
    """An outbox in memory: claims respect leases the way the SQL does (without time)."""

    def __init__(self, events: list[OutboxEvent] | None = None) -> None:
        self.events = {e.event_id: e for e in events or []}
        self.done: list[str] = []
        self.claimed: set[str] = set()
        self.failures: list[tuple[str, float, str]] = []

    def claim(self, batch: int, worker: str) -> list[OutboxEvent]:
        due = [e for k, e in self.events.items() if k not in self.done and k not in self.claimed][:batch]
        self.claimed |= {e.event_id for e in due}
        return [OutboxEvent(e.event_id, e.payload, e.attempts + 1) for e in due]

    def delivered(self, event_ids: list[str]) -> None:
        self.done += event_ids
        self.claimed -= set(event_ids)

    def failed(self, event_id: str, retry_in_s: float, error: str) -> None:
        self.failures.append((event_id, retry_in_s, error))
        self.claimed.discard(event_id)
        old = self.events[event_id]
        self.events[event_id] = OutboxEvent(old.event_id, old.payload, old.attempts + 1)

    def pending(self) -> int:
        return len(self.events) - len(self.done)


class MemoryRegionalStore(MemoryStore):
    """The regional store's own in-memory fake (the real store's semantics: update is an upsert, ``fn`` gets None
    when the item is absent; a fake of our own once drifted from them and hid a bug), plus an outage switch."""

    broken: Exception | None = None

    def _check(self) -> None:
        if self.broken is not None:
            raise self.broken

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().get(*args, **kwargs)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().put(*args, **kwargs)

    def update(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().update(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().delete(*args, **kwargs)

    def scan(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().scan(*args, **kwargs)
