"""The catalog HTTP API (the reference's contract, with its defects fixed: ``order`` is applied, paging is done
by the database, tag arrays are complete under a tag filter, database errors are 503 rather than 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Path, Query

from regionctl.errors import NotFoundError
from regionctl.runtime.httperrors import documented
from regionctl.shop.catalog.models import Product, ProductQuery, Size, Tag, parse_order, parse_tags
from regionctl.shop.catalog.repository import CatalogRepository, PgCatalog
from regionctl.shop.catalog.schema import COMPONENT, MIGRATIONS
from regionctl.shop.kit.app import ServiceKit, blocking, create_app
from regionctl.shop.kit.db import open_global_database
from regionctl.shop.kit.migrate import migration_task
from regionctl.shop.kit.readiness import Check
from regionctl.shop.kit.settings import ServiceSettings

HEALTH_PATHS = ("/health",)
TagsQuery = Annotated[str | None, Query(max_length=400, description="comma-separated tag names (any of them)")]
ProductId = Annotated[str, Path(min_length=1, max_length=40)]


def create_catalog_app(kit: ServiceKit, repo: CatalogRepository) -> FastAPI:
    kit.readiness.add(Check("catalog-db", repo.ready))
    app = create_app(kit, title="catalog", description="Watches and their tags.", health_paths=HEALTH_PATHS)

    @app.get("/catalogue", response_model=list[Product], responses=documented(400, 503))
    @blocking
    def list_products(
        tags: TagsQuery = None,
        order: Annotated[str | None, Query(max_length=20, description="name|price|id|count, - for desc")] = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        size: Annotated[int, Query(ge=1, le=1000)] = 10,
    ) -> list[Product]:
        query = ProductQuery(parse_tags(tags), parse_order(order), page, size)
        return repo.products(query)

    @app.get("/catalogue/size", response_model=Size, responses=documented(400, 503))
    @blocking
    def size(tags: TagsQuery = None) -> Size:
        return Size(size=repo.count(parse_tags(tags)))

    @app.get("/catalogue/tags", response_model=list[Tag], responses=documented(503))
    @blocking
    def tags() -> list[Tag]:
        return repo.tags()

    @app.get("/catalogue/product/{product_id}", response_model=Product, responses=documented(400, 404, 503))
    @blocking
    def product(product_id: ProductId) -> Product:
        found = repo.product(product_id)
        if found is None:
            raise NotFoundError(f"product {product_id} not found")
        return found

    return app


def from_settings(settings: ServiceSettings) -> FastAPI:
    """The real service: catalog database, migrations at start (retried until the writer answers)."""
    kit = ServiceKit.create("catalog", settings.region)
    db = open_global_database(settings, "catalog", "catalog", kit.metrics.db_retry)
    runner = migration_task(db.writer, COMPONENT, MIGRATIONS)
    kit.on_start.append(runner.start)
    kit.on_stop.extend([runner.stop, db.close])
    kit.readiness.add(Check("migrations", runner.status, critical=False))
    return create_catalog_app(kit, PgCatalog(db))
