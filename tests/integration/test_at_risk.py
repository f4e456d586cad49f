"""At risk now: with the standby cut off, `db at-risk` names exactly the transactions a failover right then
loses, and the failover's missing-transaction report then lists the same ones."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from regionctl.reconcile import service
from regionctl.runbooks.launch import engine_url
from regionctl.runtime.network import deployment_network
from regionctl.runtime.secrets import control_token
from tests.support.deploy import RunningDeployment
from tests.support.drills import leave_healthy, regionctl

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"
TABLE = "public.drill_at_risk"
N = 25


def at_risk_over_http(deployment: RunningDeployment, database: str) -> dict[str, Any]:
    """The engine's API serves at-risk too: with the control token only (it names customers' orders)."""
    url = f"{engine_url(deployment.settings)}/reconcile/at-risk"
    assert httpx.get(f"{url}/{database}", timeout=30).status_code == 401
    auth = {"Authorization": f"Bearer {control_token(deployment.settings)}"}
    unknown = httpx.get(f"{url}/nosuchdb", headers=auth, timeout=30)
    assert unknown.status_code == 400 and "unknown global database 'nosuchdb'" in unknown.json()["message"]
    answer = httpx.get(f"{url}/{database}", headers=auth, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_at_risk_lists_exactly_the_transactions_the_failover_then_loses(deployment: RunningDeployment) -> None:
    gdbs, topo = deployment.gdbs, deployment.topo
    cluster = gdbs.cluster("orders")
    east = cluster.member(EAST)
    with psycopg.connect(east.conninfo("orders"), autocommit=True) as conn:
        conn.execute(f"create table if not exists {TABLE} (id int primary key, note text)")
        conn.execute(f"insert into {TABLE} values (0, 'replicated')")
        lsn = conn.execute("select pg_current_wal_lsn() - '0/0'").fetchone()
    cluster.wait_replayed(WEST, int(lsn[0]) if lsn else 0)
    nothing = regionctl(deployment, "db", "at-risk", "orders")
    assert not [tx for tx in nothing["transactions"] if TABLE in tx["tables"]]
    deployment.link.partition("both")  # the standby receives nothing from here on
    try:
        with psycopg.connect(east.conninfo("orders"), autocommit=True) as conn:
            for i in range(1, N + 1):
                conn.execute(f"insert into {TABLE} values (%s, 'at risk')", (i,))
        risk = regionctl(deployment, "db", "at-risk", "orders")
        served = at_risk_over_http(deployment, "orders")
        gdbs.failover("orders", WEST)
    finally:
        deployment.link.heal("both")
    try:
        at_risk = {tx["commit_lsn"] for tx in risk["transactions"] if TABLE in tx["tables"]}
        assert len(at_risk) == N and risk["count"] >= N and risk["window_bytes"] > 0
        assert {tx["commit_lsn"] for tx in served["transactions"] if TABLE in tx["tables"]} == at_risk  # the API
        report = service.report(topo, deployment_network(topo), "orders", EAST)
        lost = {tx.commit_lsn for tx in report.transactions if TABLE in tx.tables}
        assert lost == at_risk
    finally:
        leave_healthy(deployment, EAST)
        with psycopg.connect(east.conninfo("orders"), autocommit=True) as conn:
            conn.execute(f"drop table if exists {TABLE}")  # the workload's tables are all its owner's
