"""Reconciliation when the old writer's disk is gone: the last snapshot plus the archived WAL, restored to the end
of the old timeline, still names every lost transaction whose WAL was archived and shipped."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg
import pytest

from regionctl.globaldb.restore import list_restores
from regionctl.globaldb.snapshots import ship_archive
from regionctl.reconcile import service
from regionctl.reconcile.model import INSERT
from regionctl.runtime.network import deployment_network
from tests.support.deploy import RunningDeployment
from tests.support.orders_workload import OrdersWorkload

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"
S = "recon_rs"


def wait_healthy(deployment: RunningDeployment, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not deployment.gdbs.status("orders").healthy and time.monotonic() < deadline:
        time.sleep(0.2)
    assert deployment.gdbs.status("orders").healthy, deployment.gdbs.status("orders").problems


def archive_current_segment(dsn: str, timeout: float = 30.0) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        segment = conn.execute("select pg_walfile_name(pg_switch_wal())").fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = conn.execute("select last_archived_wal from pg_stat_archiver").fetchone()[0]  # type: ignore[index]
            if last is not None and last[:24] >= segment:
                return
            time.sleep(0.05)
    raise AssertionError(f"{segment} was not archived")


def test_a_lost_disk_is_reconciled_from_the_snapshot_and_the_archived_wal(deployment: RunningDeployment) -> None:
    gdbs, topo = deployment.gdbs, deployment.topo
    cluster = gdbs.cluster("orders")
    wait_healthy(deployment)
    east, west = cluster.member(EAST), cluster.member(WEST)
    workload = OrdersWorkload(east.conninfo("orders"), schema=S, seed=5)
    workload.create_schema()
    workload.run_some(40)
    gdbs.snapshot("orders")
    workload.run_some(20)
    cluster.wait_replayed(WEST, int(east.scalar("select pg_current_wal_lsn() - '0/0'", dbname="orders")))
    deployment.link.partition("both")
    try:
        workload.run_some(50)  # acknowledged by the old writer only
        archive_current_segment(east.conninfo("orders"))
        gdbs.failover("orders", WEST)
    finally:
        deployment.link.heal("both")
    ship_archive(cluster, EAST, WEST)  # the region came back long enough for archive shipping, then lost its disk
    boundary = int(west.scalar(f"select max(seq) from {S}.order_event", dbname="orders"))
    lost = {a.seq for a in workload.acked if a.seq > boundary}
    assert len(lost) == 50

    # The old region's disk is gone: its data directory, WAL archive and snapshots.
    aside = Path(str(topo.paths.region(EAST)) + ".lost")
    gone = [topo.paths.pgdata(EAST, "orders"), topo.paths.archive(EAST, "orders"), topo.paths.snapshots(EAST, "orders")]
    aside.mkdir()
    for n, path in enumerate(gone):
        path.rename(aside / str(n))
    try:
        report = service.report(topo, deployment_network(topo), "orders", EAST)
    finally:
        for n, path in enumerate(gone):
            (aside / str(n)).rename(path)
        shutil.rmtree(aside)

    assert report.source["kind"] == "snapshot_restore" and not report.complete
    assert report.method == "wal", report.method_trail
    assert report.method_trail[0].startswith("slot: the copy has no slot")
    assert any("disk is gone" in w for w in report.warnings)
    found = {int(ch.key["seq"]) for tx in report.transactions for ch in tx.changes
             if ch.table == f"{S}.order_event" and ch.kind == INSERT}
    assert found == lost
    assert len(report.transactions) == len(lost)
    assert report.source["name"] not in {r["id"] for r in list_restores(cluster)}  # dropped after the report

    gdbs.rebuild("orders", EAST)
    gdbs.switchover("orders", EAST)
    wait_healthy(deployment)
    with psycopg.connect(cluster.member(EAST).conninfo("orders"), autocommit=True) as conn:
        conn.execute(f"drop schema {S} cascade")
