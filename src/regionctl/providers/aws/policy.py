"""The IAM permissions the runbooks need on AWS, scoped to the resources the settings name: one source for
``regionctl aws policy`` (the document to attach), ``regionctl aws check`` (what it simulates) and docs/aws.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from regionctl.config import AwsSettings

RECON_PREFIX = "regionctl-"  # every cluster, instance and snapshot regionctl creates is named so


@dataclass(frozen=True)
class Grant:
    why: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]


def account_of(aws: AwsSettings) -> str:
    first = next(iter(next(iter(aws.databases.values())).clusters.values()))
    return first.split(":")[4]


def grants(aws: AwsSettings) -> list[Grant]:
    account = account_of(aws)
    controls = tuple(r.routing_control_arn for r in aws.regions.values())
    globals_ = tuple(f"arn:aws:rds::{account}:global-cluster:{db.global_cluster_id}" for db in aws.databases.values())
    members = tuple(arn for db in aws.databases.values() for arn in db.clusters.values())
    regions = tuple(aws.regions)
    found = [
        Grant("read and set routing controls (any cluster endpoint)",
              ("route53-recovery-cluster:GetRoutingControlState",
               "route53-recovery-cluster:UpdateRoutingControlStates"), controls),
        Grant("read the Aurora global databases; switch over or fail over to a member",
              ("rds:DescribeGlobalClusters", "rds:SwitchoverGlobalCluster", "rds:FailoverGlobalCluster"),
              globals_ + members),
        Grant("find the old writer's failover snapshot, or take one; snapshots the runbooks take",
              ("rds:DescribeDBClusterSnapshots", "rds:CreateDBClusterSnapshot", "rds:DescribeDBClusters"),
              members + tuple(f"arn:aws:rds:{r}:{account}:cluster-snapshot:*" for r in regions)),
        Grant("restore the old writer's copy as a throwaway cluster with one instance, and delete it after",
              ("rds:RestoreDBClusterFromSnapshot", "rds:RestoreDBClusterToPointInTime", "rds:CreateDBInstance",
               "rds:DescribeDBInstances", "rds:DeleteDBInstance", "rds:DeleteDBCluster", "rds:AddTagsToResource"),
              tuple(f"arn:aws:rds:{r}:{account}:{kind}:{RECON_PREFIX}*" for r in regions
                    for kind in ("cluster", "db")) + members
              + tuple(f"arn:aws:rds:{r}:{account}:cluster-snapshot:*" for r in regions)
              + tuple(f"arn:aws:rds:{r}:{account}:subgrp:{w.subnet_group}" for r, w in aws.regions.items()
                      if w.subnet_group)),
        Grant("replication lag of the secondaries", ("cloudwatch:GetMetricStatistics",), ("*",)),
    ]
    if not aws.arc_endpoints:
        found.append(Grant("list the ARC cluster's endpoints", ("route53-recovery-control-config:DescribeCluster",),
                           (aws.arc_cluster_arn,)))
    if aws.safety_rules:
        found.append(Grant("read the ARC safety rules named for overrides",
                           ("route53-recovery-control-config:DescribeSafetyRule",), tuple(aws.safety_rules.values())))
    checks = tuple(f"arn:aws:route53:::healthcheck/{r.health_check_id}" for r in aws.regions.values()
                   if r.health_check_id)
    if checks:
        found.append(Grant("the regions' endpoint health checks", ("route53:GetHealthCheckStatus",), checks))
    services = tuple(f"arn:aws:ecs:{region}:{account}:service/{r.ecs_cluster}/{name}"
                     for region, r in aws.regions.items() if r.ecs_cluster for name in r.ecs_services)
    if services:
        found.append(Grant("the regions' ECS services", ("ecs:DescribeServices",), services))
    if aws.reconcile.kms_key_id:
        found.append(Grant("restore with the named key", ("kms:CreateGrant", "kms:DescribeKey"),
                           (aws.reconcile.kms_key_id,)))
    return found


def policy_document(aws: AwsSettings) -> dict[str, Any]:
    """An IAM policy (JSON) granting exactly these, statement ids naming why."""
    statements = []
    for n, grant in enumerate(grants(aws), start=1):
        statements.append({"Sid": f"Regionctl{n}", "Effect": "Allow", "Action": list(grant.actions),
                           "Resource": list(grant.resources)})
    return {"Version": "2012-10-17", "Statement": statements}

