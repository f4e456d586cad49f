"""Region drills with the bundled runbooks on the running deployment, shoppers buying through the global entry.

The failover drill: us-east-1 is cut off from us-west-2 (it keeps taking orders that never reach us-west-2), an
operator starts an ungraceful RegionFailover with the CLI, naming an approver, and the runbook engine is killed
while it promotes the orders database. The runbook reports what was lost and waits; the approver approves the
replay with the CLI. The failback drill: the link is back, the operator starts Failback, and the engine is
killed while it switches the orders database back. Every acknowledged order is compared with the databases.

Both drills share one deployment with the rest of the suite, so the module leaves it as it found it: writers in
us-east-1, both routing controls On, both standbys streaming.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from regionctl.shop.loadgen import Ack
from tests.support.deploy import RunningDeployment
from tests.support.drills import (
    Shoppers,
    history_kinds,
    kill_engine_while_promoting,
    leave_healthy,
    lost_orders_in_report,
    operator_token,
    orders_held_in,
    promotions,
    regionctl,
    routing_controls,
    start_runbook,
    started,
    step_outputs,
    wait_settled,
    writer_region,
)

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"
DATABASES = ("orders", "catalog")
APPROVER = "drill-lead"


@dataclass(frozen=True)
class Awaiting:
    """What the runbook showed while it waited for the approver."""

    report_id: str
    lost_orders_in_report: set[str]
    on_new_writer: set[str]


@dataclass(frozen=True)
class Drill:
    execution: dict[str, Any]
    acks: list[Ack]
    cut_off_at: float | None
    awaiting: Awaiting | None
    started_at: float
    ended_at: float
    killed_pid: int
    promotions_before: dict[str, list[tuple[str, str, str]]]
    journal: list[str]

    def acked_after_the_runbook(self) -> list[Ack]:
        return [a for a in self.acks if started(a) > self.ended_at]

    def new_promotions(self, deployment: RunningDeployment, database: str) -> list[tuple[str, str, str]]:
        before = self.promotions_before[database]
        after = promotions(deployment, database)
        assert after[: len(before)] == before
        return after[len(before):]


def run_drill(deployment: RunningDeployment, shoppers: Shoppers, cut_off_at: float | None, runbook: str,
              **params: str) -> Drill:
    """Start ``runbook`` with the CLI, kill the engine while it promotes the orders database; approve the replay
    of what was lost when the runbook asks (looking at the report first)."""
    before = {name: promotions(deployment, name) for name in DATABASES}
    started = time.time()
    execution_id = start_runbook(deployment, runbook, **params)
    killed = kill_engine_while_promoting(deployment, "orders")
    view = wait_settled(deployment, execution_id)
    awaiting = None
    if view["waiting"]:
        report_id = step_outputs(view, "ReportOrders")["report_id"]
        awaiting = Awaiting(report_id, lost_orders_in_report(deployment, report_id), orders_held_in(deployment, WEST))
        regionctl(deployment, "runbook", "approve", execution_id, "-m", "replay what was lost",
                  token=operator_token(deployment, APPROVER, "approver"))  # the approver is whoever calls
        view = wait_settled(deployment, execution_id)
    ended = time.time()
    if view["status"] == "succeeded":
        shoppers.wait_for_orders(3, after=ended)
    return Drill(view, shoppers.stop(), cut_off_at, awaiting, started, ended, killed, before,
                 history_kinds(deployment, execution_id))


@pytest.fixture(scope="module")
def home(deployment: RunningDeployment) -> Iterator[None]:
    """Whatever happens in the drills, hand the deployment back healthy."""
    yield
    leave_healthy(deployment, EAST)


@pytest.fixture(scope="module")
def failover_drill(deployment: RunningDeployment, home: None, tmp_path_factory: pytest.TempPathFactory) -> Drill:
    shoppers = Shoppers.through_the_global_entry(deployment, tmp_path_factory.mktemp("failover") / "acks.jsonl")
    shoppers.start().wait_for_orders(3)
    deployment.link.partition("both")  # us-east-1 keeps selling; its orders no longer reach us-west-2
    cut_off_at = time.time()
    try:
        shoppers.wait_for_orders(2, after=cut_off_at)
        return run_drill(deployment, shoppers, cut_off_at, "RegionFailover", region=EAST, mode="ungraceful",
                         approver=APPROVER)
    finally:
        shoppers.stop()
        deployment.link.heal("both")


@pytest.fixture(scope="module")
def failback_drill(deployment: RunningDeployment, failover_drill: Drill, tmp_path_factory: pytest.TempPathFactory,
                   ) -> Drill:
    shoppers = Shoppers.through_the_global_entry(deployment, tmp_path_factory.mktemp("failback") / "acks.jsonl")
    shoppers.start().wait_for_orders(3)
    try:
        return run_drill(deployment, shoppers, None, "Failback", region=EAST)
    finally:
        shoppers.stop()


# --- RegionFailover, ungraceful, us-east-1 -> us-west-2 -----------------------------------------------------------


def test_the_writers_are_in_us_west_2_after_the_failover_runbook(
    deployment: RunningDeployment, failover_drill: Drill,
) -> None:
    assert failover_drill.execution["status"] == "succeeded", failover_drill.execution["error"]
    assert failover_drill.execution["outputs"] == {"mode": "ungraceful", "writer": WEST}
    for name in DATABASES:
        assert writer_region(deployment, name) == WEST
        assert deployment.gdbs.state(name).diverged == (EAST,)
    assert routing_controls(deployment)[EAST] == "Off"


def test_the_shop_takes_orders_on_the_us_west_2_writer_through_the_global_entry_after_the_failover(
    deployment: RunningDeployment, failover_drill: Drill,
) -> None:
    after = failover_drill.acked_after_the_runbook()
    assert len(after) >= 3
    assert {a.region for a in after} == {WEST}
    assert {a.order_id for a in after} <= orders_held_in(deployment, WEST)
    view = failover_drill.execution
    promoting = min(run["started_at"] for top in view["steps"] for run in (top, *top["parallel"])
                    if run["step"] == "FailoverOrders")
    # the cut-off writer kept taking the probe's orders before the failover; those do not count as recovery
    assert view["recovery_s"] is not None and view["recovery_s"] >= promoting - view["started_at"]


def test_every_acknowledged_order_is_on_the_new_writer_or_in_the_missing_transaction_report(
    failover_drill: Drill,
) -> None:
    awaiting = failover_drill.awaiting
    assert awaiting is not None, "the runbook never asked for the approval of a replay"
    acked = {a.order_id for a in failover_drill.acks if a.ts < failover_drill.started_at}
    assert acked <= awaiting.on_new_writer | awaiting.lost_orders_in_report
    assert awaiting.lost_orders_in_report.isdisjoint(awaiting.on_new_writer)
    sold_while_cut_off = {a.order_id for a in failover_drill.acks
                          if started(a) > (failover_drill.cut_off_at or 0) and a.ts < failover_drill.started_at}
    assert sold_while_cut_off and sold_while_cut_off <= awaiting.lost_orders_in_report


def test_the_approved_replay_puts_every_acknowledged_order_on_the_new_writer(
    deployment: RunningDeployment, failover_drill: Drill,
) -> None:
    assert failover_drill.awaiting is not None
    replayed = step_outputs(failover_drill.execution, "ReplayOrders")
    assert replayed["applied"]  # conflicting ones (a sales counter both sides changed) may be refused
    assert {a.order_id for a in failover_drill.acks} <= orders_held_in(deployment, WEST)


def test_a_killed_engine_finishes_the_failover_with_one_promotion_per_database(
    deployment: RunningDeployment, failover_drill: Drill,
) -> None:
    assert "execution.resumed" in failover_drill.journal
    for name in DATABASES:
        assert failover_drill.new_promotions(deployment, name) == [("failover", EAST, WEST)]
        assert deployment.gdbs.state(name).interrupted() is None


# --- Failback to us-east-1 ----------------------------------------------------------------------------------------


def test_failback_returns_both_writers_to_us_east_1_and_puts_it_back_in_service(
    deployment: RunningDeployment, failback_drill: Drill,
) -> None:
    assert failback_drill.execution["status"] == "succeeded", failback_drill.execution["error"]
    for name in DATABASES:
        status = deployment.gdbs.status(name)
        assert status.member(EAST).role == "writer"
        assert status.member(WEST).role == "standby" and status.member(WEST).streaming
    controls = routing_controls(deployment)
    assert controls[EAST] == controls[WEST] == "On"


def test_failback_loses_no_acknowledged_order(deployment: RunningDeployment, failover_drill: Drill,
                                              failback_drill: Drill) -> None:
    on_writer = orders_held_in(deployment, EAST)
    assert failback_drill.acks and {a.order_id for a in failback_drill.acks} <= on_writer
    taken_in_us_west_2 = {a.order_id for a in failover_drill.acked_after_the_runbook()}
    assert taken_in_us_west_2 <= on_writer
    assert failback_drill.acked_after_the_runbook()


def test_a_killed_engine_finishes_the_failback_with_one_promotion_per_database(
    deployment: RunningDeployment, failback_drill: Drill,
) -> None:
    assert "execution.resumed" in failback_drill.journal
    for name in DATABASES:
        assert failback_drill.new_promotions(deployment, name) == [("switchover", WEST, EAST)]
        assert deployment.gdbs.state(name).interrupted() is None
