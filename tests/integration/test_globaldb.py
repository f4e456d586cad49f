"""The global database on real PostgreSQL through the link emulator: switchover, failover, rebuild, restore."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest

from regionctl.errors import ConflictError, InputError
from regionctl.globaldb import lease
from regionctl.globaldb.endpoints import writer_dsn
from regionctl.reconcile.capture import from_copy
from tests.support.deploy import RunningDeployment
from tests.support.workload import AckingWriter

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"


def ids_on(dsn: str, table: str) -> set[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {row[0] for row in conn.execute(f"select id from {table}")}


def wait_healthy(deployment: RunningDeployment, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    status = deployment.gdbs.status(name)
    while not status.healthy and time.monotonic() < deadline:
        time.sleep(0.2)
        status = deployment.gdbs.status(name)
    assert status.healthy, status.problems


def test_up_creates_a_writer_in_the_primary_region_and_a_streaming_standby(deployment: RunningDeployment) -> None:
    for name in ("orders", "catalog"):
        wait_healthy(deployment, name)
        status = deployment.gdbs.status(name)
        assert status.member(EAST).role == "writer"
        assert status.member(WEST).role == "standby" and status.member(WEST).streaming
        assert status.recon_slot and status.recon_slot["exists"]


def test_standby_replicates_through_the_link(deployment: RunningDeployment) -> None:
    routes = {r.route.name: r for r in deployment.link.status().routes}
    route = routes[f"{WEST}/{EAST}/pg/orders"]
    assert (route.route.target_host, route.route.target_port) == deployment.topo.pg_address(EAST, "orders")
    assert route.connections_open >= 1


def test_switchover_under_a_running_writer_loses_no_acknowledged_row(deployment: RunningDeployment) -> None:
    cluster = deployment.gdbs.cluster("orders")
    writer = AckingWriter(writer_dsn(cluster, EAST), "drill_switchover")
    writer.create_table()
    writer.start()
    writer.wait_for(200)
    result = deployment.gdbs.switchover("orders", WEST)
    writer.wait_for(200)
    back = deployment.gdbs.switchover("orders", EAST)
    writer.wait_for(100)
    acked = writer.stop()

    assert result.replayed_everything and result.old_writer_streaming
    assert back.replayed_everything and back.new_timeline == result.new_timeline + 1
    assert set(acked) <= ids_on(writer_dsn(cluster, EAST), "drill_switchover")
    assert "no committed transaction was lost" in result.reason
    wait_healthy(deployment, "orders")


def test_bad_input_is_refused_and_changes_nothing(deployment: RunningDeployment) -> None:
    gdbs = deployment.gdbs
    before = gdbs.state("orders")
    with pytest.raises(InputError, match="unknown region 'mars-1'"):
        gdbs.switchover("orders", "mars-1")
    with pytest.raises(ConflictError, match="already in us-east-1"):
        gdbs.switchover("orders", EAST)
    with pytest.raises(ConflictError, match="already in us-east-1"):
        gdbs.failover("orders", EAST)
    with pytest.raises(InputError, match="unknown global database 'payments'"):
        gdbs.status("payments")
    assert gdbs.state("orders") == before


def test_failover_during_a_partition_keeps_lost_rows_in_the_preserved_copy_only(
    deployment: RunningDeployment,
) -> None:
    gdbs = deployment.gdbs
    cluster = gdbs.cluster("orders")
    east = cluster.member(EAST)
    writer = AckingWriter(east.conninfo("orders"), "drill_failover", stop_on_error=True)
    writer.create_table()
    writer.start()
    writer.wait_for(100)
    deployment.link.partition("both")
    try:
        writer.wait_for(300)  # acknowledged by the writer, never shipped to the standby
        result = gdbs.failover("orders", WEST)
    finally:
        deployment.link.heal("both")
    acked = set(writer.stop())

    on_new_writer = ids_on(cluster.member(WEST).conninfo("orders"), "drill_failover")
    lost = acked - on_new_writer
    assert result.fenced and result.divergence_lsn != "unknown"
    assert result.new_timeline == (result.old_timeline or 0) + 1
    assert len(lost) >= 300, f"expected the partitioned writes to be lost, lost {len(lost)}"
    assert gdbs.state("orders").diverged == (EAST,)

    copy = gdbs.preserve("orders", EAST)
    assert gdbs.preserve("orders", EAST) == copy  # idempotent
    source = from_copy(cluster, copy)
    recon = source.instance
    try:
        assert lost <= ids_on(recon.conninfo("orders"), "drill_failover")
        assert recon.scalar("show archive_mode") == "off"
    finally:
        source.drop()

    rebuilt = gdbs.rebuild("orders", EAST)
    assert rebuilt.preserved_copy == copy.name and rebuilt.method in ("rewind", "base_backup")
    status = gdbs.status("orders")
    assert status.member(EAST).role == "standby" and status.member(EAST).streaming
    assert status.member(EAST).timeline == status.member(WEST).timeline == result.new_timeline
    assert lost.isdisjoint(ids_on(cluster.member(EAST).conninfo("orders"), "drill_failover"))

    gdbs.switchover("orders", EAST)  # leave the deployment as the other tests expect it
    wait_healthy(deployment, "orders")


def test_restore_to_a_time_holds_exactly_the_rows_committed_before_it(deployment: RunningDeployment) -> None:
    gdbs = deployment.gdbs
    cluster = gdbs.cluster("catalog")
    dsn = writer_dsn(cluster, EAST)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table if not exists drill_pitr (id int primary key)")
    snap = gdbs.snapshot("catalog")
    assert set(snap.held_in) == {EAST, WEST}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(1, 51):
            conn.execute("insert into drill_pitr values (%s)", (i,))
        time.sleep(0.2)
        target = datetime.now(UTC)
        time.sleep(0.2)
        for i in range(51, 101):
            conn.execute("insert into drill_pitr values (%s)", (i,))
        lsn_after_all = conn.execute("select pg_current_wal_lsn()::text").fetchone()[0]  # type: ignore[index]

    restored = gdbs.restore("catalog", target_time=target)
    assert restored.archiving == "off"
    assert ids_on(restored.dsn, "drill_pitr") == set(range(1, 51))

    by_lsn = gdbs.restore("catalog", target_lsn=lsn_after_all, region=WEST)
    assert ids_on(by_lsn.dsn, "drill_pitr") == set(range(1, 101))
    latest = gdbs.restore("catalog", target_time=datetime.now(UTC))  # no commit after it yet: restore adds one
    assert ids_on(latest.dsn, "drill_pitr") == set(range(1, 101))

    with pytest.raises(InputError, match="before the first snapshot"):
        gdbs.restore("catalog", target_time=datetime(2000, 1, 1, tzinfo=UTC))
    with pytest.raises(InputError, match="exactly one of"):
        gdbs.restore("catalog")
    from regionctl.globaldb.restore import drop_restore, list_restores

    assert {r["id"] for r in list_restores(cluster)} == {restored.id, by_lsn.id, latest.id}
    for item in (restored, by_lsn, latest):
        drop_restore(cluster, item.id)
    assert list_restores(cluster) == []


def test_a_failover_that_cannot_know_the_old_writer_is_fenced_promotes_nothing(
        deployment: RunningDeployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """The global plane cannot reach us-east-1, but us-east-1 still reaches us-west-2, so its etcd member keeps a
    majority and its writer keeps renewing: no fence can be known, so nothing is promoted and the intent is
    taken back."""
    gdbs = deployment.gdbs
    before = gdbs.state("orders")
    ttl = deployment.settings.leases.ttl_s
    monkeypatch.setattr(lease, "expiry_wait_s", lambda _ttl: ttl + 3)  # still longer than a renewed lease lives
    deployment.link.partition("us-east-1<->global")
    try:
        with pytest.raises(ConflictError, match="aborted, nothing was promoted.*did not expire"):
            gdbs.failover("orders", WEST)
    finally:
        deployment.link.heal()
    after = gdbs.state("orders")
    assert (after.writer, after.diverged, after.in_progress) == (EAST, before.diverged, None)
    assert after.history[-1].details.get("aborted")
    wait_healthy(deployment, "orders")  # the old writer kept its role throughout: healthy once reachable again
    status = gdbs.status("orders")
    assert status.member(EAST).role == "writer" and status.member(WEST).role == "standby"
