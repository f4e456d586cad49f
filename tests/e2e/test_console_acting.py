"""The console acts with identity, in a real browser: an operator signs in and starts a runbook, a viewer signed
in sees the waiting approval and no button at all, an approver signs in and approves it (two-person rule: not
the starter), and a routing change shows the safety rules' answer. Every act went through the planes' own APIs:
the engine records the approver and the audit log the calls, under each operator's name.

The waiting step is the replay approval of RegionFailover (``approve``, ``two_person: true``) in a deployment
runbook of its own: reaching the real one would take a failover, which the integration drills already run."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from regionctl.observe.launch import console_url
from regionctl.routing.client import ControlClient
from tests.support.deploy import RunningDeployment
from tests.support.drills import engine, operator_token

pytestmark = pytest.mark.e2e
WAIT_MS = 30_000
RUNBOOK = "ConsoleReplayGate"
SOURCE = """description: waits for the approval of a replay, as RegionFailover's ApproveReplay does
steps:
  - name: ApproveReplay
    action: approve
    inputs: {approvers: ["role:approver"], two_person: true, message: "replay what us-east-1 lost?"}
    outputs: {approver: approver, comment: comment}
  - name: Done
    action: sleep
    inputs: {seconds: 0}
"""


def sign_in(page: Page, token: str, who: str) -> None:
    if page.locator("#signout").is_visible():
        page.click("#signout")
    page.fill("#token", token)
    page.click("#signin button")
    expect(page.locator("#identity")).to_have_text(re.compile(f"signed in as {who}"), timeout=WAIT_MS)


def test_operators_act_on_the_console_by_identity(page: Page, deployment: RunningDeployment) -> None:
    (deployment.settings.root / "runbooks").mkdir(exist_ok=True)
    (deployment.settings.root / "runbooks" / f"{RUNBOOK}.yaml").write_text(SOURCE)
    tokens = {name: operator_token(deployment, name, role)
              for name, role in (("web-olga", "operator"), ("web-vic", "viewer"), ("web-alice", "approver"))}
    url = console_url(deployment.topo.ports)
    assert url is not None
    page.goto(url + "/")
    expect(page.locator("button[data-action]")).to_have_count(0)  # nobody signed in: nothing to press

    page.fill("#token", "not-a-token")
    page.click("#signin button")
    expect(page.locator("#signin-error")).to_contain_text("unknown bearer token", timeout=WAIT_MS)

    sign_in(page, tokens["web-olga"], "web-olga")
    page.select_option("#start-runbook", RUNBOOK)
    page.click("#start button")
    expect(page.locator("#runbook-answer")).to_contain_text(f"started {RUNBOOK}", timeout=WAIT_MS)
    execution_id = page.locator("#runbook-answer").inner_text().rsplit("(", 1)[1].rstrip(")")
    waiting = page.locator(f'#runbooks tr[data-execution="{execution_id}"]')
    expect(waiting).to_contain_text("waiting for approval", timeout=WAIT_MS)
    expect(waiting.locator("button")).to_have_count(0)  # an operator starts, but does not approve

    sign_in(page, tokens["web-vic"], "web-vic")
    expect(waiting).to_contain_text("waiting for approval")
    expect(page.locator("button[data-action]")).to_have_count(0)  # a viewer sees no buttons at all
    expect(page.locator("#start")).to_be_hidden()

    sign_in(page, tokens["web-alice"], "web-alice")
    page.fill("#decision-comment", "checked the report")
    waiting.locator('button[data-action="approve"]').click()
    expect(page.locator("#runbook-answer")).to_contain_text(f"approved: {RUNBOOK}", timeout=WAIT_MS)
    expect(waiting).to_contain_text("succeeded", timeout=WAIT_MS)
    view = engine(deployment).execution(execution_id)
    decided = [s for s in view["steps"] if s["step"] == "ApproveReplay"][0]
    assert decided["outputs"]["approver"] == "web-alice" and view["actor"] == "web-olga"

    first, second = deployment.settings.regions
    sign_in(page, tokens["web-olga"], "web-olga")
    try:
        page.locator(f'#routing tr[data-region="{second}"] button[data-action="toggle"]').click()
        expect(page.locator("#routing-answer")).to_contain_text(f"applied: {second} Off", timeout=WAIT_MS)
        expect(page.locator(f'#routing tr[data-region="{second}"]')).to_contain_text("Turn On", timeout=WAIT_MS)
        page.locator(f'#routing tr[data-region="{first}"] button[data-action="toggle"]').click()
        refusal = page.locator("#routing-answer")
        expect(refusal).to_have_attribute("data-status", "409", timeout=WAIT_MS)
        expect(refusal).to_contain_text("at-least-one-region-on")  # the safety rule's answer, shown
    finally:
        client = ControlClient.from_settings(deployment.settings)
        client.change({second: True}, override=[r["name"] for r in client.rules()], reason="e2e: restore")
        client.close()

    audit = [json.loads(line) for line in (deployment.topo.paths.audit).read_text().splitlines()]
    mine = {(e["operator"], e["target"].split("/")[0], e["status"]) for e in audit if e["operator"].startswith("web-")}
    assert ("web-olga", "runbooks", 201) in mine and ("web-alice", "runbooks", 200) in mine
    assert ("web-olga", "routing", 200) in mine and ("web-olga", "routing", 409) in mine
    text = deployment.topo.paths.audit.read_text()
    assert not any(token in text for token in tokens.values())
