"""An operator watches the console in a real browser while the regions are cut apart: the remote canaries of both
regions turn to failing and an attention flag says so, without reloading the page; healing turns them back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from regionctl.observe.launch import console_url
from tests.support.deploy import RunningDeployment

pytestmark = pytest.mark.e2e
WAIT_MS = 60_000  # canaries run every few seconds; a partition shows after a run or two


def canary(page: Page, region: str, name: str) -> Locator:
    return page.locator(f'#canaries td[data-region="{region}"][data-canary="{name}"]')


def test_the_console_follows_a_partition_and_its_healing(page: Page, deployment: RunningDeployment) -> None:
    primary, standby = deployment.settings.regions
    url = console_url(deployment.topo.ports)
    assert url is not None
    page.goto(url + "/")

    writer = deployment.gdbs.state("orders").writer
    orders_writer = page.locator(f'#databases tr[data-database="orders"][data-region="{writer}"]')
    expect(orders_writer).to_have_attribute("data-role", "writer", timeout=WAIT_MS)
    expect(page.locator("#store tbody tr")).to_have_count(2, timeout=WAIT_MS)
    for region in (primary, standby):
        routing = page.locator(f'#routing tr[data-region="{region}"]')
        expect(routing).to_have_attribute("data-routable", "true", timeout=WAIT_MS)
        for name in ("lcl-rgnl-home", "rmt-rgnl-cart", "global-orders"):
            expect(canary(page, region, name)).to_have_attribute("data-state", "pass", timeout=WAIT_MS)

    deployment.link.partition("both")
    try:
        for region in (primary, standby):
            remote = canary(page, region, "rmt-rgnl-home")
            expect(remote).to_have_attribute("data-state", "fail", timeout=WAIT_MS)
            expect(remote).to_have_attribute("title", re.compile(r"\w"))  # why it failed, on hover
            expect(canary(page, region, "lcl-rgnl-home")).to_have_attribute("data-state", "pass")
            flag = page.locator("#attention li", has_text=f"{region}: 4 canaries failing")
            expect(flag).to_be_visible(timeout=WAIT_MS)
    finally:
        deployment.link.heal("both")
    for region in (primary, standby):
        expect(canary(page, region, "rmt-rgnl-home")).to_have_attribute("data-state", "pass", timeout=WAIT_MS)
    expect(page.locator("#attention li", has_text="canaries failing")).to_have_count(0, timeout=WAIT_MS)
