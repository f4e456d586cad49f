"""Every plane's mutating endpoints behind the one gate: each role against each of them (allowed, or refused with
the permission and the roles that have it named), a revoked token refused at once, one audit entry per
mutation with its plane, and no token in the log."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from regionctl.operators.audit import AuditLog
from regionctl.operators.store import OperatorStore
from regionctl.routing.api import create_app as routing_app
from regionctl.routing.model import default_spec
from regionctl.routing.service import ControlService
from regionctl.routing.store import MemoryControlStore
from regionctl.runtime.link_api import create_app as link_app
from regionctl.runtime.link_engine import LinkEngine

CONTROL = "control-token-for-the-planes-0123456789"
REGIONS = ["us-east-1", "us-west-2"]
ROLES = ("viewer", "operator", "approver", "admin")

Call = tuple[str, str, Any]
ROUTING: list[Call] = [
    ("POST", "/changes", {"controls": {"us-west-2": "On"}}),
    ("PUT", "/rules/keep-one", {"kind": "assertion", "controls": REGIONS, "type": "ATLEAST", "threshold": 1}),
    ("DELETE", "/rules/keep-one", None),
]
LINK: list[Call] = [
    ("PUT", "/directions", {"direction": "both", "latency_ms": 5}),
    ("PUT", "/directions/us-east-1/us-west-2", {"latency_ms": 7}),
    ("POST", "/partition", {"direction": "both"}),
    ("POST", "/isolate", {"region": "us-east-1"}),
    ("POST", "/heal", {"direction": "both"}),
    ("DELETE", "/routes/nothing-here", None),
]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[OperatorStore, AuditLog, dict[str, str]]]:
    store = OperatorStore(tmp_path / "operators.json", CONTROL)
    tokens = {role: store.add(f"{role}-1", role) for role in ROLES}
    yield store, AuditLog(tmp_path / "audit.jsonl"), tokens


def _apps(tmp_path: Path, store: OperatorStore, audit: AuditLog) -> dict[str, tuple[FastAPI, list[Call]]]:
    control = ControlService(MemoryControlStore(default_spec(REGIONS)))
    link = LinkEngine(tmp_path / "link", tuple(REGIONS), latency_ms=1.0, jitter_ms=0.0)
    return {"routing": (routing_app(control, store, REGIONS, audit=audit), ROUTING),
            "link": (link_app(link, store, audit), LINK)}


@pytest.mark.parametrize("plane", ["routing", "link"])
def test_each_role_against_each_mutation(tmp_path: Path, deployment: Any, plane: str) -> None:
    store, audit, tokens = deployment
    app, calls = _apps(tmp_path, store, audit)[plane]
    with TestClient(app) as client:
        for role in ROLES:
            for method, path, body in calls:
                answer = client.request(method, path, json=body, headers={"Authorization": f"Bearer {tokens[role]}"})
                if role in ("operator", "admin"):
                    assert answer.status_code not in (401, 403), (role, path, answer.text)
                else:
                    assert answer.status_code == 403, (role, path, answer.text)
                    message = answer.json()["message"]
                    assert f"{role}-1 ({role}) may not" in message and "needs the operate permission" in message
                    assert "roles: operator, admin" in message
    rows = audit.read()
    assert len(rows) == len(ROLES) * len(calls)  # one entry per mutation, refused ones included
    assert all(row["target"].startswith(f"{plane}/") for row in rows)
    assert {(row["operator"], row["status"] == 403) for row in rows} == {
        ("viewer-1", True), ("approver-1", True), ("operator-1", False), ("admin-1", False)}
    text = audit.path.read_text()
    assert not any(token in text for token in (*tokens.values(), CONTROL))


@pytest.mark.parametrize("plane", ["routing", "link"])
def test_a_revoked_token_is_refused_at_once_and_no_token_is_a_401(tmp_path: Path, deployment: Any,
                                                                  plane: str) -> None:
    store, audit, tokens = deployment
    app, calls = _apps(tmp_path, store, audit)[plane]
    method, path, body = calls[0]
    send: Callable[[dict[str, str]], Any]
    with TestClient(app) as client:
        def send(headers: dict[str, str]) -> Any:
            return client.request(method, path, json=body, headers=headers)

        assert send({"Authorization": f"Bearer {tokens['operator']}"}).status_code == 200
        store.revoke("operator-1")
        refused = send({"Authorization": f"Bearer {tokens['operator']}"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.json() == {"code": 401, "message": "missing or unknown bearer token "
                                  "(Authorization: Bearer <operator token>)"}
        assert send({}).status_code == 401
        assert send({"Authorization": f"Bearer {CONTROL}"}).status_code == 200  # the first admin
    statuses = [json.loads(line)["status"] for line in audit.path.read_text().splitlines()]
    assert statuses == [200, 401, 401, 200]


def test_the_routing_audit_names_the_operator_not_the_body(tmp_path: Path, deployment: Any) -> None:
    store, audit, tokens = deployment
    app, _ = _apps(tmp_path, store, audit)["routing"]
    with TestClient(app) as client:
        done = client.post("/changes", json={"controls": {"us-east-1": "Off"}, "actor": "runbook 42"},
                           headers={"Authorization": f"Bearer {tokens['operator']}"})
        assert done.status_code == 200, done.text
        assert client.get("/audit").json()[0]["actor"] == "operator-1 (runbook 42)"
