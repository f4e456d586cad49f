"""The console lists the reconciliation reports with what the merge policies would do to their conflicts, and a
signed-in operator reads each conflict's proposed resolution (policy, outcome, the values it would write, why)
through the runbook API, in a real browser. Without a sign-in the conflicts stay behind the token: their rows
hold customer data.

The report is stored in the deployment's report store as a failover would leave it (built by the same proposal
function the report builder uses); producing a real one takes a failover, which the integration drills run."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from regionctl.observe.launch import console_url
from regionctl.reconcile.merge import DELTA, KEEP_NEW, Rule, TablePolicy, propose
from regionctl.reconcile.model import Conflict, LostTransaction, Report, RowChange, SchemaDiff
from regionctl.reconcile.store import ReportStore
from tests.support.deploy import RunningDeployment
from tests.support.drills import operator_token

pytestmark = pytest.mark.e2e
WAIT_MS = 30_000
SALES, OUTBOX = "public.product_sales", "public.order_outbox"
REPORT_ID = "console-e2e-report"


def lost_report() -> Report:
    """Two rows a lost transaction changed that the new writer changed too: a sales counter the lost change took
    from 2 to 3 while the new writer holds 7 (delta: 8), and an outbox row whose delivery both sides recorded
    (keep-new: the new writer's stays)."""
    txs = (LostTransaction("tl1:0/300", "0/300", "2026-12-02T10:00:01+00:00", 9, (SALES, OUTBOX), (
        RowChange(SALES, "update", {"product_id": "p1"}, new={"product_id": "p1", "orders": "3"},
                  old={"product_id": "p1", "orders": "2"}, old_source="decoded"),
        RowChange(OUTBOX, "update", {"id": "7"}, new={"id": "7", "delivered_at": "2026-12-02 10:00:01+00"},
                  old={"id": "7", "delivered_at": None}, old_source="decoded"),
    )),)
    conflicts = (Conflict(SALES, {"product_id": "p1"}, ("tl1:0/300",), ("update",), "changed",
                          {"product_id": "p1", "orders": "7"}, "the new writer changed it since the failover"),
                 Conflict(OUTBOX, {"id": "7"}, ("tl1:0/300",), ("update",), "changed",
                          {"id": "7", "delivered_at": "2026-12-02 10:00:05+00"}, "delivered on the new writer"))
    policies = {SALES: TablePolicy(columns={"orders": Rule(DELTA)}), OUTBOX: TablePolicy(Rule(KEEP_NEW))}
    return Report(
        id=REPORT_ID, database="console_e2e", former_writer="us-east-1", new_writer="us-west-2", promotion_id=None,
        created_at="2999-01-01T00:00:00+00:00", method="slot", method_trail=(), complete=True, divergence_lsn="0/200",
        old_timeline=1, new_timeline=2, source={}, window={}, lag_before={}, counts={}, tables={},
        transactions=txs, conflicts=propose(txs, conflicts, policies), schema=SchemaDiff())


@pytest.fixture
def stored(deployment: RunningDeployment) -> Iterator[Report]:
    store = ReportStore(deployment.topo.paths.root)
    report = lost_report()
    store.save(report)
    try:
        yield report
    finally:  # the shared deployment's later tests list reports: leave none of ours
        shutil.rmtree(store.directory / REPORT_ID)


def test_the_console_shows_each_conflicts_proposed_resolution(page: Page, deployment: RunningDeployment,
                                                              stored: Report) -> None:
    url = console_url(deployment.topo.ports)
    assert url is not None
    page.goto(url + "/")
    listed = page.locator(f'#reports tr[data-report="{REPORT_ID}"]')
    expect(listed).to_contain_text("1 apply, 1 resolved", timeout=WAIT_MS)
    expect(listed.locator("button")).to_have_count(0)  # nobody signed in: the rows stay behind the token
    expect(page.locator("#attention")).to_contain_text(
        f"console_e2e: report {REPORT_ID} lists 1 lost transactions (2 conflicts, 2 resolvable by the merge "
        "policies), not replayed yet", timeout=WAIT_MS)

    page.fill("#token", operator_token(deployment, "web-rita", "viewer"))
    page.click("#signin button")
    expect(page.locator("#identity")).to_have_text(re.compile("signed in as web-rita"), timeout=WAIT_MS)
    listed.locator('button[data-view="conflicts"]').click()
    expect(page.locator("#conflicts-answer")).to_have_text("2 conflicts", timeout=WAIT_MS)
    sales = page.locator(f'#conflicts tr[data-table="{SALES}"]')
    expect(sales).to_contain_text("apply")
    expect(sales).to_contain_text("orders=8")  # the new writer's 7 plus the lost change's difference (3 - 2)
    expect(sales).to_contain_text("delta")
    outbox = page.locator(f'#conflicts tr[data-table="{OUTBOX}"]')
    expect(outbox).to_have_attribute("data-outcome", "resolved")
    expect(outbox).to_contain_text("keep-new")
