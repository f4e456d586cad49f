"""The HTTP API: open reads, token-guarded mutations, errors that name the problem."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.runbooks.harness import Harness

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

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
    from regionctl.runbooks.api import create_app

    h = Harness(tmp_path, with_library=True)
    h.write("Gate", GATE)
    app = create_app(h.engine, TOKEN)
    with TestClient(app) as test_client:
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
    assert missing.status_code == 404 and missing.json()["error"].startswith("no runbook 'Nope' (known: ")


def test_mutations_need_the_token(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-123456789"}, {"Authorization": TOKEN}):
        response = client.post("/executions", json={"runbook": "Gate"}, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "bearer token" in response.json()["error"]
    for path in ("approve", "decline", "pause", "resume", "cancel", "retry", "skip"):
        assert client.post(f"/executions/x/{path}", json={"approver": "a"}).status_code == 401
    assert client.get("/executions").json() == []


def test_bad_requests_name_the_problem(client: TestClient) -> None:
    def start(body: Any) -> tuple[int, str]:
        response = client.post("/executions", json=body, headers=AUTH)
        return response.status_code, response.json()["error"]

    assert start({"runbook": "Missing"})[0] == 404
    assert start({"runbook": "RegionFailover"}) == (400, "runbook RegionFailover needs parameter region "
                                                         "(region: the region to leave)")
    assert start({"runbook": "RegionFailover", "parameters": {"region": "mars-1"}}) == (
        400, "parameter region: unknown region 'mars-1'; this deployment has us-east-1, us-west-2")
    code, error = start({"runbook": "Gate", "parameters": [1]})
    assert code == 422 and error.startswith("body.parameters: Input should be a valid dictionary")
    code, error = start({"runbook": "Gate", "speed": 3})
    assert code == 422 and "body.speed: Extra inputs are not permitted" in error
    assert start({"runbook": "Gate", "recovery_after": "Gate"}) == (400, "recovery_after needs recovery_probe")
    missing = client.get("/executions/nothere")
    assert (missing.status_code, missing.json()) == (404, {"error": "no execution 'nothere'"})


def test_validate_returns_problems_with_line_and_field(client: TestClient) -> None:
    bad = "description: x\nsteps:\n  - name: A\n    action: sleep\n    inputs: {seconds: -1}\n"
    response = client.post("/runbooks/validate", json={"source": bad, "name": "Mine"})
    assert response.status_code == 422
    assert response.json()["problems"] == [{"file": "Mine.yaml", "line": 5, "field": "steps.A.inputs.seconds",
                                            "message": "Input should be greater than or equal to 0"}]
    good = bad.replace("-1", "1")
    assert client.post("/runbooks/validate", json={"source": good}).json()["valid"] is True


def test_an_approval_through_the_api(client: TestClient) -> None:
    started = client.post("/executions", json={"runbook": "Gate", "actor": "ops"}, headers=AUTH)
    assert started.status_code == 201
    execution_id = started.json()["id"]
    view = _until(client, execution_id, lambda v: v["waiting"])
    assert view["waiting"] == [{"execution_id": execution_id, "step": "Gate", "approvers": ["alice"],
                                "message": "proceed?"}]
    wrong = client.post(f"/executions/{execution_id}/approve", json={"approver": "bob"}, headers=AUTH)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "'bob' may not decide step Gate; approvers: alice")
    no_reason = client.post(f"/executions/{execution_id}/decline", json={"approver": "alice"}, headers=AUTH)
    assert (no_reason.status_code, no_reason.json()["error"]) == (400, "comment: say why the step is declined")
    ok = client.post(f"/executions/{execution_id}/approve", json={"approver": "alice", "comment": "go"},
                     headers=AUTH)
    assert ok.status_code == 200
    view = _until(client, execution_id, lambda v: v["status"] == "succeeded")
    assert [s["step"] for s in view["steps"]] == ["Gate", "Work"]
    assert view["steps"][0]["outputs"] == {} and view["duration_s"] is not None
    kinds = [e["kind"] for e in client.get(f"/executions/{execution_id}/history").json()]
    assert "approval.approved" in kinds and kinds[-1] == "execution.succeeded"
    again = client.post(f"/executions/{execution_id}/pause", json={}, headers=AUTH)
    assert (again.status_code, again.json()["error"]) == (
        409, f"execution {execution_id} is succeeded; only a running one can pause")
    unknown = client.post(f"/executions/{execution_id}/rewind", json={}, headers=AUTH)
    assert unknown.status_code == 404 and "no control 'rewind'" in unknown.json()["error"]
    listed = client.get("/executions").json()
    assert [(e["id"], e["status"]) for e in listed] == [(execution_id, "succeeded")]


def test_cancel_and_controls_through_the_api(client: TestClient) -> None:
    execution_id = client.post("/executions", json={"runbook": "Gate"}, headers=AUTH).json()["id"]
    _until(client, execution_id, lambda v: v["waiting"])
    paused = client.post(f"/executions/{execution_id}/pause", json={"actor": "ops"}, headers=AUTH)
    assert paused.status_code == 200
    _until(client, execution_id, lambda v: v["status"] == "paused")
    step_on_pause = client.post(f"/executions/{execution_id}/resume", json={"step": "Gate"}, headers=AUTH)
    assert step_on_pause.status_code == 400
    retry = client.post(f"/executions/{execution_id}/retry", json={}, headers=AUTH)
    assert retry.status_code == 409 and "retry and skip apply to a failed execution" in retry.json()["error"]
    resumed = client.post(f"/executions/{execution_id}/resume", json={"actor": "ops"}, headers=AUTH)
    assert resumed.status_code == 200, resumed.text
    _until(client, execution_id, lambda v: v["waiting"])  # the approval step asks again
    client.post(f"/executions/{execution_id}/pause", json={"actor": "ops"}, headers=AUTH)
    _until(client, execution_id, lambda v: v["status"] == "paused")
    cancelled = client.post(f"/executions/{execution_id}/cancel", json={"actor": "ops"}, headers=AUTH)
    assert cancelled.json()["status"] == "cancelled"
    history = [e["message"] for e in client.get(f"/executions/{execution_id}/history").json()]
    assert "pause requested by ops" in history and "resumed by ops" in history and "cancelled" in history
