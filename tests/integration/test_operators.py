"""Operators through the CLI against the running engine: a token per operator, roles that allow and refuse, a
revoked token refused at once, and an audit log with one entry per mutation and no token in it."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.deploy import RunningDeployment
from tests.support.drills import REGIONCTL, regionctl, wait_settled

pytestmark = pytest.mark.integration
EAST = "us-east-1"


def run_as(deployment: RunningDeployment, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REGIONCTL, *args, "--format", "json"], env={**deployment.cli_env, "REGIONCTL_TOKEN": token},
                          capture_output=True, text=True, timeout=120)


def said(proc: subprocess.CompletedProcess[str]) -> str:
    """The error as one line (the console wraps long messages)."""
    return " ".join(proc.stderr.split())


def test_roles_revocation_and_the_audit_log_through_the_cli(deployment: RunningDeployment) -> None:
    tokens = {name: regionctl(deployment, "operators", "add", name, "--role", role)["token"]
              for name, role in (("ops-vic", "viewer"), ("ops-olga", "operator"))}
    refused = run_as(deployment, tokens["ops-vic"], "runbook", "start", "EnableApplication", "-p", f"region={EAST}")
    assert refused.returncode == 7 and "operator ops-vic (viewer) may not start" in said(refused)
    assert "needs the operate permission" in said(refused)
    no_admin = run_as(deployment, tokens["ops-olga"], "operators", "add", "ops-eve", "--role", "admin")
    assert no_admin.returncode == 7 and "may not manage operators: that needs the admin role" in said(no_admin)
    started = run_as(deployment, tokens["ops-olga"], "runbook", "start", "EnableApplication", "-p", f"region={EAST}")
    assert started.returncode == 0, started.stderr
    view = json.loads(started.stdout)
    assert view["actor"] == "ops-olga"
    assert wait_settled(deployment, view["id"])["status"] == "succeeded"
    regionctl(deployment, "operators", "revoke", "ops-olga")
    gone = run_as(deployment, tokens["ops-olga"], "runbook", "start", "EnableApplication", "-p", f"region={EAST}")
    assert gone.returncode == 7 and "unknown bearer token" in said(gone)
    listed = {r["name"]: r for r in regionctl(deployment, "operators", "list")}
    assert listed["ops-olga"]["revoked_at"] is not None and listed["ops-vic"]["role"] == "viewer"

    entries = regionctl(deployment, "audit", "--since", "600")
    mine = [(e["operator"], e["action"], e["status"]) for e in entries if e["operator"] in ("ops-vic", "ops-olga")
            or e["target"].startswith("operators/ops-")]
    assert ("ops-vic", "POST", 403) in mine and ("ops-olga", "POST", 201) in mine
    assert ("admin", "operators revoke", 200) in [(e["operator"], e["action"], e["status"]) for e in entries]
    audit_text = (deployment.topo.paths.state / "audit.jsonl").read_text()
    assert not any(token in audit_text for token in tokens.values())
