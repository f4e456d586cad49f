"""What the pages show, computed by pure functions from what the services answered."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CartLine:
    product_id: str
    name: str
    image_url: str
    quantity: int
    unit_price: int

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class CartView:
    lines: tuple[CartLine, ...]

    @property
    def subtotal(self) -> int:
        return sum(line.total for line in self.lines)

    @property
    def num_items(self) -> int:
        return sum(line.quantity for line in self.lines)

    def checkout_items(self) -> list[dict[str, Any]]:
        """The checkout request's items (the reference's mapping: unitCost = price, totalCost = qty x price)."""
        return [{"id": line.product_id, "name": line.name, "quantity": line.quantity, "unitCost": line.unit_price,
                 "totalCost": line.total, "imageUrl": line.image_url} for line in self.lines]


def cart_view(cart: dict[str, Any], products: dict[str, dict[str, Any] | None]) -> CartView:
    """Cart lines enriched with catalog names and images; a product gone from the catalog keeps its id."""
    lines = []
    for item in cart.get("items", []):
        product = products.get(item["itemId"]) or {}
        lines.append(CartLine(item["itemId"], product.get("name", item["itemId"]), product.get("imageUrl", ""),
                              int(item["quantity"]), int(item["unitPrice"])))
    return CartView(tuple(lines))


@dataclass(frozen=True)
class Pagination:
    page: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size)) if self.size > 0 else 1

    @property
    def numbers(self) -> list[int]:
        return list(range(1, self.pages + 1))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_shown(self) -> int:
        return 0 if self.total == 0 else min(self.total, (self.page - 1) * self.size + 1)

    @property
    def last_shown(self) -> int:
        return min(self.total, self.page * self.size)


def clamp(value: str | int | None, default: int, low: int, high: int) -> int:
    """A page or size from a query string: default when missing or not a number, then bounded."""
    try:
        number = int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        number = default
    return max(low, min(high, number))
