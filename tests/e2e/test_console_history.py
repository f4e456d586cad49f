"""The console's history in a real browser: after a short load and a switchover of us-east-1 to us-west-2, the
orders chart (read from the deployment's Prometheus) shows points for both regions and the switchover drawn on
it; the screenshot is kept in ``artifacts/`` (``$REGIONCTL_ARTIFACTS``) for a person to look at."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from regionctl.observe import prometheus
from regionctl.observe.launch import console_url
from tests.support.deploy import RunningDeployment
from tests.support.drills import Shoppers, leave_healthy, start_runbook, wait_for, wait_settled

pytestmark = pytest.mark.e2e
EAST, WEST = "us-east-1", "us-west-2"
WAIT_MS = 30_000
ARTIFACTS = Path(os.environ.get("REGIONCTL_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts"))


def orders_charted(deployment: RunningDeployment, region: str, points: int = 3) -> bool:
    """Prometheus holds ``points`` samples of the region's order rate over the last minute (the chart's query)."""
    now = time.time()
    body = httpx.get(f"{prometheus.url(deployment.topo.ports)}/api/v1/query_range", timeout=10, params={
        "query": f'sum(rate(shop_orders_created_total{{region="{region}"}}[30s]))', "start": now - 60, "end": now,
        "step": deployment.settings.metrics.scrape_interval_s}).json()
    return any(len(r["values"]) >= points for r in body["data"]["result"])


def test_the_orders_chart_shows_both_regions_and_the_switchover(page: Page, deployment: RunningDeployment,
                                                                 tmp_path: Path) -> None:
    shoppers = Shoppers.through_the_global_entry(deployment, tmp_path / "acks.jsonl", rate=3.0).start()
    try:
        shoppers.wait_for_orders(5)
        wait_for(lambda: orders_charted(deployment, EAST), 90, "us-east-1's orders scraped", interval=1)
        execution_id = start_runbook(deployment, "RegionFailover", region=EAST, mode="graceful")
        assert wait_settled(deployment, execution_id)["status"] == "succeeded"
        shoppers.wait_for_orders(5, after=time.time())
        wait_for(lambda: orders_charted(deployment, WEST), 90, "us-west-2's orders scraped", interval=1)
    finally:
        shoppers.stop()
    try:
        page.set_viewport_size({"width": 1300, "height": 1000})
        page.goto(f"{console_url(deployment.topo.ports)}/")
        page.click('#history-range button[data-range="runbook"]')
        orders = page.locator('figure[data-chart="orders"]')
        for region in (EAST, WEST):
            line = orders.locator(f'polyline[data-series="{region}"]')
            expect(line).to_have_count(1, timeout=WAIT_MS)
            assert int(line.get_attribute("data-points") or 0) > 1, region
        expect(orders.locator(f'line[data-annotation="RegionFailover {execution_id} started"]')).to_have_count(1)
        expect(page.locator("#updated")).to_contain_text("updated", timeout=WAIT_MS)  # the tables, for the picture
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-history.png"), full_page=True)
        page.goto(f"{console_url(deployment.topo.ports)}/executions/{execution_id}")
        expect(page.locator("#summary")).to_contain_text("succeeded")
        expect(page.locator('#timeline rect[data-step="SwitchoverDatabases"]')).to_have_count(1)
        expect(page.locator("#recovery")).not_to_have_text("-")  # the recovery time is marked
    finally:
        back = start_runbook(deployment, "Failback", region=EAST)
        if wait_settled(deployment, back)["status"] != "succeeded":
            leave_healthy(deployment, EAST)
