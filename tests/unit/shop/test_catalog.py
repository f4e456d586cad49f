"""The catalog's HTTP contract (reference section 1.2) with its defects fixed, on an in-memory repository."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from regionctl.errors import DatabaseError, InputError
from regionctl.shop.catalog.models import parse_order, parse_tags
from regionctl.shop.catalog.service import create_catalog_app
from regionctl.shop.kit.app import ServiceKit
from tests.unit.shop.fakes import MemoryCatalog

POCKET = "6d62d909-f957-430e-8689-b5129c0bb75e"


@pytest.fixture()
def repo() -> MemoryCatalog:
    return MemoryCatalog()


@pytest.fixture()
def client(repo: MemoryCatalog) -> TestClient:
    return TestClient(create_catalog_app(ServiceKit.create("catalog", "us-east-1"), repo))


def test_the_catalogue_lists_the_six_watches_ten_per_page_by_default(client: TestClient) -> None:
    body = client.get("/catalogue").json()
    assert len(body) == 6
    assert set(body[0]) == {"id", "name", "description", "imageUrl", "price", "count", "tag"}


def test_order_is_really_applied(client: TestClient) -> None:
    prices = [p["price"] for p in client.get("/catalogue", params={"order": "price"}).json()]
    assert prices == sorted(prices)
    prices = [p["price"] for p in client.get("/catalogue", params={"order": "-price"}).json()]
    assert prices == sorted(prices, reverse=True)


def test_an_unknown_order_is_refused_naming_the_allowed_fields(client: TestClient) -> None:
    response = client.get("/catalogue", params={"order": "colour"})
    assert response.status_code == 400
    assert "colour" in response.json()["message"] and "price" in response.json()["message"]


def test_pages_do_not_overlap_and_cover_everything(client: TestClient) -> None:
    seen = []
    for page in (1, 2, 3):
        seen += [p["id"] for p in client.get("/catalogue", params={"page": page, "size": 2}).json()]
    assert len(seen) == len(set(seen)) == 6
    assert client.get("/catalogue", params={"page": 4, "size": 2}).json() == []


def test_tags_filter_with_or_semantics_and_complete_tag_arrays(client: TestClient) -> None:
    body = client.get("/catalogue", params={"tags": "luxury,casual"}).json()
    assert {p["name"] for p in body} == {"Chronograf Classic", "Wood Watch"}
    chrono = next(p for p in body if p["name"] == "Chronograf Classic")
    assert chrono["tag"] == ["dress", "luxury"]  # not truncated to the matching tag


def test_size_counts_products_matching_the_tags(client: TestClient) -> None:
    assert client.get("/catalogue/size").json() == {"size": 6}
    assert client.get("/catalogue/size", params={"tags": "smart"}).json() == {"size": 2}
    assert client.get("/catalogue/size", params={"tags": "nothing-here"}).json() == {"size": 0}


def test_tags_lists_the_four_tags_in_order(client: TestClient) -> None:
    assert client.get("/catalogue/tags").json() == [
        {"name": "smart", "displayName": "Smart"}, {"name": "dress", "displayName": "Dress"},
        {"name": "luxury", "displayName": "Luxury"}, {"name": "casual", "displayName": "Casual"},
    ]


def test_product_by_id_and_404_for_an_unknown_one(client: TestClient) -> None:
    body = client.get(f"/catalogue/product/{POCKET}").json()
    assert body["name"] == "Pocket Watch" and body["price"] == 385 and body["imageUrl"].startswith("/assets/")
    missing = client.get("/catalogue/product/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["message"]


def test_bad_integers_get_400_with_the_field_named(client: TestClient) -> None:
    response = client.get("/catalogue", params={"page": "x"})
    assert response.status_code == 400 and "page" in response.json()["message"]
    assert client.get("/catalogue", params={"size": 0}).status_code == 400


def test_a_database_outage_is_503_not_404(client: TestClient, repo: MemoryCatalog) -> None:
    repo.broken = DatabaseError("catalog-reader: connection refused")
    response = client.get("/catalogue")
    assert response.status_code == 503 and "connection refused" in response.json()["message"]
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "DOWN"


def test_health_is_up_with_its_dependencies_and_metrics_count_requests(client: TestClient) -> None:
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["components"]["catalog-db"]["status"] == "UP"
    assert health.headers["x-region"] == "us-east-1"
    client.get("/catalogue")
    metrics = client.get("/metrics").text
    assert 'shop_http_requests_total{method="GET",region="us-east-1",route="/catalogue",service="catalog",' \
           'status="200"} 1.0' in metrics


def test_parse_helpers_name_what_is_wrong() -> None:
    assert parse_tags(" smart, ,dress,smart") == ("smart", "dress")
    assert parse_order(None).field == "name" and parse_order("-price").descending
    with pytest.raises(InputError, match="tags"):
        parse_tags("DROP TABLE;")
