"""The reconciliation on Aurora against the simulated AWS: the old writer's kept snapshot restored as a throwaway
cluster, the report made from two connection strings, the cluster deleted afterwards, whatever happened."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from regionctl.errors import ConflictError, DatabaseError
from regionctl.providers.aws.aurora import AuroraDatabases
from regionctl.providers.aws.reconcile import AuroraReconciler
from regionctl.reconcile.store import ReportStore
from tests.support.aws_world import AwsWorld
from tests.unit.reconcile.test_report_store import report as sample_report

EAST, WEST = "us-east-1", "us-west-2"


@dataclasses.dataclass
class RecordingCompare:
    """Stands in for ``reconcile.external.compare`` (tested on real PostgreSQL elsewhere): stores a report."""

    root: Path
    fail_with: Exception | None = None
    calls: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def __call__(self, old_dsn: str, new_dsn: str, database: str, root: Path, **kwargs: Any) -> Any:
        self.calls.append({"old": old_dsn, "new": new_dsn, "database": database, **kwargs})
        if self.fail_with is not None:
            raise self.fail_with
        old, new = kwargs["sides"]
        made = dataclasses.replace(sample_report(), id=f"report-{database}-{len(self.calls)}", database=database,
                                   former_writer=old, new_writer=new)
        ReportStore(root).save(made)
        return made


def failed_over(tmp_path: Path, world: AwsWorld, compare: RecordingCompare) -> AuroraReconciler:
    settings = world.settings(tmp_path)
    dbs = AuroraDatabases(settings, world.factory, sleep=lambda _: None)
    dbs.failover("orders", WEST)
    return AuroraReconciler(settings, world.factory, dbs, compare=compare)


def test_the_report_reads_a_throwaway_restore_of_the_kept_copy_and_deletes_it(tmp_path: Path) -> None:
    world = AwsWorld()
    compare = RecordingCompare(tmp_path)
    reconciler = failed_over(tmp_path, world, compare)
    summary = reconciler.report("orders", EAST)
    restore = world.requests("RestoreDBClusterFromSnapshot")
    assert len(restore) == 1 and restore[0]["DBSubnetGroupName"] == "recon-subnets"
    assert restore[0]["SnapshotIdentifier"].endswith(reconciler.databases.records.last("orders").stamp)  # type: ignore[union-attr]
    call = compare.calls[0]
    assert call["old"].startswith(f"host={summary['throwaway_cluster']}.cluster-x.{EAST}.rds port=5432 dbname=orders")
    assert call["new"] == f"service=orders-{WEST}" and call["sides"] == (EAST, WEST)
    assert summary["former_writer"] == EAST and summary["new_writer"] == WEST
    assert sorted(summary["deleted"]) == sorted([summary["throwaway_cluster"], f"{summary['throwaway_cluster']}-1"])
    assert world.restored_clusters() == [] and world.instances == {}


def test_the_throwaway_cluster_is_deleted_even_when_the_report_fails(tmp_path: Path) -> None:
    world = AwsWorld()
    reconciler = failed_over(tmp_path, world, RecordingCompare(tmp_path, DatabaseError("connection refused")))
    with pytest.raises(DatabaseError, match="connection refused"):
        reconciler.report("orders", EAST)
    assert world.count("RestoreDBClusterFromSnapshot") == 1 and world.count("DeleteDBCluster") == 1
    assert world.restored_clusters() == [] and world.instances == {}


def test_a_report_asked_again_is_the_stored_one_and_restores_nothing_more(tmp_path: Path) -> None:
    world = AwsWorld()
    compare = RecordingCompare(tmp_path)
    reconciler = failed_over(tmp_path, world, compare)
    first = reconciler.report("orders", EAST)
    again = reconciler.report("orders", EAST)
    assert again["report_id"] == first["report_id"] and len(compare.calls) == 1
    assert world.count("RestoreDBClusterFromSnapshot") == 1


def test_after_a_switchover_there_is_nothing_to_report(tmp_path: Path) -> None:
    world = AwsWorld()
    settings = world.settings(tmp_path)
    dbs = AuroraDatabases(settings, world.factory, sleep=lambda _: None)
    dbs.switchover("orders", WEST)
    with pytest.raises(ConflictError, match="a switchover loses nothing"):
        AuroraReconciler(settings, world.factory, dbs, compare=RecordingCompare(tmp_path)).report("orders", EAST)
    assert world.count("RestoreDBClusterFromSnapshot") == 0


def test_a_report_while_the_old_region_does_not_answer_is_pending_not_done(tmp_path: Path) -> None:
    from regionctl.errors import Pending

    world = AwsWorld()
    reconciler = failed_over(tmp_path, world, RecordingCompare(tmp_path))
    world.down_regions.add(EAST)
    with pytest.raises(Pending, match="cannot be reached"):
        reconciler.report("orders", EAST)
    assert world.count("RestoreDBClusterFromSnapshot") == 0


def test_replay_goes_to_the_new_writer_named_by_the_report(tmp_path: Path) -> None:
    world = AwsWorld()
    reconciler = failed_over(tmp_path, world, RecordingCompare(tmp_path))
    summary = reconciler.report("orders", EAST)
    replays: list[tuple[Any, ...]] = []
    reconciler.replay_to = lambda *args, **kwargs: replays.append(args) or {"applied": []}
    reconciler.replay(summary["report_id"], "alice")
    assert replays[0][0] == f"service=orders-{WEST}" and replays[0][2:] == (summary["report_id"], "alice")
