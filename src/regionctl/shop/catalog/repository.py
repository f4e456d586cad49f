"""Where the catalog's data comes from: a small protocol, and its PostgreSQL implementation (reads go to the
local member of the global catalog database)."""

from __future__ import annotations

from typing import Any, Protocol

from regionctl.shop.catalog.models import Product, ProductQuery, Tag
from regionctl.shop.catalog.schema import COMPONENT, MIGRATIONS
from regionctl.shop.kit.db import Conn, GlobalDatabase
from regionctl.shop.kit.migrate import schema_version


class CatalogRepository(Protocol):
    def products(self, query: ProductQuery) -> list[Product]: ...
    def count(self, tags: tuple[str, ...]) -> int: ...
    def tags(self) -> list[Tag]: ...
    def product(self, product_id: str) -> Product | None: ...
    def ready(self) -> str: ...


_SELECT = """
select p.product_id, p.name, p.description, p.price, p.count, p.image_url,
       coalesce(array_agg(t.name order by t.tag_id) filter (where t.name is not null), '{}') as tags
from product p
left join product_tag pt on pt.product_id = p.product_id
left join tag t on t.tag_id = pt.tag_id
"""
_TAG_FILTER = """
where %(no_tags)s or exists (
    select 1 from product_tag f join tag ft on ft.tag_id = f.tag_id
    where f.product_id = p.product_id and ft.name = any(%(tags)s)
)
"""


def _product(row: dict[str, Any]) -> Product:
    return Product(id=row["product_id"], name=row["name"], description=row["description"],
                   imageUrl=row["image_url"], price=row["price"], count=row["count"], tag=list(row["tags"]))


class PgCatalog:
    """The catalog on PostgreSQL: filtering, ordering and paging are done by the database."""

    def __init__(self, db: GlobalDatabase) -> None:
        self.db = db

    def products(self, query: ProductQuery) -> list[Product]:
        sql = (_SELECT + _TAG_FILTER + " group by p.product_id order by " + query.order.sql
               + " limit %(limit)s offset %(offset)s")
        params = {"no_tags": not query.tags, "tags": list(query.tags), "limit": query.size, "offset": query.offset}

        def run(conn: Conn) -> list[Product]:
            return [_product(r) for r in conn.execute(sql, params).fetchall()]

        return self.db.read(run)

    def count(self, tags: tuple[str, ...]) -> int:
        sql = "select count(*) as n from product p " + _TAG_FILTER
        params = {"no_tags": not tags, "tags": list(tags)}

        def run(conn: Conn) -> int:
            row = conn.execute(sql, params).fetchone()
            return int(row["n"]) if row else 0

        return self.db.read(run)

    def tags(self) -> list[Tag]:
        def run(conn: Conn) -> list[Tag]:
            rows = conn.execute("select name, display_name from tag order by tag_id").fetchall()
            return [Tag(name=r["name"], displayName=r["display_name"]) for r in rows]

        return self.db.read(run)

    def product(self, product_id: str) -> Product | None:
        sql = _SELECT + " where p.product_id = %(id)s group by p.product_id"

        def run(conn: Conn) -> Product | None:
            row = conn.execute(sql, {"id": product_id}).fetchone()
            return _product(row) if row else None

        return self.db.read(run)

    def ready(self) -> str:
        """The schema is present where we read (the local member, or the writer if it is down)."""
        target = max(m.version for m in MIGRATIONS)
        version = self.db.read(lambda conn: schema_version(conn, COMPONENT), deadline_s=0)
        if version is None or version < target:
            raise RuntimeError(f"catalog schema v{version or 0} where we read, need v{target}")
        return f"schema v{version}"
