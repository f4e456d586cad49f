"""A visitor buys a watch in a real browser through each region's ui: browse the catalog, open a product, add it
to the cart, go through the four checkout steps, see the confirmation; the order then shows on the orders page
of both regions (the standby region reads it from its local replica)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.deploy import RunningDeployment

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("region_index", [0, 1], ids=["primary-region", "standby-region"])
def test_a_visitor_buys_a_watch_and_finds_the_order_in_both_regions(
    page: Page, deployment: RunningDeployment, region_index: int
) -> None:
    regions = deployment.settings.regions
    region, other = regions[region_index], regions[1 - region_index]
    email = f"browser-{region}@example.com"
    page.set_default_timeout(20_000)

    page.goto(deployment.ui(region) + "/home")
    expect(page.locator("#region-banner")).to_contain_text(region)
    page.get_by_role("link", name="Catalog", exact=True).first.click()
    page.locator("ul.tags").get_by_role("link", name="Luxury").click()
    expect(page.locator("#showing")).to_contain_text("of 1 products")
    page.get_by_role("link", name="Chronograf Classic").first.click()
    expect(page.locator("#product-price")).to_have_text("$5100")
    page.locator("#add-to-cart").click()

    expect(page).to_have_url(re.compile(r"/cart$"))
    expect(page.locator(".cart-line")).to_have_count(1)
    expect(page.locator("#cart-count")).to_have_text("1")
    page.locator("#checkout").click()

    page.locator("#continue").click()  # step 1 with nothing filled in: refused, field by field
    expect(page.locator('.error[data-field="email"]')).to_be_visible()
    form = page.locator("#customer-form")
    for name, value in {"firstName": "Grace", "lastName": "Hopper", "email": email, "address1": "1 Navy Way",
                        "city": "Arlington", "zip": "22202"}.items():
        form.locator(f'input[name="{name}"]').fill(value)
    form.locator('select[name="state"]').select_option("VA")
    page.locator("#continue").click()

    expect(page.locator("#delivery-form")).to_be_visible()  # step 2
    expect(page.locator("#summary-tax")).to_have_text("$255")
    page.get_by_label(re.compile("Priority Mail Express")).check()
    page.locator("#continue").click()

    expect(page.locator("#payment-form")).to_be_visible()  # step 3
    expect(page.locator("#summary-total")).to_have_text("$5370")  # 5100 + 255 tax + 15 shipping
    page.locator('input[name="cardNumber"]').fill("4111 1111 1111 1111")
    page.locator("#continue").click()

    expect(page.locator("#review-form")).to_contain_text("Chronograf Classic")  # step 4
    page.locator("#place-order").click()

    expect(page.locator("#confirmation")).to_contain_text("Thank you for your order")
    order_id = page.locator("#order-id").inner_text()
    assert re.fullmatch(r"[0-9a-f-]{36}", order_id)
    expect(page.locator("#order-email")).to_have_text(email)
    expect(page.locator("#cart-count")).to_have_text("0")

    for where in (region, other):
        page.goto(deployment.ui(where) + f"/orders?email={email}")
        row = page.locator(f'tr[data-order-id="{order_id}"]')
        for _ in range(50):  # the other region may see it a moment later (replication)
            if row.count():
                break
            page.wait_for_timeout(200)
            page.reload()
        expect(row).to_contain_text(email)
        expect(row).to_contain_text("$5370")
        expect(row).to_contain_text(region)
