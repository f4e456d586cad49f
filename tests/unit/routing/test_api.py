"""The control API in-process (TestClient over the in-memory store and a fake clock)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from regionctl.operators.store import OperatorStore
from regionctl.routing.api import create_app
from regionctl.routing.health import HealthState
from regionctl.routing.model import AT_LEAST_ONE_REGION_RULE, AUTOMATION_GATE_RULE, default_spec
from regionctl.routing.service import ControlService
from regionctl.routing.store import MemoryControlStore

EAST, WEST = "us-east-1", "us-west-2"
TOKEN = "t0ken-for-unit-tests-only-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class FakeClock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(clock: FakeClock) -> Iterator[TestClient]:
    service = ControlService(MemoryControlStore(default_spec([EAST, WEST])), clock=clock)
    health = {EAST: HealthState(healthy=True, last_ok=True, last_detail="HTTP 200"),
              WEST: HealthState(healthy=False, last_ok=False, last_detail="HTTP 503")}
    with TestClient(create_app(service, OperatorStore(None, TOKEN), [EAST, WEST], lambda: health)) as test_client:
        yield test_client


def test_reads_are_open_and_describe_the_panel(client: TestClient) -> None:
    state = client.get("/state").json()
    assert state["controls"] == {EAST: "On", WEST: "On", "automation": "On"}
    status = client.get("/status").json()
    regions = {r["region"]: r for r in status["regions"]}
    assert regions[EAST]["routable"] and not regions[WEST]["routable"]
    assert "HTTP 503" in regions[WEST]["reason"]
    assert status["routing"] == f"routing to {EAST}"
    assert {r["name"] for r in client.get("/rules").json()} == {AT_LEAST_ONE_REGION_RULE, AUTOMATION_GATE_RULE}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/changes", {"controls": {EAST: "Off"}}),
    ("PUT", "/rules/x", {"kind": "assertion", "controls": [EAST], "type": "OR"}),
    ("DELETE", f"/rules/{AT_LEAST_ONE_REGION_RULE}", None),
    ("POST", "/changes", "this is not even json"),
])
def test_unauthenticated_mutations_get_401_and_change_nothing(client: TestClient, method: str, path: str,
                                                                 body: object) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}):
        kwargs = {"content": body} if isinstance(body, str) else {"json": body}
        response = client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in response.text
    assert client.get("/state").json()["controls"][EAST] == "On"
    assert len(client.get("/rules").json()) == 2


@pytest.mark.parametrize(("body", "named"), [
    ({"controls": {EAST: "off"}}, "controls.us-east-1: Input should be 'On' or 'Off'"),
    ({"controls": {}}, "controls: Dictionary should have at least 1 item"),
    ({"controls": {EAST: "Off"}, "bogus": 1}, "bogus: Extra inputs are not permitted"),
    ({"controls": {"eu-west-9": "Off"}}, "unknown routing control 'eu-west-9'"),
    ({"controls": {EAST: "Off"}, "override": ["no-such-rule"]}, "cannot override unknown rule 'no-such-rule'"),
])
def test_malformed_changes_get_400_naming_the_problem(client: TestClient, body: dict, named: str) -> None:
    response = client.post("/changes", json=body, headers=AUTH)
    assert response.status_code == 400
    assert named in response.json()["message"]
    assert client.get("/state").json()["version"] == 0


def test_invalid_json_is_named(client: TestClient) -> None:
    response = client.post("/changes", content=b"{not json", headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["message"]


def test_failover_then_last_region_off_is_refused_naming_the_rule(client: TestClient, clock: FakeClock) -> None:
    done = client.post("/changes", json={"controls": {EAST: "Off"}, "actor": "alice", "reason": "drill"},
                       headers=AUTH)
    assert done.status_code == 200, done.text
    assert done.json()["applied"] and done.json()["after"][EAST] == "Off"
    clock.now += 60
    refused = client.post("/changes", json={"controls": {WEST: "Off"}, "actor": "bob"}, headers=AUTH)
    assert refused.status_code == 409
    assert refused.json()["blocking"] == [AT_LEAST_ONE_REGION_RULE]
    assert f"rule '{AT_LEAST_ONE_REGION_RULE}'" in refused.json()["message"]
    assert client.get("/state").json()["controls"] == {EAST: "Off", WEST: "On", "automation": "On"}

    audit = client.get("/audit").json()
    assert [e["outcome"] for e in audit[:2]] == ["refused", "applied"]
    refusal, applied = audit[0], audit[1]
    # the token's operator is the actor; what the body claimed is only a note after it
    assert refusal["actor"] == "admin (bob)" and refusal["detail"]["after"] == refusal["detail"]["before"]
    assert refusal["detail"]["proposed"][WEST] == "Off"
    assert applied["actor"] == "admin (alice)" and applied["detail"]["reason_given"] == "drill"
    assert applied["detail"]["before"][EAST] == "On" and applied["detail"]["after"][EAST] == "Off"
    verdicts = {v["rule"]: v["outcome"] for v in applied["detail"]["verdicts"]}
    assert verdicts == {AT_LEAST_ONE_REGION_RULE: "pass", AUTOMATION_GATE_RULE: "pass"}


def test_override_names_the_rule_and_is_audited(client: TestClient, clock: FakeClock) -> None:
    body = {"controls": {EAST: "Off", WEST: "Off"}, "override": [AT_LEAST_ONE_REGION_RULE], "actor": "ops"}
    response = client.post("/changes", json=body, headers=AUTH)
    assert response.status_code == 200
    assert "overriding at-least-one-region-on" in response.json()["reason"]
    entry = client.get("/audit", params={"limit": 1}).json()[0]
    assert entry["detail"]["override"] == [AT_LEAST_ONE_REGION_RULE]
    assert {v["rule"]: v["outcome"] for v in entry["detail"]["verdicts"]}[AT_LEAST_ONE_REGION_RULE] == "overridden"


def test_wait_period_refusal_then_success(client: TestClient, clock: FakeClock) -> None:
    assert client.post("/changes", json={"controls": {EAST: "Off"}}, headers=AUTH).status_code == 200
    clock.now += 1
    refused = client.post("/changes", json={"controls": {EAST: "On"}}, headers=AUTH)
    assert refused.status_code == 409 and "wait period" in refused.json()["message"]
    assert refused.json()["retry_after_s"] == 4.0 and refused.headers["retry-after"] == "4"
    clock.now += 5
    assert client.post("/changes", json={"controls": {EAST: "On"}}, headers=AUTH).status_code == 200


def test_rules_can_be_added_and_deleted_with_audit(client: TestClient, clock: FakeClock) -> None:
    rule = {"kind": "assertion", "controls": [EAST, WEST], "type": "AND", "inverted": True, "wait_period_s": 0,
            "actor": "carol"}
    put = client.put("/rules/active-passive", json=rule, headers=AUTH)
    assert put.status_code == 200 and "does not hold now" in put.json()["summary"]
    assert client.post("/changes", json={"controls": {WEST: "Off"}}, headers=AUTH).status_code == 200
    clock.now += 60
    refused = client.post("/changes", json={"controls": {WEST: "On"}}, headers=AUTH)
    assert refused.status_code == 409 and refused.json()["blocking"] == ["active-passive"]
    bad = client.put("/rules/r2", json={**rule, "controls": [EAST, "nope"]}, headers=AUTH)
    assert bad.status_code == 400 and "unknown control 'nope'" in bad.json()["message"]
    assert client.delete("/rules/active-passive", headers=AUTH).status_code == 200
    missing = client.delete("/rules/active-passive", headers=AUTH)
    assert missing.status_code == 404 and "no safety rule named 'active-passive'" in missing.json()["message"]
    actions = [e["action"] for e in client.get("/audit").json()]
    assert actions[:4] == ["rule-delete", "change", "change", "rule-put"]


def test_metrics_is_a_plain_route(client: TestClient) -> None:
    response = client.get("/metrics", follow_redirects=False)
    assert response.status_code == 200
    assert 'regionctl_routing_control_on{control="us-east-1"} 1.0' in response.text
    assert 'regionctl_routing_region_routable{region="us-west-2"} 0.0' in response.text
