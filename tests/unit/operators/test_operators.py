"""Operators: tokens kept only as hashes, revocation and rotation at once, roles as permissions, an audit log
that keeps no secret, and the CLI caller's token from the environment or a file, never argv."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from regionctl.errors import ConflictError, InputError, NotFoundError
from regionctl.operators.audit import AuditLog, scrub
from regionctl.operators.roles import ADMIN, APPROVE, OPERATE, READ, permits, roles_with
from regionctl.operators.store import Operator, OperatorStore

CONTROL = "the-control-token-0123456789"


def test_tokens_are_stored_only_as_hashes_and_the_control_token_is_the_first_admin(tmp_path: Path) -> None:
    store = OperatorStore(tmp_path / "operators.json", CONTROL)
    token = store.add("alice", "approver")
    text = (tmp_path / "operators.json").read_text()
    assert token not in text and len(token) >= 40
    assert stat.S_IMODE((tmp_path / "operators.json").stat().st_mode) == 0o600
    assert store.authenticate(token) == Operator("alice", "approver")
    assert store.authenticate(CONTROL) == Operator("admin", "admin")
    assert store.authenticate("guess-" + token) is None
    assert [r["name"] for r in store.list()] == ["admin", "alice"]
    assert all("token" not in k for r in store.list() for k in r)


def test_rotation_and_revocation_take_effect_at_once(tmp_path: Path) -> None:
    store = OperatorStore(tmp_path / "operators.json", CONTROL)
    old = store.add("bob", "operator")
    new = store.rotate("bob")
    assert store.authenticate(old) is None and store.authenticate(new) == Operator("bob", "operator")
    store.revoke("bob")
    assert store.authenticate(new) is None
    with pytest.raises(NotFoundError, match="no active operator 'bob'"):
        store.rotate("bob")
    again = store.add("bob", "viewer")  # a revoked name may be given out again, with a new token
    assert store.authenticate(again) == Operator("bob", "viewer")


def test_bad_names_roles_and_duplicates_are_refused_by_name(tmp_path: Path) -> None:
    store = OperatorStore(tmp_path / "operators.json", CONTROL)
    store.add("carol", "viewer")
    with pytest.raises(ConflictError, match="operator carol exists"):
        store.add("carol", "admin")
    with pytest.raises(InputError, match="--role 'root' is not a role; choose one of viewer, operator, approver"):
        store.add("dave", "root")
    for bad in ("Dave", "admin", "x" * 41, "../etc"):
        with pytest.raises(InputError, match="operator name"):
            store.add(bad, "viewer")
    with pytest.raises(InputError, match="admin is the deployment's control token"):
        store.revoke("admin")


def test_roles_are_permissions_not_a_ladder() -> None:
    assert permits("approver", APPROVE) and not permits("approver", OPERATE)
    assert permits("operator", OPERATE) and not permits("operator", APPROVE)
    assert permits("viewer", READ) and not permits("viewer", OPERATE)
    assert all(permits("admin", p) for p in (READ, OPERATE, APPROVE, ADMIN))
    assert roles_with(APPROVE) == ["approver", "admin"] and not permits("nobody", READ)


def test_the_audit_log_appends_and_scrubs_secrets(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("alice", "approver", "POST", "/executions/x/approve",
               {"comment": "go", "token": "s3cret", "nested": {"password": "p", "dsn": "host=x password=y"}},
               "ok", 200)
    log.append("bob", "viewer", "POST", "/executions", {}, "refused", 403)
    text = (tmp_path / "audit.jsonl").read_text()
    assert "s3cret" not in text and "password=y" not in text
    rows = [json.loads(line) for line in text.splitlines()]
    assert rows[0]["params"] == {"comment": "go", "token": "***", "nested": {"password": "***", "dsn": "***"}}
    assert [r["operator"] for r in log.read(operator="bob")] == ["bob"]
    assert log.read(since=rows[1]["at"] + 1) == []
    assert scrub(["a", {"Authorization": "Bearer x"}]) == ["a", {"Authorization": "***"}]


def test_the_caller_token_comes_from_the_environment_or_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    from regionctl.config import load_settings
    from regionctl.errors import ConfigError
    from regionctl.operators.caller import caller_token

    settings = load_settings(data_dir=tmp_path / "data", control_token=CONTROL)
    monkeypatch.delenv("REGIONCTL_TOKEN", raising=False)
    monkeypatch.delenv("REGIONCTL_TOKEN_FILE", raising=False)
    assert caller_token(settings) == CONTROL
    (tmp_path / "mine").write_text("from-a-file\n")
    monkeypatch.setenv("REGIONCTL_TOKEN_FILE", str(tmp_path / "mine"))
    assert caller_token(settings) == "from-a-file"
    monkeypatch.setenv("REGIONCTL_TOKEN", "from-the-env")
    assert caller_token(settings) == "from-the-env"
    monkeypatch.delenv("REGIONCTL_TOKEN")
    monkeypatch.setenv("REGIONCTL_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="cannot read .*missing"):
        caller_token(settings)
