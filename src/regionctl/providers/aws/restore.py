"""Restored Aurora clusters: from a snapshot or to a point in time, one instance, waited for, deleted after.

Every step is idempotent by name (a retried or resumed restore finds the cluster it made), and deleting a
cluster that is already gone is not an error, so a clean-up can always run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from regionctl.errors import NotFoundError, OperationTimeout
from regionctl.providers.aws.clients import error_code, translate

ENGINE = "aurora-postgresql"  # the supported engine: the report and replay read it over libpq
GONE = frozenset({"DBClusterNotFoundFault", "DBInstanceNotFound"})  # the wire codes (not the shape names)


@dataclass(frozen=True)
class Placement:
    """Where a restored cluster goes: the region's subnet group and security groups, and its key."""

    subnet_group: str | None = None
    security_group_ids: tuple[str, ...] = ()
    kms_key_id: str | None = None


@dataclass(frozen=True)
class Restored:
    cluster: str
    instance: str
    endpoint: str | None
    port: int | None


@dataclass(frozen=True)
class Waiting:
    """How waits poll: injected so tests run them without sleeping."""

    interval_s: float
    timeout_s: float
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def restore_cluster(rds: Any, name: str, where: Placement, *, snapshot: str | None = None,
                    source_cluster: str | None = None, restore_time: str | None = None) -> dict[str, Any]:
    """Start restoring ``name`` (from ``snapshot``, else ``source_cluster`` at ``restore_time`` or its latest
    restorable time); the existing cluster when it is already there."""
    existing = describe_cluster(rds, name)
    if existing is not None:
        return existing
    common: dict[str, Any] = {"DBClusterIdentifier": name, "Tags": [{"Key": "created-by", "Value": "regionctl"}]}
    if where.subnet_group:
        common["DBSubnetGroupName"] = where.subnet_group
    if where.security_group_ids:
        common["VpcSecurityGroupIds"] = list(where.security_group_ids)
    if where.kms_key_id:
        common["KmsKeyId"] = where.kms_key_id
    try:
        if snapshot is not None:
            answer = rds.restore_db_cluster_from_snapshot(SnapshotIdentifier=snapshot, Engine=ENGINE, **common)
        else:
            when = {"RestoreToTime": restore_time} if restore_time else {"UseLatestRestorableTime": True}
            answer = rds.restore_db_cluster_to_point_in_time(SourceDBClusterIdentifier=source_cluster, **when,
                                                             **common)
    except Exception as exc:
        if error_code(exc) == "DBClusterAlreadyExistsFault":
            found = describe_cluster(rds, name)
            if found is not None:
                return found
        raise translate(exc, f"restoring cluster {name}") from None
    return dict(answer["DBCluster"])


def add_instance(rds: Any, cluster: str, instance_class: str) -> str:
    """One instance in ``cluster`` (a restored Aurora cluster has none, so nothing can connect)."""
    instance = f"{cluster}-1"
    try:
        rds.create_db_instance(DBInstanceIdentifier=instance, DBClusterIdentifier=cluster,
                               DBInstanceClass=instance_class, Engine=ENGINE)
    except Exception as exc:
        if error_code(exc) != "DBInstanceAlreadyExists":
            raise translate(exc, f"adding instance {instance} to {cluster}") from None
    return instance


def describe_cluster(rds: Any, name: str) -> dict[str, Any] | None:
    try:
        clusters = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"]
    except Exception as exc:
        if error_code(exc) in GONE:
            return None
        raise translate(exc, f"reading cluster {name}") from None
    return dict(clusters[0]) if clusters else None


def _instance_status(rds: Any, instance: str) -> str | None:
    try:
        instances = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"]
    except Exception as exc:
        if error_code(exc) in GONE:
            return None
        raise translate(exc, f"reading instance {instance}") from None
    return str(instances[0].get("DBInstanceStatus")) if instances else None


def wait_available(rds: Any, cluster: str, instance: str, waiting: Waiting,
                   progress: Callable[[str], None] = lambda _: None) -> Restored:
    """Until the cluster and its instance are ``available``; OperationTimeout naming what still is not."""
    deadline = waiting.clock() + waiting.timeout_s
    while True:
        found = describe_cluster(rds, cluster)
        if found is None:
            raise NotFoundError(f"restored cluster {cluster} disappeared while it was being restored")
        cluster_status, instance_status = found.get("Status"), _instance_status(rds, instance)
        if cluster_status == "available" and instance_status == "available":
            return Restored(cluster, instance, found.get("Endpoint"), found.get("Port"))
        progress(f"{cluster} {cluster_status}, {instance} {instance_status or 'not there yet'}")
        if waiting.clock() >= deadline:
            raise OperationTimeout(f"{cluster} is {cluster_status} and {instance} {instance_status} after "
                                   f"{waiting.timeout_s:g} s")
        waiting.sleep(waiting.interval_s)


def delete_restored(rds: Any, cluster: str, instance: str) -> list[str]:
    """Delete the instance, then the cluster (no final snapshot: it is a copy); what was deleted."""
    deleted = []
    for what, call in ((instance, lambda: rds.delete_db_instance(DBInstanceIdentifier=instance,
                                                                  SkipFinalSnapshot=True)),
                       (cluster, lambda: rds.delete_db_cluster(DBClusterIdentifier=cluster,
                                                               SkipFinalSnapshot=True))):
        try:
            call()
            deleted.append(what)
        except Exception as exc:
            if error_code(exc) not in GONE:
                raise translate(exc, f"deleting {what}") from None
    return deleted
