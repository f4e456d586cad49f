"""The HTTP API: open reads, mutations by operators whose role permits them, approvals by the caller's
identity (two-person rule), an audit entry per mutation, errors that name the problem."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.runbooks.harness import Harness

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}  # the deployment's control token: the first admin
TOKENS: dict[str, str] = {}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}

GATE = """
description: waits for an approval
parameters:
  who: {type: string, default: alice}
steps:
  - name: Gate
    action: approve
    inputs: {approvers: ["{{ params.who }}"], message: proceed?}
  - name: Work
    action: test.record
    inputs: {key: work}
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from regionctl.operators.audit import AuditLog
    from regionctl.operators.store import OperatorStore
    from regionctl.runbooks.api import create_app

    h = Harness(tmp_path, with_library=True)
    h.write("Gate", GATE)
    h.write("TwoPerson", GATE.replace("proceed?}", "proceed?, two_person: true}").replace("alice", "role:approver"))
    store = OperatorStore(tmp_path / "operators.json", TOKEN)
    for name, role in (("alice", "approver"), ("bob", "approver"), ("ops", "operator"), ("vic", "viewer"),
                       ("root2", "admin")):
        TOKENS[name] = store.add(name, role)
    app = create_app(h.engine, store, AuditLog(tmp_path / "audit.jsonl"))
    with TestClient(app) as test_client:
        test_client.app_state = {"store": store, "audit": tmp_path / "audit.jsonl"}  # type: ignore[attr-defined]
        yield test_client


def _until(client: TestClient, execution_id: str, check: Any, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = client.get(f"/executions/{execution_id}").json()
        if check(view):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.02)


def test_reads_are_open(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"ok": True, "running": 0}
    names = {row["name"] for row in client.get("/runbooks").json()}
    assert {"RegionFailover", "Failback", "Gate"} <= names
    shown = client.get("/runbooks/RegionFailover").json()
    assert shown["parameters"]["mode"] == {"type": "choice", "description": shown["parameters"]["mode"]["description"],
                                           "required": False, "default": "ungraceful",
                                           "choices": ["graceful", "ungraceful"]}
    assert "source" in shown and shown["recovery"]["probe"] == "global_write"
    missing = client.get("/runbooks/Nope")
    assert missing.status_code == 404 and missing.json()["message"].startswith("no runbook 'Nope' (known: ")


def test_mutations_need_the_token(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-123456789"}, {"Authorization": TOKEN}):
        response = client.post("/executions", json={"runbook": "Gate"}, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "bearer token" in response.json()["message"]
    for path in ("approve", "decline", "pause", "resume", "cancel", "retry", "skip"):
        assert client.post(f"/executions/x/{path}", json={}).status_code == 401
    assert client.get("/executions").json() == []


def test_each_role_may_do_what_it_permits_and_a_refusal_names_the_missing_permission(client: TestClient) -> None:
    refused = client.post("/executions", json={"runbook": "Gate"}, headers=auth("vic"))
    assert (refused.status_code, refused.json()["message"]) == (403, (
        "operator vic (viewer) may not start, pause, cancel runbooks, change routing, run chaos and drills: that "
        "needs the operate permission (roles: operator, admin)"))
    assert client.post("/executions", json={"runbook": "Gate"}, headers=auth("alice")).status_code == 403
    started = client.post("/executions", json={"runbook": "Gate"}, headers=auth("ops"))
    assert started.status_code == 201 and started.json()["actor"] == "ops"  # the caller, not a field
    execution_id = started.json()["id"]
    _until(client, execution_id, lambda v: v["waiting"])
    for name in ("ops", "vic"):
        answer = client.post(f"/executions/{execution_id}/approve", json={}, headers=auth(name))
        assert answer.status_code == 403 and "needs the approve permission (roles: approver, admin)" in \
            answer.json()["message"]
    posing = client.post(f"/executions/{execution_id}/approve", json={"approver": "alice"}, headers=auth("bob"))
    assert (posing.status_code, posing.json()["message"]) == (
        400, "approver: the approver is the authenticated caller (bob), not 'alice'; drop it")
    bob = client.post(f"/executions/{execution_id}/approve", json={}, headers=auth("bob"))
    assert (bob.status_code, bob.json()["message"]) == (403, "'bob' may not decide step Gate; approvers: alice")
    assert client.post(f"/executions/{execution_id}/approve", json={}, headers=auth("alice")).status_code == 200
    assert client.post(f"/executions/{execution_id}/pause", json={}, headers=auth("vic")).status_code == 403


def test_the_two_person_rule_keeps_the_starter_from_approving(client: TestClient) -> None:
    execution_id = client.post("/executions", json={"runbook": "TwoPerson"}, headers=auth("root2")).json()["id"]
    view = _until(client, execution_id, lambda v: v["waiting"])
    assert view["waiting"][0]["approvers"] == ["role:approver"] and view["waiting"][0]["two_person"] is True
    own = client.post(f"/executions/{execution_id}/approve", json={}, headers=auth("root2"))
    assert (own.status_code, own.json()["message"]) == (403, (
        f"the two-person rule: root2 started execution {execution_id} and may not decide its step Gate; another "
        "of role:approver must"))
    assert client.post(f"/executions/{execution_id}/approve", json={}, headers=auth("bob")).status_code == 200
    assert _until(client, execution_id, lambda v: v["status"] == "succeeded")["steps"][0]["outputs"] == {}


def test_a_revoked_or_rotated_token_is_refused_at_once(client: TestClient) -> None:
    store = client.app_state["store"]  # type: ignore[attr-defined]
    assert client.post("/executions", json={"runbook": "Gate"}, headers=auth("ops")).status_code == 201
    old = TOKENS["ops"]
    TOKENS["ops"] = store.rotate("ops")
    assert client.post("/executions", json={"runbook": "Gate"},
                       headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert client.post("/executions", json={"runbook": "Gate"}, headers=auth("ops")).status_code == 201
    store.revoke("ops")
    assert client.post("/executions", json={"runbook": "Gate"}, headers=auth("ops")).status_code == 401


def test_every_mutation_is_audited_without_its_secrets(client: TestClient) -> None:
    started = client.post("/executions", json={"runbook": "Gate", "parameters": {"who": "alice"}},
                          headers=auth("ops"))
    execution_id = started.json()["id"]
    _until(client, execution_id, lambda v: v["waiting"])
    client.post(f"/executions/{execution_id}/approve", json={"comment": "fine"}, headers=auth("alice"))
    client.post("/executions", json={"runbook": "Gate"}, headers=auth("vic"))
    client.post("/executions", json={"runbook": "Gate"}, headers={"Authorization": "Bearer nobody-at-all-123"})
    text = client.app_state["audit"].read_text()  # type: ignore[attr-defined]
    rows = [__import__("json").loads(line) for line in text.splitlines()]
    assert [(r["operator"], r["action"], r["target"], r["status"]) for r in rows] == [
        ("ops", "POST", "runbooks/executions", 201),
        ("alice", "POST", f"runbooks/executions/{execution_id}/approve", 200),
        ("vic", "POST", "runbooks/executions", 403), ("(unknown)", "POST", "runbooks/executions", 401)]
    assert rows[0]["params"] == {"runbook": "Gate", "parameters": {"who": "alice"}}
    assert not any(token in text for token in (*TOKENS.values(), TOKEN, "nobody-at-all-123"))


def test_bad_requests_name_the_problem(client: TestClient) -> None:
    def start(body: Any) -> tuple[int, str]:
        response = client.post("/executions", json=body, headers=AUTH)
        return response.status_code, response.json()["message"]

    assert start({"runbook": "Missing"})[0] == 404
    assert start({"runbook": "RegionFailover"}) == (400, "runbook RegionFailover needs parameter region "
                                                         "(region: the region to leave)")
    assert start({"runbook": "RegionFailover", "parameters": {"region": "mars-1"}}) == (
        400, "parameter region: unknown region 'mars-1'; this deployment has us-east-1, us-west-2")
    code, error = start({"runbook": "Gate", "parameters": [1]})
    assert code == 400 and error.startswith("parameters: Input should be a valid dictionary")
    code, error = start({"runbook": "Gate", "speed": 3})
    assert code == 400 and "speed: Extra inputs are not permitted" in error
    assert start({"runbook": "Gate", "recovery_after": "Gate"}) == (400, "recovery_after needs recovery_probe")
    missing = client.get("/executions/nothere")
    assert (missing.status_code, missing.json()) == (404, {"code": 404, "message": "no execution 'nothere'"})


def test_validate_returns_problems_with_line_and_field(client: TestClient) -> None:
    bad = "description: x\nsteps:\n  - name: A\n    action: sleep\n    inputs: {seconds: -1}\n"
    response = client.post("/runbooks/validate", json={"source": bad, "name": "Mine"})
    assert response.status_code == 400
    assert response.json()["problems"] == [
        "Mine.yaml:5: steps.A.inputs.seconds: Input should be greater than or equal to 0"]
    good = bad.replace("-1", "1")
    assert client.post("/runbooks/validate", json={"source": good}).json()["valid"] is True


def test_an_approval_through_the_api(client: TestClient) -> None:
    started = client.post("/executions", json={"runbook": "Gate", "actor": "admin"}, headers=AUTH)
    assert started.status_code == 201
    execution_id = started.json()["id"]
    view = _until(client, execution_id, lambda v: v["waiting"])
    assert view["waiting"] == [{"execution_id": execution_id, "step": "Gate", "approvers": ["alice"],
                                "message": "proceed?", "two_person": False}]
    wrong = client.post(f"/executions/{execution_id}/approve", json={}, headers=AUTH)
    assert (wrong.status_code, wrong.json()["message"]) == (403, "'admin' may not decide step Gate; approvers: alice")
    no_reason = client.post(f"/executions/{execution_id}/decline", json={}, headers=auth("alice"))
    assert (no_reason.status_code, no_reason.json()["message"]) == (400, "comment: say why the step is declined")
    ok = client.post(f"/executions/{execution_id}/approve", json={"approver": "alice", "comment": "go"},
                     headers=auth("alice"))
    assert ok.status_code == 200
    view = _until(client, execution_id, lambda v: v["status"] == "succeeded")
    assert [s["step"] for s in view["steps"]] == ["Gate", "Work"]
    assert view["steps"][0]["outputs"] == {} and view["duration_s"] is not None
    kinds = [e["kind"] for e in client.get(f"/executions/{execution_id}/history").json()]
    assert "approval.approved" in kinds and kinds[-1] == "execution.succeeded"
    again = client.post(f"/executions/{execution_id}/pause", json={}, headers=AUTH)
    assert (again.status_code, again.json()["message"]) == (
        409, f"execution {execution_id} is succeeded; only a running one can pause")
    unknown = client.post(f"/executions/{execution_id}/rewind", json={}, headers=AUTH)
    assert unknown.status_code == 404 and "no control 'rewind'" in unknown.json()["message"]
    listed = client.get("/executions").json()
    assert [(e["id"], e["status"]) for e in listed] == [(execution_id, "succeeded")]


def test_cancel_and_controls_through_the_api(client: TestClient) -> None:
    execution_id = client.post("/executions", json={"runbook": "Gate"}, headers=AUTH).json()["id"]
    _until(client, execution_id, lambda v: v["waiting"])
    paused = client.post(f"/executions/{execution_id}/pause", json={}, headers=auth("ops"))
    assert paused.status_code == 200
    _until(client, execution_id, lambda v: v["status"] == "paused")
    step_on_pause = client.post(f"/executions/{execution_id}/resume", json={"step": "Gate"}, headers=AUTH)
    assert step_on_pause.status_code == 400
    retry = client.post(f"/executions/{execution_id}/retry", json={}, headers=AUTH)
    assert retry.status_code == 409 and "retry and skip apply to a failed execution" in retry.json()["message"]
    resumed = client.post(f"/executions/{execution_id}/resume", json={}, headers=auth("ops"))
    assert resumed.status_code == 200, resumed.text
    _until(client, execution_id, lambda v: v["waiting"])  # the approval step asks again
    client.post(f"/executions/{execution_id}/pause", json={"actor": "ops"}, headers=auth("ops"))
    _until(client, execution_id, lambda v: v["status"] == "paused")
    cancelled = client.post(f"/executions/{execution_id}/cancel", json={}, headers=auth("ops"))
    assert cancelled.json()["status"] == "cancelled"
    history = [e["message"] for e in client.get(f"/executions/{execution_id}/history").json()]
    assert "pause requested by ops" in history and "resumed by ops" in history and "cancelled" in history
