"""Database credentials on the real deployment: the shop logs in as its own rotating user (never the superuser),
a rotation keeps orders flowing in both regions, a standby that has not replayed the new password holds the
rotation back without locking anyone out, and no password reaches an output or a log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from regionctl.credentials import service
from regionctl.credentials.rotation import RotationIncomplete, login_users
from regionctl.credentials.store import PENDING, PREVIOUS
from tests.support.deploy import RunningDeployment
from tests.support.poll import eventually

pytestmark = pytest.mark.integration
REGIONCTL = str(Path(sys.executable).with_name("regionctl"))


def superuser(deployment: RunningDeployment, database: str, region: str | None = None) -> psycopg.Connection[Any]:
    member = deployment.gdbs.cluster(database).member(region or deployment.gdbs.state(database).writer)
    return psycopg.connect(member.conninfo(database), autocommit=True)


def place_order(deployment: RunningDeployment, region: str) -> None:
    response = httpx.post(deployment.ui(region) + "/actuator/canary-order", timeout=30)
    assert response.status_code == 200, response.text


def test_the_shop_logs_in_as_its_own_user_and_owns_its_tables(deployment: RunningDeployment) -> None:
    place_order(deployment, deployment.settings.primary_region)
    with superuser(deployment, "orders") as conn:
        users = {r[0] for r in conn.execute("select usename from pg_stat_activity "
                                            "where application_name like 'shop-orders-%'")}
        owners = {r[0] for r in conn.execute("select tableowner from pg_tables where schemaname = 'public'")}
    assert users and users <= set(login_users("orders")), users
    assert owners == {"orders_owner"}
    current = service.store(deployment.settings).value("orders")
    member = deployment.gdbs.cluster("orders").member(deployment.gdbs.state("orders").writer)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host=member.host, port=member.port, user=current["username"], password="not-the-password",
                        dbname="orders", connect_timeout=5)


def test_a_rotation_keeps_orders_flowing_and_new_connections_use_the_new_user(
        deployment: RunningDeployment) -> None:
    settings = deployment.settings
    before = service.store(settings).value("orders")
    for region in settings.regions:
        place_order(deployment, region)
    run = subprocess.run([REGIONCTL, "secrets", "rotate", "orders", "--format", "json"], env=deployment.cli_env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)[0]
    assert result["previous_username"] == before["username"] != result["username"]
    assert result["members_tested"] == list(settings.regions)
    for region in settings.regions:
        place_order(deployment, region)

    after = service.store(settings).value("orders")
    assert after["username"] == result["username"] and after["password"] != before["password"]
    assert service.store(settings).value("orders", PREVIOUS) == before
    writer = deployment.gdbs.cluster("orders").member(deployment.gdbs.state("orders").writer)
    env = {**os.environ, service.SERVICE_FILE_ENV: str(service.service_file(settings))}
    probe = subprocess.run(  # a new client, configured the way the shop is: no user, no password, a service
        [sys.executable, "-c", "import psycopg, sys; c = psycopg.connect(sys.argv[1]); "
         "print(c.execute('select session_user, current_user').fetchone())",
         f"service=orders host={writer.host} port={writer.port} dbname=orders"],
        env=env, capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == str((after["username"], "orders_owner"))

    listed = subprocess.run([REGIONCTL, "secrets", "list", "--format", "json"], env=deployment.cli_env,
                            capture_output=True, text=True, timeout=60)
    assert {s["secret"]: s["user"] for s in json.loads(listed.stdout)}["orders"] == after["username"]
    outputs = run.stdout + run.stderr + listed.stdout + listed.stderr
    logs = "".join(p.read_text(errors="replace") for p in deployment.topo.paths.root.rglob("*.log"))
    for password in (before["password"], after["password"]):
        assert password not in outputs and password not in logs


def test_a_standby_behind_holds_the_rotation_back_and_a_second_run_resumes_it(
        deployment: RunningDeployment) -> None:
    settings, gdbs = deployment.settings, deployment.gdbs
    standby = next(r for r in settings.regions if r != gdbs.state("catalog").writer)
    current = service.store(settings).value("catalog")
    with superuser(deployment, "catalog", standby) as conn:
        conn.execute("select pg_wal_replay_pause()")
        try:
            with pytest.raises(RotationIncomplete, match=f"{standby}: .*password authentication failed"):
                service.rotate_database(gdbs, "catalog", test_timeout_s=3)
            assert service.store(settings).value("catalog") == current  # clients keep the working credential
            pending = service.store(settings).value("catalog", PENDING)
            place_order(deployment, standby)  # the shop's catalog reads in the lagging region still log in
        finally:
            conn.execute("select pg_wal_replay_resume()")
    resumed = eventually(lambda: _rotated(gdbs), timeout_s=60, interval_s=1)
    assert resumed.resumed and resumed.username == pending["username"]
    assert service.store(settings).value("catalog") == pending


def _rotated(gdbs: Any) -> Any:
    try:
        return service.rotate_database(gdbs, "catalog", test_timeout_s=5)
    except RotationIncomplete as exc:
        raise AssertionError(str(exc)) from None


def test_up_replaces_a_credential_the_database_no_longer_accepts(deployment: RunningDeployment) -> None:
    settings, gdbs = deployment.settings, deployment.gdbs
    assert service.ensure(gdbs) == []  # all good: nothing rotated
    lost = service.store(settings).value("orders")
    with superuser(deployment, "orders") as conn:  # as if the database had been recreated under kept secrets
        conn.execute(f"alter role {lost['username']} password null")
    done = service.ensure(gdbs)
    assert [r.secret for r in done] == ["orders"] and done[0].previous_username == lost["username"]
    place_order(deployment, settings.primary_region)
