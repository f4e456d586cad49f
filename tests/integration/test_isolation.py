"""The isolation drill: us-east-1 cut off from us-west-2 and from the global plane while its own shoppers keep
buying through its own ui and a client in us-east-1 writes straight to the local writer. The old writer cannot
renew its lease, so it fences itself before the lease can expire; RegionFailover (no override) takes the lease
once it expired and promotes us-west-2. Measured from the clients' own logs: the last commit the old writer
acknowledged comes before the new writer's first. After heal every acknowledged write is on the new writer or
in the report. The isolated region's agent is SIGKILLed as the isolation starts, so the fence cannot be its.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from regionctl.reconcile import service
from regionctl.shop.loadgen import Ack
from tests.support.deploy import RunningDeployment
from tests.support.drills import (
    Shoppers,
    leave_healthy,
    lost_orders_in_report,
    orders_held_in,
    promotions,
    regionctl,
    start_runbook,
    started,
    step_outputs,
    wait_for,
    wait_settled,
)
from tests.support.workload import AckingWriter

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"
TABLE = "drill_isolation"


SALES_VS_ITEMS = """
select coalesce(s.product_id, i.product_id) as product_id, s.orders, s.quantity, s.revenue,
       i.orders as item_orders, i.quantity as item_quantity, i.revenue as item_revenue
from product_sales s full join (
    select product_id, count(*) as orders, sum(quantity) as quantity, sum(total_cost) as revenue
    from customer_order_item group by product_id) i on i.product_id = s.product_id
where s.product_id is null or i.product_id is null or (s.orders, s.quantity, s.revenue)
      is distinct from (i.orders, i.quantity, i.revenue)
"""


def sales_drift(deployment: RunningDeployment) -> list[dict[str, object]]:
    """The products whose sales projection differs from the sums over their order items, on the writer. Earlier
    tests on the shared deployment may have left some (a test that deletes an order by hand): the drill and its
    replay must add none."""
    writer = deployment.gdbs.cluster("orders").member(deployment.gdbs.state("orders").writer)
    return sorted(writer.query(SALES_VS_ITEMS, dbname="orders"), key=lambda r: str(r["product_id"]))


@dataclass(frozen=True)
class Drill:
    status_during: dict[str, str]  # region -> role of the orders member, as `db status` showed it
    execution: dict[str, object]
    east_acks: list[Ack]  # us-east-1's own shoppers
    west_acks: list[Ack]  # us-west-2's shoppers
    direct_ids: list[int]  # the client writing straight to us-east-1's writer
    direct_at: list[float]
    isolated_at: float
    healed_at: float
    report_id: str
    new_promotions: list[tuple[str, str, str]]
    sales_drift_before: list[dict[str, object]]  # products whose sales differed from their items already

    def old_writer_acks(self) -> list[float]:
        """When the old writer acknowledged each commit: every direct write, and the us-east-1 purchases made
        while the region was cut off (its orders service writes to its local writer first)."""
        shop = [a.ts for a in self.east_acks if self.isolated_at <= started(a) and a.ts < self.healed_at]
        return sorted(self.direct_at + shop)

    def new_writer_first_ack(self) -> float:
        """us-west-2's shoppers could only reach the new writer once it was promoted (the old one was cut off)."""
        return min(a.ts for a in self.west_acks if started(a) > self.isolated_at)


def run_drill(deployment: RunningDeployment, tmp: Path, kill_agent: bool) -> Drill:
    east_host, east_port = deployment.topo.pg_address(EAST, "orders")
    direct = AckingWriter(f"host={east_host} port={east_port} user=postgres dbname=orders "
                          f"passfile={deployment.topo.login.passfile}", TABLE)
    direct.create_table()
    east = Shoppers(deployment.ui(EAST), tmp / "east.jsonl", rate=3.0)
    west = Shoppers(deployment.ui(WEST), tmp / "west.jsonl", rate=3.0)
    before = {name: len(promotions(deployment, name)) for name in ("orders", "catalog")}
    drift = sales_drift(deployment)
    for client in (direct, east, west):
        client.start()
    east.wait_for_orders(3)
    west.wait_for_orders(3)
    deployment.link.isolate(EAST)
    isolated_at = time.time()
    try:
        if kill_agent:
            os.kill(deployment.pids()[f"{EAST}/agent"], signal.SIGKILL)
        status = regionctl(deployment, "db", "status", "orders")[0]
        execution_id = start_runbook(deployment, "RegionFailover", region=EAST, mode="ungraceful")
        view = wait_settled(deployment, execution_id)
        west.wait_for_orders(3, after=time.time())  # the shop sells on the new writer
    finally:
        deployment.link.heal()
    healed_at = time.time()
    try:  # the killed agent is restarted by the supervisor; the report needs it (the copy is on its host)
        wait_for(lambda: bool(deployment.gdbs.agents.view(EAST)["reachable"]), 60, "us-east-1's agent back")
        report = regionctl(deployment, "reconcile", "report", "orders", "--region", EAST)
    finally:
        direct.stop()
    return Drill({m["region"]: m["role"] for m in status["members"]}, view, east.stop(), west.stop(),
                 list(direct.acked), list(direct.acked_at), isolated_at, healed_at, str(report["report_id"]),
                 [p for name in ("orders", "catalog") for p in promotions(deployment, name)[before[name]:]],
                 drift)


@pytest.fixture(scope="module")
def drill(deployment: RunningDeployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drill]:
    """With the isolated region's agent SIGKILLed as the isolation starts: the fence must not need it (with the
    agent alive the same fencer stops the writer: the agent cannot renew either way)."""
    try:
        yield run_drill(deployment, tmp_path_factory.mktemp("isolation"), kill_agent=True)
    finally:
        leave_healthy(deployment, EAST)
        wait_for(lambda: deployment.gdbs.status("orders").healthy, 60, "orders healthy again")


def test_db_status_marks_the_isolated_region_unreachable_never_stopped(drill: Drill) -> None:
    assert drill.status_during == {EAST: "unreachable", WEST: "standby"}


def test_region_failover_succeeds_without_any_override_with_one_promotion_per_database(drill: Drill) -> None:
    assert drill.execution["status"] == "succeeded", drill.execution.get("error")
    assert drill.new_promotions == [("failover", EAST, WEST), ("failover", EAST, WEST)]


def test_the_reports_wait_for_the_region_instead_of_pretending(drill: Drill) -> None:
    outputs = step_outputs(drill.execution, "ReportOrders")  # type: ignore[arg-type]
    assert outputs["pending"] is True and outputs["report_id"] == ""


def test_the_old_writer_acknowledged_its_last_commit_before_the_new_writers_first(drill: Drill,
                                                                                 deployment: RunningDeployment,
                                                                                 ) -> None:
    leases = deployment.settings.leases
    last_old = drill.old_writer_acks()[-1]
    assert last_old < drill.new_writer_first_ack()
    # Nothing after its fence: the deadline is TTL - margin after the last renewal. An isolated etcd leader may
    # still renew for up to an election timeout (1 s) before it steps down; the majority's new leader then
    # restarts every lease's TTL, so expiry comes later still.
    assert last_old <= drill.isolated_at + 1.0 + leases.ttl_s - leases.fence_margin_s + 0.5


def test_every_acknowledged_write_is_on_the_new_writer_or_in_the_report(drill: Drill,
                                                                       deployment: RunningDeployment) -> None:
    report = service.show(deployment.topo, drill.report_id)
    in_report = lost_orders_in_report(deployment, drill.report_id)
    on_writer = orders_held_in(deployment, WEST)
    acked = {a.order_id for a in drill.east_acks + drill.west_acks}
    assert acked <= in_report | on_writer, "an acknowledged order vanished without a trace"
    # A purchase whose answer was lost when its writer was fenced is retried by the shopper with the same key;
    # the new writer then holds it too, and the report marks it a conflict instead of offering to replay it.
    unflagged = {d["id"] for d in report.lenses.get("orders", []) if not d.get("conflict")}
    assert not unflagged & on_writer, "the report offers orders the new writer already holds"
    lost_rows = {int(ch.key["id"]) for tx in report.transactions for ch in tx.changes
                 if ch.table == f"public.{TABLE}"}
    member = deployment.gdbs.cluster("orders").member(WEST)
    kept = {int(r["id"]) for r in member.query(f"select id from {TABLE}", dbname="orders")}
    assert set(drill.direct_ids) <= lost_rows | kept and not lost_rows & kept


def test_a_replay_with_the_shops_default_policies_leaves_the_shop_consistent(drill: Drill,
                                                                           deployment: RunningDeployment) -> None:
    """After the approved replay: every acknowledged order is on the writer, every outbox event was consumed
    exactly once, each product's sales equal the sums over its order items, and a second replay applies
    nothing (the shop's defaults: delta on the sales projection, keep-new on the outbox, the rest manual)."""
    from regionctl.runtime.network import deployment_network

    topo = deployment.topo
    network = deployment_network(topo)
    first = service.replay(topo, network, drill.report_id, "isolation-approver")
    assert first["applied"], first
    acked = {a.order_id for a in drill.east_acks + drill.west_acks}
    assert acked <= orders_held_in(deployment, WEST), "an acknowledged order is not on the writer after replay"
    writer = deployment.gdbs.cluster("orders").member(WEST)
    wait_for(lambda: not writer.scalar("select count(*) from order_outbox where delivered_at is null",
                                       dbname="orders"), 60, "the outbox delivered every event", interval=0.5)
    unconsumed = writer.scalar("select count(*) from order_outbox o where not exists (select 1 from "
                               "order_event_consumed c where c.event_id = o.event_id)", dbname="orders")
    assert unconsumed == 0  # and never twice: order_event_consumed is keyed by the event
    assert sales_drift(deployment) == drill.sales_drift_before
    again = service.replay(topo, network, drill.report_id, "isolation-approver")
    assert again["applied"] == [] and again["changes_applied"] == 0
