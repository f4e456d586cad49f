"""The reconciliation's RDS calls against moto, where moto implements them (snapshots, restores, instances,
deletes): a second, independent reading of the same API, stricter than ours in places (it found that snapshot
listings take a cluster identifier, not its ARN). moto has no global cluster failover, so the failover itself is
recorded here as the provider records it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from regionctl.providers.aws.aurora import AuroraDatabases
from regionctl.providers.aws.reconcile import AuroraReconciler
from regionctl.providers.aws.records import Promotion, now_iso
from tests.support.aws_world import AwsWorld
from tests.unit.aws.test_reconcile_aws import RecordingCompare

EAST, WEST = "us-east-1", "us-west-2"


@pytest.fixture
def moto_rds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield


def moto_factory(service: str, region: str, endpoint_url: str | None = None, attempts: int = 3) -> Any:
    del endpoint_url, attempts
    return boto3.client(service, region_name=region)


def deploy(world: AwsWorld) -> None:
    """The two orders clusters and their global cluster, as the reference's stacks create them (in moto)."""
    for region in (EAST, WEST):
        boto3.client("rds", region_name=region).create_db_cluster(
            DBClusterIdentifier=world.cluster_arn("orders", region).rsplit(":", 1)[-1], Engine="aurora-postgresql",
            MasterUsername="postgres", MasterUserPassword="not-a-real-password-1")
    boto3.client("rds", region_name=EAST).create_global_cluster(
        GlobalClusterIdentifier=world.global_id("orders"), SourceDBClusterIdentifier=world.cluster_arn("orders", EAST))


def test_the_report_restores_auroras_failover_snapshot_and_deletes_the_copy(moto_rds: None, tmp_path: Path) -> None:
    world = AwsWorld(databases=("orders",))
    deploy(world)
    settings = world.settings(tmp_path, databases={
        "orders": {"global_cluster_id": world.global_id("orders"),
                   "clusters": {r: world.cluster_arn("orders", r) for r in (EAST, WEST)},
                   "dsn": {WEST: "service=orders-us-west-2"}},
        "catalog": {"global_cluster_id": "catalog-global", "clusters": {
            r: world.cluster_arn("catalog", r) for r in (EAST, WEST)}}})
    dbs = AuroraDatabases(settings, moto_factory, sleep=lambda _: None)
    record = dbs.records.save(Promotion("orders", EAST, WEST, planned=False, requested_at=now_iso()))
    rds = boto3.client("rds", region_name=EAST)
    aurora_snapshot = f"rds:unplanned-global-failover-orders-dbcluster-01-{record.stamp}"
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=aurora_snapshot,
                                   DBClusterIdentifier="orders-dbcluster-01")
    compare = RecordingCompare(tmp_path)
    summary = AuroraReconciler(settings, moto_factory, dbs, compare=compare).report("orders", EAST)

    kept = dbs.records.last("orders")
    assert kept is not None and (kept.preserved_snapshot or "").endswith(aurora_snapshot)  # Aurora's, not a new one
    assert compare.calls[0]["old"].startswith(f"host={summary['throwaway_cluster']}.")  # moto's endpoint for it
    remaining = [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]]
    assert summary["throwaway_cluster"] not in remaining and "orders-dbcluster-01" in remaining
    assert rds.describe_db_instances()["DBInstances"] == []


def test_deleting_a_copy_twice_is_not_an_error(moto_rds: None) -> None:
    from regionctl.providers.aws.restore import Placement, add_instance, delete_restored, restore_cluster

    rds = boto3.client("rds", region_name=EAST)
    rds.create_db_cluster(DBClusterIdentifier="src", Engine="aurora-postgresql", MasterUsername="postgres",
                          MasterUserPassword="not-a-real-password-1")
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="snap-1", DBClusterIdentifier="src")
    restore_cluster(rds, "copy-1", Placement(), snapshot="snap-1")
    assert restore_cluster(rds, "copy-1", Placement(), snapshot="snap-1")["DBClusterIdentifier"] == "copy-1"
    instance = add_instance(rds, "copy-1", "db.serverless")
    assert sorted(delete_restored(rds, "copy-1", instance)) == ["copy-1", "copy-1-1"]
    assert delete_restored(rds, "copy-1", instance) == []

