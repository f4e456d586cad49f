"""The catalog's API models and the pure rules of its queries (ordering, tags, paging)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from regionctl.errors import InputError

TAG_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,19}$")
MAX_TAGS = 10
ORDER_COLUMNS = {"name": "p.name", "price": "p.price", "id": "p.product_id", "count": "p.count"}
DEFAULT_ORDER = "name"


class Product(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str
    imageUrl: str
    price: int = Field(description="whole dollars")
    count: int = Field(description="units in stock")
    tag: list[str] = Field(description="every tag of the product, in tag order")


class Tag(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    displayName: str


class Size(BaseModel):
    size: int


@dataclass(frozen=True)
class OrderBy:
    """A validated sort: ``order=price`` ascending, ``order=-price`` descending; ties broken by id."""

    field: str
    descending: bool

    @property
    def sql(self) -> str:
        direction = "desc" if self.descending else "asc"
        return f"{ORDER_COLUMNS[self.field]} {direction}, p.product_id asc"


@dataclass(frozen=True)
class ProductQuery:
    tags: tuple[str, ...]
    order: OrderBy
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def parse_order(raw: str | None) -> OrderBy:
    """``name``, ``price``, ``id`` or ``count``, optionally prefixed by ``-`` for descending."""
    value = (raw or DEFAULT_ORDER).strip()
    descending = value.startswith("-")
    field = value.lstrip("-+").strip().lower()
    if field not in ORDER_COLUMNS:
        allowed = ", ".join(sorted(ORDER_COLUMNS))
        raise InputError(f"order: {raw!r} is not one of {allowed} (prefix with - for descending)")
    return OrderBy(field, descending)


def parse_tags(raw: str | None) -> tuple[str, ...]:
    """A comma-separated tag list (OR semantics); blanks ignored, duplicates removed, order kept."""
    if raw is None:
        return ()
    tags: list[str] = []
    for part in raw.split(","):
        tag = part.strip().lower()
        if not tag:
            continue
        if not TAG_NAME.match(tag):
            raise InputError(f"tags: {part.strip()!r} is not a tag name (lower-case letters, digits, - and _)")
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise InputError(f"tags: at most {MAX_TAGS} tags, got {len(tags)}")
    return tuple(tags)
