"""A simulated AWS for the AWS provider's tests: real botocore clients whose calls are answered from a small
model of ARC, Aurora global databases, snapshots, CloudWatch, Route 53 health checks and ECS.

It answers at botocore's ``before-call`` hook, as botocore's Stubber does, and checks what Stubber checks: every
request is validated and serialised by botocore against the service's model before it arrives here, and every
answer is validated against the operation's output shape. Unlike a Stubber queue it keeps state, so a whole
runbook (parallel steps, polling) can run against it. What it cannot tell: how the real services behave beyond
their models (timings, error codes for cases the models do not name); docs/aws.md says which of those were
assumed.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError
from botocore.validate import validate_parameters

from regionctl.config import Settings, load_settings

ACCOUNT = "123456789012"
PANEL = f"arn:aws:route53-recovery-control::{ACCOUNT}:controlpanel/0123456789abcdef0123456789abcdef"
ARC_CLUSTER = f"arn:aws:route53-recovery-control::{ACCOUNT}:cluster/5a5a5a5a-1111-2222-3333-444455556666"
ARC_ENDPOINTS = {"us-east-1": "https://aaaa1111.route53-recovery-cluster.us-east-1.amazonaws.com/v1",
                 "us-west-2": "https://bbbb2222.route53-recovery-cluster.us-west-2.amazonaws.com/v1",
                 "eu-west-1": "https://cccc3333.route53-recovery-cluster.eu-west-1.amazonaws.com/v1"}


class WorldError(Exception):
    """An AWS error answer (HTTP 400 with an error code), as the service would send it."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


@dataclass
class Cluster:
    arn: str
    region: str
    status: str = "available"
    endpoint: str = ""
    engine: str = "aurora-postgresql"
    becomes_available_after: int = 0  # describes until a "creating" cluster is "available"

    @property
    def id(self) -> str:
        return self.arn.rsplit(":", 1)[-1]


@dataclass
class Member:
    arn: str
    writer: bool
    sync: str = "connected"


@dataclass
class GlobalCluster:
    id: str
    members: list[Member]
    failover: dict[str, Any] | None = None
    steps_left: int = 0  # describes until a running promotion finishes
    rejoin: tuple[str, int] | None = None  # (old writer ARN, describes until Aurora re-adds it)


@dataclass
class ArcRule:
    name: str
    arn: str
    holds: Callable[[dict[str, str]], bool]


@dataclass
class AwsWorld:
    regions: tuple[str, str] = ("us-east-1", "us-west-2")
    databases: tuple[str, ...] = ("orders", "catalog")
    promotion_steps: int = 2  # describes a switchover or failover stays in progress ("pending", "failing-over")
    rejoin_steps: int = 2  # describes after an unplanned failover before Aurora re-adds the old writer
    lag_ms: float = 40.0
    calls: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    down_endpoints: set[str] = field(default_factory=set)  # ARC endpoint URLs that time out
    down_regions: set[str] = field(default_factory=set)  # regions whose RDS API does not answer
    arc_rules: list[ArcRule] = field(default_factory=list)
    fail: dict[str, WorldError] = field(default_factory=dict)  # operation name -> the error it answers once
    denied_actions: set[str] = field(default_factory=set)  # what the IAM simulator says the caller may not do

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._serial = itertools.count(1)
        self.controls = {self.control_arn(r): "On" for r in self.regions}
        self.clusters: dict[str, Cluster] = {}
        self.global_clusters: dict[str, GlobalCluster] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}  # identifier -> DBClusterSnapshot
        self.instances: dict[str, dict[str, Any]] = {}
        self.health = {r: True for r in self.regions}
        self.ecs_running = {r: 2 for r in self.regions}
        for db in self.databases:
            arns = []
            for n, region in enumerate(self.regions, start=1):
                arn = self.cluster_arn(db, region)
                self.clusters[arn] = Cluster(arn, region, endpoint=f"{db}-0{n}.cluster-x.{region}.rds.amazonaws.com")
                arns.append(arn)
            self.global_clusters[self.global_id(db)] = GlobalCluster(
                self.global_id(db), [Member(arns[0], True), Member(arns[1], False)])
        self._session = botocore.session.get_session()

    # --- names ----------------------------------------------------------------------------------------------

    def control_arn(self, region: str) -> str:
        return f"{PANEL}/routingcontrol/{self.regions.index(region) + 1:032x}"

    def cluster_arn(self, database: str, region: str) -> str:
        return f"arn:aws:rds:{region}:{ACCOUNT}:cluster:{database}-dbcluster-0{self.regions.index(region) + 1}"

    @staticmethod
    def global_id(database: str) -> str:
        return f"{database}-global-db-cluster"

    def rule_arn(self, n: int) -> str:
        return f"{PANEL}/safetyrule/{n:032x}"

    def settings(self, root: Path, **aws: Any) -> Settings:
        """Settings naming this world's resources (``aws`` overrides parts of the [aws] table)."""
        table: dict[str, Any] = {
            "arc_cluster_arn": ARC_CLUSTER,
            "arc_endpoints": dict(ARC_ENDPOINTS),
            "safety_rules": {rule.name: rule.arn for rule in self.arc_rules},
            "regions": {r: {"routing_control_arn": self.control_arn(r),
                            "health_check_id": f"00000000-0000-0000-0000-00000000000{i}",
                            "ecs_cluster": f"apps-{r}", "ecs_services": ["ui", "orders"],
                            "subnet_group": "recon-subnets", "security_group_ids": ["sg-0abc"]}
                        for i, r in enumerate(self.regions, start=1)},
            "databases": {db: {"global_cluster_id": self.global_id(db),
                               "clusters": {r: self.cluster_arn(db, r) for r in self.regions},
                               "dsn": {r: f"service={db}-{r}" for r in self.regions}} for db in self.databases},
            "probe_url": "https://store.demo.example",
            "poll_interval_s": 0.01,
            **aws,
        }
        return load_settings(data_dir=root, provider="aws", aws=table, primary_region=self.regions[0],
                             standby_region=self.regions[1])

    # --- what tests read ------------------------------------------------------------------------------------

    def writer(self, database: str) -> str | None:
        gc = self.global_clusters[self.global_id(database)]
        return next((self.clusters[m.arn].region for m in gc.members if m.writer), None)

    def count(self, operation: str) -> int:
        return sum(1 for _, _, op, _ in self.calls if op == operation)

    def requests(self, operation: str) -> list[dict[str, Any]]:
        return [params for _, _, op, params in self.calls if op == operation]

    # --- the clients ----------------------------------------------------------------------------------------

    def factory(self, service: str, region: str, endpoint_url: str | None = None, attempts: int = 3) -> Any:
        """A real botocore client of ``service`` in ``region`` whose calls this world answers."""
        del attempts
        client = self._session.create_client(service, region_name=region, endpoint_url=endpoint_url,
                                             aws_access_key_id="testing", aws_secret_access_key="testing")
        client.meta.events.register_first("before-parameter-build.*.*", _keep_params)
        client.meta.events.register_first("before-call.*.*", self._answerer(client, region, endpoint_url))
        return client

    def _answerer(self, client: Any, region: str, endpoint_url: str | None) -> Callable[..., Any]:
        service = client.meta.service_model.service_name

        def answer(model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            params = context.get("world_params", {})
            with self._lock:
                self.calls.append((service, region, model.name, copy.deepcopy(params)))
                if endpoint_url in self.down_endpoints:
                    raise ConnectTimeoutError(endpoint_url=endpoint_url)
                if service in ("rds", "cloudwatch") and region in self.down_regions:
                    raise EndpointConnectionError(endpoint_url=f"https://{service}.{region}.amazonaws.com")
                try:
                    if model.name in self.fail:
                        raise self.fail.pop(model.name)
                    handler = getattr(self, f"_{xform_name(model.name)}", None)
                    if handler is None:
                        raise AssertionError(f"the world does not implement {service} {model.name}")
                    body = handler(region, params)
                except WorldError as exc:
                    return (AWSResponse(None, exc.status, {}, None),
                            {"Error": {"Code": exc.code, "Message": exc.message},
                             "ResponseMetadata": {"HTTPStatusCode": exc.status}})
            if model.output_shape is not None:
                validate_parameters(body, model.output_shape)  # what botocore's Stubber checks
            return AWSResponse(None, 200, {}, None), {**body, "ResponseMetadata": {"HTTPStatusCode": 200}}

        return answer

    # --- ARC ------------------------------------------------------------------------------------------------

    def _describe_cluster(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"Cluster": {"ClusterArn": params["ClusterArn"], "Name": "ArcCluster", "Status": "DEPLOYED",
                            "ClusterEndpoints": [{"Endpoint": url, "Region": r}
                                                 for r, url in reversed(ARC_ENDPOINTS.items())]}}

    def _describe_safety_rule(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        rule = next((r for r in self.arc_rules if r.arn == params["SafetyRuleArn"]), None)
        if rule is None:
            raise WorldError("ResourceNotFoundException", f"safety rule {params['SafetyRuleArn']} not found")
        return {"AssertionRule": {"AssertedControls": list(self.controls), "ControlPanelArn": PANEL,
                                  "Name": rule.name,
                                  "RuleConfig": {"Inverted": False, "Threshold": 1, "Type": "ATLEAST"},
                                  "SafetyRuleArn": rule.arn, "Status": "DEPLOYED", "WaitPeriodMs": 5000}}

    def _get_routing_control_state(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        arn = params["RoutingControlArn"]
        if arn not in self.controls:
            raise WorldError("ResourceNotFoundException", f"routing control {arn} not found")
        return {"RoutingControlArn": arn, "RoutingControlState": self.controls[arn]}

    def _update_routing_control_states(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        after = dict(self.controls)
        for entry in params["UpdateRoutingControlStateEntries"]:
            after[entry["RoutingControlArn"]] = entry["RoutingControlState"]
        overridden = set(params.get("SafetyRulesToOverride", []))
        for rule in self.arc_rules:
            if rule.arn not in overridden and not rule.holds(after):
                raise WorldError("ConflictException", f"the update violates safety rule {rule.name}")
        self.controls = after
        return {}

    # --- RDS: global clusters -------------------------------------------------------------------------------

    def _global(self, identifier: str) -> GlobalCluster:
        gc = self.global_clusters.get(identifier)
        if gc is None:
            raise WorldError("GlobalClusterNotFoundFault", f"global cluster {identifier} not found", 404)
        return gc

    def _describe_global_clusters(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        gc = self._global(params["GlobalClusterIdentifier"])
        self._advance(gc)
        body: dict[str, Any] = {
            "GlobalClusterIdentifier": gc.id, "Engine": "aurora-postgresql", "Status": "available",
            "GlobalClusterArn": f"arn:aws:rds::{ACCOUNT}:global-cluster:{gc.id}",
            "GlobalClusterMembers": [{"DBClusterArn": m.arn, "IsWriter": m.writer, "Readers": [],
                                      "SynchronizationStatus": m.sync} for m in gc.members]}
        if gc.failover is not None:
            body["FailoverState"] = dict(gc.failover)
        return {"GlobalClusters": [body]}

    def _advance(self, gc: GlobalCluster) -> None:
        """One describe's worth of Aurora's progress: a promotion moves on, a removed old writer comes back."""
        if gc.failover is not None:
            gc.steps_left -= 1
            if gc.steps_left > 0:
                gc.failover["Status"] = "failing-over"
                return
            self._finish_promotion(gc)
        elif gc.rejoin is not None:
            arn, left = gc.rejoin
            if left > 1:
                gc.rejoin = (arn, left - 1)
                return
            gc.rejoin = None
            self._take_failover_snapshot(arn)
            gc.members.append(Member(arn, False, "connected"))

    def _finish_promotion(self, gc: GlobalCluster) -> None:
        assert gc.failover is not None
        target, old = gc.failover["ToDbClusterArn"], gc.failover["FromDbClusterArn"]
        planned = not gc.failover["IsDataLossAllowed"]
        gc.failover = None
        for member in gc.members:
            member.writer = member.arn == target
        if not planned:  # Aurora removes the old writer and re-adds it once it is available
            gc.members = [m for m in gc.members if m.arn != old]
            gc.rejoin = (old, self.rejoin_steps)

    def _take_failover_snapshot(self, cluster_arn: str) -> None:
        cluster = self.clusters[cluster_arn]
        stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H-%M")
        self._snapshot(f"rds:unplanned-global-failover-{cluster.id}-{stamp}", cluster, "automated")

    def _promote(self, params: dict[str, Any], data_loss: bool) -> dict[str, Any]:
        gc = self._global(params["GlobalClusterIdentifier"])
        target = params["TargetDbClusterIdentifier"]
        if gc.failover is not None:
            raise WorldError("InvalidGlobalClusterStateFault", f"global cluster {gc.id} is already failing over")
        member = next((m for m in gc.members if m.arn == target), None)
        if member is None:
            raise WorldError("DBClusterNotFoundFault", f"{target} is not a member of {gc.id}")
        if member.writer:
            raise WorldError("InvalidGlobalClusterStateFault", f"{target} is already the primary of {gc.id}")
        old = next(m.arn for m in gc.members if m.writer)
        gc.failover = {"Status": "pending", "FromDbClusterArn": old, "ToDbClusterArn": target,
                       "IsDataLossAllowed": data_loss}
        gc.steps_left = self.promotion_steps
        return {"GlobalCluster": {"GlobalClusterIdentifier": gc.id, "FailoverState": dict(gc.failover)}}

    def _switchover_global_cluster(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._promote(params, data_loss=False)

    def _failover_global_cluster(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("AllowDataLoss") and not params.get("Switchover"):
            raise WorldError("InvalidParameterCombination", "AllowDataLoss or Switchover is required")
        return self._promote(params, data_loss=bool(params.get("AllowDataLoss")))

    # --- RDS: clusters, snapshots, instances ----------------------------------------------------------------

    def _cluster(self, identifier: str, region: str, arn_ok: bool = False) -> Cluster:
        """By identifier; by ARN only where the API documents it (most calls say "must match the identifier")."""
        for cluster in self.clusters.values():
            if identifier in ((cluster.arn, cluster.id) if arn_ok else (cluster.id,)) and cluster.region == region:
                return cluster
        raise WorldError("DBClusterNotFoundFault", f"DBCluster {identifier} not found", 404)

    def _cluster_body(self, cluster: Cluster) -> dict[str, Any]:
        return {"DBClusterIdentifier": cluster.id, "DBClusterArn": cluster.arn, "Status": cluster.status,
                "Engine": cluster.engine, "Endpoint": cluster.endpoint, "Port": 5432}

    def _snapshot(self, identifier: str, cluster: Cluster, kind: str) -> dict[str, Any]:
        body = {"DBClusterSnapshotIdentifier": identifier, "DBClusterIdentifier": cluster.id,
                "DBClusterSnapshotArn": f"arn:aws:rds:{cluster.region}:{ACCOUNT}:cluster-snapshot:{identifier}",
                "SnapshotCreateTime": datetime.now(UTC) + timedelta(seconds=next(self._serial)),
                "Engine": cluster.engine, "Status": "available", "SnapshotType": kind}
        self.snapshots[identifier] = body
        return body

    def _describe_db_cluster_snapshots(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        found = [s for s in self.snapshots.values() if s["DBClusterSnapshotArn"].split(":")[3] == region]
        if "DBClusterIdentifier" in params:
            cluster = self._cluster(params["DBClusterIdentifier"], region)
            found = [s for s in found if s["DBClusterIdentifier"] == cluster.id]
        if "DBClusterSnapshotIdentifier" in params:
            found = [s for s in found if s["DBClusterSnapshotIdentifier"] == params["DBClusterSnapshotIdentifier"]]
            if not found:
                raise WorldError("DBClusterSnapshotNotFoundFault", "snapshot not found", 404)
        return {"DBClusterSnapshots": [dict(s) for s in found]}

    def _create_db_cluster_snapshot(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        if params["DBClusterSnapshotIdentifier"] in self.snapshots:
            raise WorldError("DBClusterSnapshotAlreadyExistsFault", "snapshot exists")
        cluster = self._cluster(params["DBClusterIdentifier"], region)
        return {"DBClusterSnapshot": self._snapshot(params["DBClusterSnapshotIdentifier"], cluster, "manual")}

    def _restore(self, region: str, name: str) -> dict[str, Any]:
        arn = f"arn:aws:rds:{region}:{ACCOUNT}:cluster:{name}"
        if arn in self.clusters:
            raise WorldError("DBClusterAlreadyExistsFault", f"{name} exists")
        self.clusters[arn] = Cluster(arn, region, status="creating", endpoint=f"{name}.cluster-x.{region}.rds",
                                     becomes_available_after=2)
        return {"DBCluster": self._cluster_body(self.clusters[arn])}

    def _restore_db_cluster_from_snapshot(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        snapshot = params["SnapshotIdentifier"]  # a name or an ARN, as documented
        if not any(snapshot in (s["DBClusterSnapshotIdentifier"], s["DBClusterSnapshotArn"])
                   for s in self.snapshots.values()):
            raise WorldError("DBClusterSnapshotNotFoundFault", f"{snapshot} not found", 404)
        return self._restore(region, params["DBClusterIdentifier"])

    def _restore_db_cluster_to_point_in_time(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        self._cluster(params["SourceDBClusterIdentifier"], region)
        return self._restore(region, params["DBClusterIdentifier"])

    def _describe_db_clusters(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(params["DBClusterIdentifier"], region, arn_ok=True)
        if cluster.status == "creating":
            cluster.becomes_available_after -= 1
            if cluster.becomes_available_after <= 0:
                cluster.status = "available"
        return {"DBClusters": [self._cluster_body(cluster)]}

    def _create_db_instance(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params["DBInstanceIdentifier"]
        if name in self.instances:
            raise WorldError("DBInstanceAlreadyExists", f"{name} exists")
        self._cluster(params["DBClusterIdentifier"], region)
        self.instances[name] = {"DBInstanceIdentifier": name, "DBInstanceStatus": "creating",
                                "DBClusterIdentifier": params["DBClusterIdentifier"], "Engine": params["Engine"]}
        return {"DBInstance": dict(self.instances[name])}

    def _describe_db_instances(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        instance = self.instances.get(params["DBInstanceIdentifier"])
        if instance is None:
            raise WorldError("DBInstanceNotFound", "instance not found", 404)
        instance["DBInstanceStatus"] = "available"
        return {"DBInstances": [dict(instance)]}

    def _delete_db_instance(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        instance = self.instances.pop(params["DBInstanceIdentifier"], None)
        if instance is None:
            raise WorldError("DBInstanceNotFound", "instance not found", 404)
        return {"DBInstance": {**instance, "DBInstanceStatus": "deleting"}}

    def _delete_db_cluster(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(params["DBClusterIdentifier"], region, arn_ok=True)
        if any(i["DBClusterIdentifier"] in (cluster.id, cluster.arn) for i in self.instances.values()):
            raise WorldError("InvalidDBClusterStateFault", f"{cluster.id} still has instances")
        del self.clusters[cluster.arn]
        return {"DBCluster": {**self._cluster_body(cluster), "Status": "deleting"}}

    def restored_clusters(self) -> list[str]:
        """Clusters that are not members of a global database (restores, throwaway copies)."""
        deployed = {self.cluster_arn(db, r) for db in self.databases for r in self.regions}
        return sorted(c.id for c in self.clusters.values() if c.arn not in deployed)

    # --- STS, IAM ------------------------------------------------------------------------------------------

    def _get_caller_identity(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"UserId": "AROAEXAMPLE:ops", "Account": ACCOUNT,
                "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/regionctl-runbooks/ops"}

    def _simulate_principal_policy(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        if params["PolicySourceArn"] != f"arn:aws:iam::{ACCOUNT}:role/regionctl-runbooks":
            raise WorldError("NoSuchEntity", f"{params['PolicySourceArn']} not found", 404)
        return {"EvaluationResults": [
            {"EvalActionName": action, "EvalResourceName": "*",
             "EvalDecision": "implicitDeny" if action in self.denied_actions else "allowed"}
            for action in params["ActionNames"]], "IsTruncated": False}

    # --- CloudWatch, Route 53, ECS --------------------------------------------------------------------------

    def _get_metric_statistics(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"Label": params["MetricName"],
                "Datapoints": [{"Timestamp": datetime.now(UTC), "Maximum": self.lag_ms, "Unit": "Milliseconds"}]}

    def _get_health_check_status(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        checked = next(r for i, r in enumerate(self.regions, start=1) if params["HealthCheckId"].endswith(f"{i}"))
        status = "Success: HTTP Status Code 200, OK" if self.health[checked] else "Failure: Connection timed out"
        return {"HealthCheckObservations": [{"Region": r, "IPAddress": "192.0.2.1",
                                             "StatusReport": {"Status": status, "CheckedTime": datetime.now(UTC)}}
                                            for r in ("us-east-1", "us-west-1", "eu-west-1")]}

    def _describe_services(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"services": [{"serviceName": name, "status": "ACTIVE", "desiredCount": 2,
                              "runningCount": self.ecs_running[region]} for name in params["services"]],
                "failures": []}


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """The caller's parameters, before botocore serialises them, for the answer at ``before-call``."""
    context["world_params"] = copy.deepcopy(params)

