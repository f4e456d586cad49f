"""The deployment's Prometheus, really scraping: every component serving metrics is a target found through the
supervisor (a restarted process is scraped again), the console's charts read it, and the lag alert fires when a
partition leaves a standby behind, then resolves once the link heals."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import httpx
import psycopg
import pytest

from regionctl.observe import prometheus
from regionctl.observe.launch import console_url
from tests.support.deploy import RunningDeployment
from tests.support.drills import wait_for

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"


def api(deployment: RunningDeployment, path: str, **params: Any) -> Any:
    base = prometheus.url(deployment.topo.ports)
    assert base is not None, "Prometheus was not started"
    body = httpx.get(base + path, params=params, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]


def up_targets(deployment: RunningDeployment) -> dict[str, float]:
    result = api(deployment, "/api/v1/query", query='up{job="regionctl"}')["result"]
    return {f"{r['metric']['site']}/{r['metric']['component']}": float(r["value"][1]) for r in result}


def firing(deployment: RunningDeployment, name: str) -> list[dict[str, Any]]:
    return [a for a in api(deployment, "/api/v1/alerts")["alerts"]
            if a["labels"]["alertname"] == name and a["state"] == "firing"]


def test_every_component_serving_metrics_is_scraped_and_a_restarted_one_again(deployment: RunningDeployment) -> None:
    expected = {f"{EAST}/orders", f"{WEST}/ui", "global/console", "global/entry", "global/routing-api",
                "global/dns", f"{EAST}/canaries", f"{WEST}/store-replicator"}
    scraped: set[str] = set()

    def all_up() -> bool:
        scraped.clear()
        scraped.update(k for k, v in up_targets(deployment).items() if v == 1)
        return expected <= scraped

    try:
        wait_for(all_up, 60, "the components scraped", interval=1)
    except AssertionError:
        raise AssertionError(f"not scraped: {sorted(expected - scraped)}; scraped: {sorted(scraped)}") from None
    key = f"{EAST}/carts"
    old = deployment.pids()[key]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: deployment.pids().get(key) not in (None, old), 60, "carts restarted by the supervisor")
    wait_for(lambda: up_targets(deployment).get(key) == 1, 60, "the restarted carts scraped again", interval=1)


def test_the_console_charts_come_from_prometheus(deployment: RunningDeployment) -> None:
    url = console_url(deployment.topo.ports)
    body = httpx.get(f"{url}/api/history", params={"range": "5m"}, timeout=30).json()
    assert body["available"] is True and {c["name"] for c in body["charts"]} >= {"orders", "lag_bytes", "entry"}
    lag = next(c for c in body["charts"] if c["name"] == "lag_bytes")
    assert 'data-series="orders standby in' in lag["svg"]  # a series per standby, read from the console's gauges
    refused = httpx.get(f"{url}/api/history", params={"range": "1y"}, timeout=10)
    assert refused.status_code == 400 and refused.json()["field"] == "range"


def test_the_lag_alert_fires_while_a_partition_leaves_the_standby_behind_and_resolves_after_heal(
        deployment: RunningDeployment) -> None:
    metrics = deployment.settings.metrics
    writer = deployment.gdbs.cluster("orders").member(deployment.gdbs.state("orders").writer)
    deployment.link.partition("both")
    try:
        with psycopg.connect(writer.conninfo("orders"), autocommit=True) as conn:
            conn.execute("create table if not exists alert_ballast (b text)")
            conn.execute("insert into alert_ballast select repeat('x', 1000) from generate_series(1, %s)",
                         (metrics.lag_bytes_above // 500,))  # about twice the threshold in WAL
        behind_at = time.time()
        bound = metrics.for_s + 2 * metrics.scrape_interval_s + 30  # + the console's read and one evaluation
        wait_for(lambda: firing(deployment, "GlobalDatabaseLagBytes"), bound, "the lag alert firing", interval=1)
        fired_after = time.time() - behind_at
        alert = firing(deployment, "GlobalDatabaseLagBytes")[0]
        assert alert["labels"]["database"] == "orders" and alert["labels"]["severity"] == "critical"
        print(f"lag alert fired {fired_after:.1f} s after the standby fell behind (for {metrics.for_s} s, "
              f"scrape {metrics.scrape_interval_s} s)")
    finally:
        deployment.link.heal("both")
        with psycopg.connect(writer.conninfo("orders"), autocommit=True) as conn:
            conn.execute("drop table if exists alert_ballast")
    wait_for(lambda: not firing(deployment, "GlobalDatabaseLagBytes"), 90, "the lag alert resolved", interval=1)
