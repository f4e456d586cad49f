"""Aurora global database promotions through botocore's Stubber: what is asked, in which order, and when not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regionctl.errors import ConflictError, OperationTimeout
from regionctl.providers.aws.aurora import AuroraDatabases
from regionctl.providers.aws.records import PromotionRecords
from tests.support.aws_world import AwsWorld
from tests.unit.aws.stubbed import StubbedClients, stubbed

EAST, WEST = "us-east-1", "us-west-2"
GLOBAL_ID = "orders-global-db-cluster"


class Crash(BaseException):
    """The engine process dies here."""


@pytest.fixture
def world() -> AwsWorld:
    return AwsWorld()  # names and settings only; the Stubber answers


def described(world: AwsWorld, writer: str, failover: tuple[str, str, str, bool] | None = None,
              members: tuple[str, ...] = (EAST, WEST)) -> dict[str, Any]:
    body: dict[str, Any] = {
        "GlobalClusterIdentifier": GLOBAL_ID, "Engine": "aurora-postgresql", "Status": "available",
        "GlobalClusterMembers": [{"DBClusterArn": world.cluster_arn("orders", r), "IsWriter": r == writer,
                                  "SynchronizationStatus": "connected"} for r in members]}
    if failover is not None:
        status, source, target, data_loss = failover
        body["FailoverState"] = {"Status": status, "FromDbClusterArn": world.cluster_arn("orders", source),
                                 "ToDbClusterArn": world.cluster_arn("orders", target), "IsDataLossAllowed": data_loss}
    return {"GlobalClusters": [body]}


def expect_describe(clients: StubbedClients, answer: dict[str, Any], region: str = EAST) -> None:
    clients.stub("rds", region).add_response("describe_global_clusters", answer, {"GlobalClusterIdentifier": GLOBAL_ID})


def databases(world: AwsWorld, tmp_path: Path, clients: StubbedClients, sleep: Any = None) -> AuroraDatabases:
    """Its clock moves 10 s a look, so no read is answered from the one-second cache of the global cluster."""
    slept: list[float] = []
    ticks = iter(range(0, 10 ** 6, 10))
    dbs = AuroraDatabases(world.settings(tmp_path), clients, PromotionRecords(tmp_path / "records"),
                          sleep=sleep or slept.append, clock=lambda: float(next(ticks)))
    dbs.slept = slept  # type: ignore[attr-defined]
    return dbs


def test_a_switchover_is_asked_once_in_the_target_region_and_waited_for_through_its_states(
        world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        expect_describe(clients, described(world, EAST))
        clients.stub("rds", WEST).add_response("switchover_global_cluster", {}, {
            "GlobalClusterIdentifier": GLOBAL_ID, "TargetDbClusterIdentifier": world.cluster_arn("orders", WEST)})
        expect_describe(clients, described(world, EAST, ("pending", EAST, WEST, False)))
        expect_describe(clients, described(world, EAST, ("failing-over", EAST, WEST, False)))
        expect_describe(clients, described(world, WEST))
        dbs = databases(world, tmp_path, clients)
        result = dbs.switchover("orders", WEST)
    assert result["requested"] and result["writer"] == WEST and result["from_region"] == EAST
    assert len(dbs.slept) == 2  # type: ignore[attr-defined]
    record = dbs.records.last("orders")
    assert record is not None and record.planned and record.diverged_region is None


def test_a_failover_allows_data_loss_and_leaves_the_old_writer_diverged(world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        expect_describe(clients, described(world, EAST))
        clients.stub("rds", WEST).add_response("failover_global_cluster", {}, {
            "GlobalClusterIdentifier": GLOBAL_ID, "TargetDbClusterIdentifier": world.cluster_arn("orders", WEST),
            "AllowDataLoss": True})
        expect_describe(clients, described(world, EAST, ("failing-over", EAST, WEST, True)))
        expect_describe(clients, described(world, WEST, members=(WEST,)))
        expect_describe(clients, described(world, WEST, members=(WEST,)))
        expect_describe(clients, described(world, WEST))
        dbs = databases(world, tmp_path, clients)
        assert dbs.failover("orders", WEST)["requested"]
        assert dbs.status("orders").member(EAST).role == "diverged"  # removed from the global cluster
        assert dbs.status("orders").member(EAST).role == "diverged"  # re-added by Aurora, not yet kept


def test_a_failover_resumed_after_the_engine_died_mid_wait_is_not_asked_for_twice(world: AwsWorld,
                                                                                  tmp_path: Path) -> None:
    def die(_: float) -> None:
        raise Crash

    with stubbed() as clients:
        expect_describe(clients, described(world, EAST))
        clients.stub("rds", WEST).add_response("failover_global_cluster", {}, {
            "GlobalClusterIdentifier": GLOBAL_ID, "TargetDbClusterIdentifier": world.cluster_arn("orders", WEST),
            "AllowDataLoss": True})
        expect_describe(clients, described(world, EAST, ("pending", EAST, WEST, True)))
        with pytest.raises(Crash):
            databases(world, tmp_path, clients, sleep=die).failover("orders", WEST)
        # a new engine process: Aurora is still at it; nothing is requested (none is stubbed: a request would fail)
        expect_describe(clients, described(world, EAST, ("failing-over", EAST, WEST, True)))
        expect_describe(clients, described(world, WEST, members=(WEST,)))
        result = databases(world, tmp_path, clients).failover("orders", WEST)
    assert result["requested"] is False and result["writer"] == WEST
    record = PromotionRecords(tmp_path / "records").last("orders")
    assert record is not None and record.diverged_region == EAST  # the intent written before the first request


def test_nothing_is_asked_when_the_target_already_writes(world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        expect_describe(clients, described(world, WEST))
        result = databases(world, tmp_path, clients).switchover("orders", WEST)
    assert result["requested"] is False and "already writes" in result["reason"]


def test_a_promotion_elsewhere_in_progress_is_refused_without_asking(world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        expect_describe(clients, described(world, WEST, ("failing-over", WEST, EAST, True)))
        with pytest.raises(ConflictError, match="carrying out a promotion of orders to us-east-1"):
            databases(world, tmp_path, clients).switchover("orders", WEST)


def test_a_promotion_that_ends_without_the_new_writer_is_an_error_not_a_success(world: AwsWorld,
                                                                               tmp_path: Path) -> None:
    with stubbed() as clients:
        expect_describe(clients, described(world, EAST))
        clients.stub("rds", WEST).add_response("switchover_global_cluster", {}, {
            "GlobalClusterIdentifier": GLOBAL_ID, "TargetDbClusterIdentifier": world.cluster_arn("orders", WEST)})
        expect_describe(clients, described(world, EAST, ("cancelling", EAST, WEST, False)))
        expect_describe(clients, described(world, EAST))
        with pytest.raises(ConflictError, match="ended without it: the writer is us-east-1"):
            databases(world, tmp_path, clients).switchover("orders", WEST)


def test_a_promotion_still_running_at_the_deadline_times_out_saying_a_rerun_waits(world: AwsWorld,
                                                                                 tmp_path: Path) -> None:
    now = [0.0]

    def tick(seconds: float) -> None:
        now[0] += 1000.0

    with stubbed() as clients:
        expect_describe(clients, described(world, EAST))
        clients.stub("rds", WEST).add_response("switchover_global_cluster", {}, {
            "GlobalClusterIdentifier": GLOBAL_ID, "TargetDbClusterIdentifier": world.cluster_arn("orders", WEST)})
        for _ in range(3):
            expect_describe(clients, described(world, EAST, ("failing-over", EAST, WEST, False)))
        dbs = AuroraDatabases(world.settings(tmp_path), clients, PromotionRecords(tmp_path / "r"), sleep=tick,
                              clock=lambda: now[0])
        with pytest.raises(OperationTimeout, match="running it again waits for it without asking twice"):
            dbs.switchover("orders", WEST)


def test_status_read_twice_within_a_second_asks_aws_once(world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        expect_describe(clients, described(world, EAST))
        clients.stub("cloudwatch", WEST).add_response("get_metric_statistics", {"Datapoints": []}, None)
        dbs = AuroraDatabases(world.settings(tmp_path), clients, PromotionRecords(tmp_path / "r"), clock=lambda: 5.0)
        assert dbs.status("orders").writer == dbs.status("orders").writer == EAST


def test_status_is_read_from_the_other_region_when_one_does_not_answer(world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        clients.stub("rds", EAST).add_client_error("describe_global_clusters", "ServiceUnavailable", "down", 503)
        expect_describe(clients, described(world, EAST), region=WEST)
        clients.stub("cloudwatch", WEST).add_client_error("get_metric_statistics", "Throttling", "slow down", 400)
        status = databases(world, tmp_path, clients).status("orders")
    assert status.writer == EAST and status.member(WEST).streaming and status.member(WEST).lag_ms is None


def test_a_promotion_aurora_refuses_leaves_no_record_of_a_divergence(world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        expect_describe(clients, described(world, EAST))
        clients.stub("rds", WEST).add_client_error("failover_global_cluster", "InvalidGlobalClusterStateFault",
                                                   "the global cluster is being modified", 400)
        dbs = databases(world, tmp_path, clients)
        with pytest.raises(ConflictError, match="Aurora refused the promotion of orders-dbcluster-02"):
            dbs.failover("orders", WEST)
    assert dbs.records.last("orders") is None
