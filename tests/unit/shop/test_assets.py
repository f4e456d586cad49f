"""The assets service: the six product images the catalog refers to, the reference's health page, no traversal."""

from __future__ import annotations

import xml.dom.minidom

import pytest
from fastapi.testclient import TestClient

from regionctl.shop.assets.service import create_assets_app, load_images
from regionctl.shop.catalog.seed import PRODUCTS
from regionctl.shop.kit.app import ServiceKit


@pytest.fixture()
def client() -> TestClient:
    return TestClient(create_assets_app(ServiceKit.create("assets", "us-east-1"), load_images()))


def test_every_catalog_image_is_served_as_well_formed_svg(client: TestClient) -> None:
    for product in PRODUCTS:
        response = client.get(product.image_url)
        assert response.status_code == 200, product.image_url
        assert response.headers["content-type"] == "image/svg+xml"
        assert "max-age=31536000" in response.headers["cache-control"]
        svg = xml.dom.minidom.parseString(response.content).documentElement
        assert svg.tagName == "svg" and svg.getAttribute("aria-label") == product.name


def test_health_page_and_readiness(client: TestClient) -> None:
    assert client.get("/health.html").text == "OK"
    assert client.get("/actuator/health").json()["status"] == "UP"


def test_unknown_names_and_paths_outside_the_images_are_404(client: TestClient) -> None:
    for path in ("/assets/nope.svg", "/assets/..%2Fservice.py", "/assets/%2e%2e/service.py", "/assets/x.jpg"):
        assert client.get(path).status_code == 404, path


def test_missing_images_make_the_service_unready() -> None:
    client = TestClient(create_assets_app(ServiceKit.create("assets", "us-east-1"), {}))
    response = client.get("/actuator/health")
    assert response.status_code == 503 and "pocket_watch.svg" in response.json()["reason"]
