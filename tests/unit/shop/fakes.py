"""In-memory stand-ins for the shop's I/O protocols, for contract tests without PostgreSQL."""

from __future__ import annotations

from regionctl.shop.catalog.models import Product, ProductQuery, Tag
from regionctl.shop.catalog.seed import PRODUCTS, TAGS


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
