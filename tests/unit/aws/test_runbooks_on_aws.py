"""The bundled RegionFailover and Failback, unchanged, on the AWS provider against the simulated AWS: one
promotion request per database, the old writers' copies kept before Aurora's rebuild counts, the report made from
a throwaway restore that is deleted, routing moved through ARC, and the engine killed mid-failover resumes it
without asking Aurora twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from regionctl.providers.aws.application import RegionReadiness
from regionctl.providers.aws.arc import ArcRouting
from regionctl.providers.aws.aurora import AuroraDatabases
from regionctl.providers.aws.ports import global_write_probe
from regionctl.providers.aws.reconcile import AuroraReconciler
from regionctl.runbooks import journal as J
from regionctl.runbooks.ports import Ports
from tests.support.aws_world import AwsWorld
from tests.unit.aws.test_reconcile_aws import RecordingCompare
from tests.unit.runbooks.harness import Crash, Harness

EAST, WEST = "us-east-1", "us-west-2"


class ReferenceShop:
    """The shop behind the global URL, as far as the probe sees it: it answers from a region ARC leaves On
    (the east first) and names no writer (the reference's shop has no canary order)."""

    def __init__(self, world: AwsWorld) -> None:
        self.world = world

    def __call__(self, url: str, **_: Any) -> httpx.Response:
        serving = next((r for r in self.world.regions if self.world.controls[self.world.control_arn(r)] == "On"), None)
        if serving is None:
            return httpx.Response(503, request=httpx.Request("POST", url))
        return httpx.Response(200, headers={"X-Region": serving}, request=httpx.Request("POST", url))


def aws_ports(world: AwsWorld, root: Path, compare: RecordingCompare) -> Ports:
    settings = world.settings(root)
    databases = AuroraDatabases(settings, world.factory, sleep=lambda _: None)
    assert settings.aws is not None
    routing = ArcRouting(settings, world.factory, readiness=RegionReadiness(settings.aws, world.factory))
    return Ports(databases=databases, routing=routing,
                 reconciler=AuroraReconciler(settings, world.factory, databases, compare=compare),
                 probes={"global_write": global_write_probe(settings, databases, post=ReferenceShop(world))})


@pytest.fixture
def world() -> AwsWorld:
    return AwsWorld()


def harness(tmp_path: Path, world: AwsWorld) -> Harness:
    return Harness(tmp_path, ports=aws_ports(world, tmp_path, RecordingCompare(tmp_path)), with_library=True)


def test_region_failover_then_failback_on_aws(tmp_path: Path, world: AwsWorld) -> None:
    h = harness(tmp_path, world)
    out = h.run("RegionFailover", {"region": EAST})
    assert out.status == J.SUCCEEDED, out.error
    assert {db: world.writer(db) for db in world.databases} == {"orders": WEST, "catalog": WEST}
    assert sorted(p["GlobalClusterIdentifier"] for p in world.requests("FailoverGlobalCluster")) == [
        "catalog-global-db-cluster", "orders-global-db-cluster"]
    assert all(p["AllowDataLoss"] for p in world.requests("FailoverGlobalCluster"))
    assert world.controls[world.control_arn(EAST)] == "Off"
    reports = {r.step: r.outputs for r in h.journal().runs(out.id) if r.step in ("ReportOrders", "ReportCatalog")}
    assert set(reports) == {"ReportOrders", "ReportCatalog"} and all(o["report_id"] for o in reports.values())
    assert world.restored_clusters() == [] and world.instances == {}  # the throwaway copies are gone
    assert out.recovery_seconds is not None

    back = h.run("Failback", {"region": EAST})
    assert back.status == J.SUCCEEDED, back.error
    assert {db: world.writer(db) for db in world.databases} == {"orders": EAST, "catalog": EAST}
    assert len(world.requests("SwitchoverGlobalCluster")) == 2 and len(world.requests("FailoverGlobalCluster")) == 2
    assert world.controls == {world.control_arn(EAST): "On", world.control_arn(WEST): "On"}
    kept = {s["DBClusterIdentifier"] for s in world.snapshots.values()}
    assert kept >= {f"{db}-dbcluster-01" for db in world.databases}  # each old writer's copy, in its region


@pytest.mark.parametrize("point", ["step.running", "step.acted", "step.finished"])
def test_region_failover_killed_around_a_failover_resumes_without_a_second_request(tmp_path: Path, world: AwsWorld,
                                                                                   point: str) -> None:
    """(A kill in the middle of a failover's wait is the port's to survive: test_aurora covers it.)"""
    h = harness(tmp_path, world)

    def kill(at: str, execution_id: str, step: str | None) -> None:
        if at == point and step == "FailoverOrders":
            raise Crash(f"{at} {step}")

    async def body(engine: Any) -> Any:
        ex = await engine.start("RegionFailover", {"region": EAST}, "tester")
        return await engine.wait(ex.id, timeout=30)

    h.session(body, crash_hook=kill)
    (resumed,) = h.resume()
    assert resumed.status == J.SUCCEEDED, resumed.error
    assert len(world.requests("FailoverGlobalCluster")) == 2  # one per database
    assert {db: world.writer(db) for db in world.databases} == {"orders": WEST, "catalog": WEST}
