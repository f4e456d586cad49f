"""Both regions' shop as real processes on real PostgreSQL (a writer and a streaming standby): purchases in
either region land on the one writer, show in both regions, and their events are consumed exactly once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from regionctl.shop import SERVICES
from regionctl.shop.catalog.seed import PRODUCTS
from regionctl.shop.loadgen import purchase, read_acks, run_load
from tests.integration.shop.stack import Deployment, eventually
from tests.offloop import off_loop

pytestmark = pytest.mark.integration


def buy(ui: str, email: str) -> tuple[str, str]:
    async def go() -> tuple[str, str]:
        async with httpx.AsyncClient(base_url=ui, timeout=30) as client:
            order_id, region, _ = await purchase(client, PRODUCTS[0].id, email)
            return order_id, region

    return off_loop(lambda: asyncio.run(go()))


def test_every_service_in_both_regions_is_ready_and_exposes_metrics(shop_deployment: Deployment) -> None:
    with httpx.Client(timeout=5) as client:
        for spec in shop_deployment.specs:
            health = client.get(str(spec.health_url))
            assert health.status_code == 200, (spec.key, health.text)
            assert health.headers["x-region"] == spec.region
            metrics = client.get(shop_deployment.url(spec.region, spec.name) + "/metrics").text
            assert "shop_http_requests_total" in metrics, spec.key
    assert {s.name for s in shop_deployment.specs} == set(SERVICES)


def test_the_catalog_is_seeded_once_and_read_locally_in_both_regions(shop_deployment: Deployment) -> None:
    for region in shop_deployment.settings.regions:
        body = httpx.get(shop_deployment.url(region, "catalog") + "/catalogue", params={"order": "-price"}).json()
        assert [p["price"] for p in body] == [5100, 795, 650, 385, 180, 50], region
    assert shop_deployment.writer.scalar("select count(*) from product", dbname="catalog") == 6


def test_a_purchase_in_each_region_is_on_the_writer_and_visible_in_both(shop_deployment: Deployment) -> None:
    placed = {}
    for region in shop_deployment.settings.regions:
        order_id, served_by = buy(shop_deployment.ui(region), f"buyer@{region}.example.com")
        assert served_by == region
        placed[region] = order_id
    for order_id in placed.values():
        for region in shop_deployment.settings.regions:
            url = f"{shop_deployment.url(region, 'orders')}/orders/{order_id}"
            order = eventually(lambda url=url: _ok(httpx.get(url)))
            assert order["items"][0]["productId"] == PRODUCTS[0].id and order["total"] == 385 + 19 + 5
    rows = shop_deployment.writer.query("select id::text, region from customer_order where id = any(%s::uuid[])",
                                        (list(placed.values()),), dbname="orders")
    assert {r["id"]: r["region"] for r in rows} == {v: k for k, v in placed.items()}
    orders_page = httpx.get(shop_deployment.ui(shop_deployment.settings.standby_region) + "/orders").text
    assert all(order_id in orders_page for order_id in placed.values())


def test_every_order_event_is_consumed_once(shop_deployment: Deployment) -> None:
    buy(shop_deployment.ui(shop_deployment.settings.primary_region), "events@example.com")

    def settled() -> None:
        rows = shop_deployment.writer.query(
            "select (select count(*) from customer_order) as orders, (select count(*) from order_event_consumed) "
            "as consumed, (select count(*) from order_outbox where delivered_at is null) as pending", dbname="orders")
        assert rows[0]["pending"] == 0 and rows[0]["orders"] == rows[0]["consumed"], rows

    eventually(settled)


def test_the_load_generator_logs_every_acknowledged_order(shop_deployment: Deployment, tmp_path: Path) -> None:
    region = shop_deployment.settings.standby_region
    log = tmp_path / "acks.jsonl"
    report = off_loop(lambda: asyncio.run(run_load(shop_deployment.ui(region), 4, 1.5, log, seed=1)))
    acks = read_acks(log)
    assert report.acknowledged == report.attempted == len(acks) == 6, report
    assert {a.region for a in acks} == {region}
    ids = [a.order_id for a in acks]
    found = shop_deployment.writer.scalar("select count(*) from customer_order where id = any(%s::uuid[])", (ids,),
                                          dbname="orders")
    assert found == len(ids)


def test_fail_cart_makes_the_region_unready_until_recovered(shop_deployment: Deployment) -> None:
    ui = shop_deployment.ui(shop_deployment.settings.primary_region)
    assert httpx.post(ui + "/actuator/fail-cart").text == "OK"
    try:
        def down() -> None:
            response = httpx.get(ui + "/actuator/health")
            assert response.status_code == 503 and "carts" in response.json()["reason"], response.text

        eventually(down, 10)
    finally:
        httpx.post(ui + "/actuator/recover-cart")
    eventually(lambda: _ok(httpx.get(ui + "/actuator/health")), 10)


def _ok(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_regionctl_load_runs_the_purchase_flow_and_reports(shop_deployment: Deployment, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regionctl.cli.main import app

    log = tmp_path / "cli-acks.jsonl"
    ui = shop_deployment.ui(shop_deployment.settings.primary_region)
    argv = ["load", "--rate", "2", "--duration", "1", "--endpoint", ui, "--ack-log", str(log), "--format", "json"]
    result = off_loop(lambda: CliRunner().invoke(app, argv))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["acknowledged"] == report["attempted"] == 2 and report["latency_ms"]["p50"] > 0
    assert len(read_acks(log)) == 2
