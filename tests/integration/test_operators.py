"""Operators through the CLI against the running engine: a token per operator, roles that allow and refuse, a
revoked token refused at once, an audit log with one entry per mutation and no token in it, and a superuser
that only the deployment's own password opens."""

from __future__ import annotations

import json
import stat
import subprocess

import psycopg
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
    assert no_admin.returncode == 7
    assert "may not manage operators and secrets: that needs the admin permission" in said(no_admin)
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


def test_the_superuser_is_not_open_to_every_local_user(deployment: RunningDeployment) -> None:
    """Every instance of the deployment (both members of each global database, both regional stores) refuses
    the superuser from loopback without the password, or with a wrong one, replication connections too; the
    platform's own login (the 0600 password file) gets in, and an admin's way in is `regionctl db psql`."""
    topo = deployment.topo
    passfile = topo.login.passfile
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600 and stat.S_IMODE(passfile.parent.stat().st_mode) == 0o700
    instances = [topo.pg(region, name) for region in deployment.settings.regions
                 for name in (*deployment.gdbs.names, "regional")]
    for instance in instances:
        for extra in ({"passfile": "/nonexistent"}, {"password": "not-the-password"},
                      {"passfile": "/nonexistent", "replication": "database"}):
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(host=instance.host, port=instance.port, user="postgres", dbname="postgres",
                                connect_timeout=5, **extra).close()
        assert instance.scalar("select current_user") == "postgres"  # with the deployment's password file

    viewer = regionctl(deployment, "operators", "add", "ops-psql-vic", "--role", "viewer")["token"]
    refused = run_as(deployment, viewer, "db", "psql", "orders", "--", "-tAc", "select 1")
    assert refused.returncode == 7 and "needs the admin permission" in said(refused)
    session = subprocess.run([REGIONCTL, "db", "psql", "orders", "--", "-tAc", "select current_user, "
                              "pg_is_in_recovery()"], env=deployment.cli_env, capture_output=True, text=True,
                             timeout=60)
    assert session.returncode == 0, session.stderr
    assert session.stdout.strip() == "postgres|f"  # the writer
    audit = regionctl(deployment, "audit", "--since", "120")
    assert ("admin", "db psql", 200) in [(e["operator"], e["action"], e["status"]) for e in audit]
    assert ("ops-psql-vic", "db psql", 403) in [(e["operator"], e["action"], e["status"]) for e in audit]
