"""The orders API models and the pure rules around them (identity from an idempotency key, totals, hashing)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from regionctl.errors import InputError

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
ORDER_NAMESPACE = uuid.UUID("2f1d7c44-6a0e-4d8f-9a51-0c1b7e0f5a11")
EVENT_TYPE: Literal["OrderCreated"] = "OrderCreated"
WRITER_HEADER = "Regionctl-Writer"  # on POST /orders: the database member that committed it (its cluster_name)
Money = Annotated[int, Field(ge=0, le=1_000_000_000, description="whole dollars")]
Text = Annotated[str, Field(max_length=100)]


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    productId: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(ge=1, le=10_000)]
    price: Money = Field(description="unit price (the reference sent the line total here; we do not)")
    name: Text = ""


class OrderIn(BaseModel):
    """An order as clients send it. Totals are optional; when given they must add up."""

    model_config = ConfigDict(extra="ignore")

    firstName: Text = ""
    lastName: Text = ""
    email: Annotated[str, Field(min_length=3, max_length=254)]
    items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=100)]
    subtotal: Money | None = None
    tax: Money | None = None
    shipping: Money | None = None
    total: Money | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value


class OrderItem(BaseModel):
    productId: str
    name: str
    quantity: int
    price: int = Field(description="unit price")
    totalCost: int = Field(description="quantity x price")


class ExistingOrder(BaseModel):
    id: str = Field(description="UUID")
    firstName: str
    lastName: str
    email: str
    createdOn: str = Field(description="ISO-8601 UTC")
    region: str = Field(description="the region whose orders service took the order")
    items: list[OrderItem]
    subtotal: int
    tax: int
    shipping: int
    total: int


class OrderCreatedEvent(BaseModel):
    """What the outbox delivers (the reference's ``{order: Order}`` plus an id consumers dedupe on)."""

    eventId: str
    eventType: Literal["OrderCreated"] = EVENT_TYPE
    occurredAt: str
    order: ExistingOrder


class ConsumeResult(BaseModel):
    eventId: str
    duplicate: bool


class ProductSales(BaseModel):
    productId: str
    orders: int
    quantity: int
    revenue: int


def order_id_for(idempotency_key: str | None) -> uuid.UUID:
    """The order id: derived from the idempotency key (so a retry, even after a failover lost the first try,
    names the same order), else random."""
    return uuid.uuid5(ORDER_NAMESPACE, idempotency_key) if idempotency_key else uuid.uuid4()


def event_id_for(order_id: str) -> uuid.UUID:
    """One OrderCreated event per order, whoever writes it (a replayed order carries the same event id)."""
    return uuid.uuid5(ORDER_NAMESPACE, f"{EVENT_TYPE}:{order_id}")


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise InputError("Idempotency-Key: 1 to 200 visible ASCII characters")
    return key


def request_hash(order: OrderIn) -> str:
    """A digest of what the client asked for, to refuse a key reused for a different order."""
    canonical = json.dumps(order.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def priced_items(order: OrderIn) -> list[OrderItem]:
    """Line items with their totals; a product listed twice is refused, naming it."""
    seen: set[str] = set()
    items = []
    for item in order.items:
        if item.productId in seen:
            raise InputError(f"items: product {item.productId} is listed twice; send one line with its quantity")
        seen.add(item.productId)
        items.append(OrderItem(productId=item.productId, name=item.name, quantity=item.quantity, price=item.price,
                               totalCost=item.quantity * item.price))
    return items


def totals(order: OrderIn, items: list[OrderItem]) -> tuple[int, int, int, int]:
    """(subtotal, tax, shipping, total) from the lines; figures the client sent must agree with them."""
    subtotal = sum(i.totalCost for i in items)
    if order.subtotal is not None and order.subtotal != subtotal:
        raise InputError(f"subtotal: {order.subtotal} does not match the items, which add up to {subtotal}")
    tax = order.tax or 0
    shipping = order.shipping or 0
    total = subtotal + tax + shipping
    if order.total is not None and order.total != total:
        raise InputError(f"total: {order.total} is not subtotal + tax + shipping = {total}")
    return subtotal, tax, shipping, total
