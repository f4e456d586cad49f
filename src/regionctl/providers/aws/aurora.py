"""Aurora global databases: the runbooks' ``Databases`` port over the RDS API.

Status comes from ``DescribeGlobalClusters`` (writer, members, ``FailoverState``), asked of each member region in
turn until one answers. Switchover (``SwitchoverGlobalCluster``, RPO 0) and failover (``FailoverGlobalCluster``
with ``AllowDataLoss``) are asked in the target region and then waited for, until the global cluster names the
new writer and no failover is in progress: the reference's runbooks fired the request and never looked again.
Both are idempotent like the local actions: nothing is sent when the target already writes, and a promotion
Aurora is still carrying out (the engine died mid-wait) is waited for, never requested twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from regionctl.config import AwsDatabaseSettings, AwsSettings, Settings
from regionctl.errors import ConflictError, InputError, NotFoundError, OperationTimeout, Pending, Unreachable
from regionctl.providers.aws.clients import ClientFactory, describe, error_code, translate, unreachable
from regionctl.providers.aws.records import Promotion, PromotionRecords, now_iso
from regionctl.providers.aws.restore import Placement, Waiting, add_instance, describe_cluster, restore_cluster
from regionctl.runbooks.ports import DatabaseStatus, MemberStatus

IN_PROGRESS = frozenset({"pending", "failing-over", "cancelling"})
FAILOVER_SNAPSHOT_PREFIX = "rds:unplanned-global-failover-"
START_GRACE_S = 60.0  # Aurora may not show a just-requested failover at once; after this long it never started
LAG_METRIC = "AuroraGlobalDBReplicationLag"  # milliseconds; the RDS API has no lag in bytes
VIEW_MAX_AGE_S = 1.0
LAG_MAX_AGE_S = 30.0


@dataclass(frozen=True)
class FailoverInProgress:
    status: str
    from_region: str | None
    to_region: str | None
    data_loss_allowed: bool


@dataclass(frozen=True)
class GlobalView:
    """One read of a global cluster, in regions."""

    database: str
    engine: str
    writer: str | None
    members: dict[str, dict[str, Any]]  # region -> its GlobalClusterMembers entry
    failover: FailoverInProgress | None

    @property
    def settled_writer(self) -> str | None:
        return self.writer if self.failover is None else None


def cluster_id(arn: str) -> str:
    """``arn:aws:rds:REGION:ACCOUNT:cluster:ID`` -> ``ID`` (what most RDS calls in the cluster's region take)."""
    return arn.rsplit(":", 1)[-1]


def snapshot_id(arn: str) -> str:
    """``arn:...:cluster-snapshot:rds:unplanned-...`` -> ``rds:unplanned-...`` (snapshot names hold colons)."""
    return arn.split(":cluster-snapshot:", 1)[-1]


class AuroraDatabases:
    """``Databases`` over Aurora global clusters (one per global database, members named in settings)."""

    def __init__(self, settings: Settings, factory: ClientFactory, records: PromotionRecords | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        if settings.aws is None:
            raise InputError("provider 'aws' needs [aws] settings")
        self.aws: AwsSettings = settings.aws
        self.regions = settings.regions
        self.factory = factory
        self.records = records or PromotionRecords(settings.root / "state" / "aws")
        self.sleep = sleep
        self.clock = clock
        self._views: dict[str, tuple[float, GlobalView]] = {}
        self._lags: dict[tuple[str, str], tuple[float, float | None]] = {}

    # --- reading ---------------------------------------------------------------------------------------------

    def _db(self, database: str) -> AwsDatabaseSettings:
        found = self.aws.databases.get(database)
        if found is None:
            raise InputError(f"unknown database {database!r}; the [aws] settings name "
                             f"{', '.join(sorted(self.aws.databases))}")
        return found

    def _rds(self, region: str) -> Any:
        return self.factory("rds", region)

    def view(self, database: str, max_age_s: float = VIEW_MAX_AGE_S) -> GlobalView:
        """The global cluster as the first member region that answers describes it: read again once
        ``max_age_s`` old (the runbooks' waits look ten times a second; the RDS API need not)."""
        cached = self._views.get(database)
        if cached is not None and self.clock() - cached[0] < max_age_s:
            return cached[1]
        view = self._read_view(database)
        self._views[database] = (self.clock(), view)
        return view

    def _read_view(self, database: str) -> GlobalView:
        db = self._db(database)
        misses = []
        for region in self.regions:
            try:
                answer = self._rds(region).describe_global_clusters(GlobalClusterIdentifier=db.global_cluster_id)
            except Exception as exc:
                if unreachable(exc):
                    misses.append(f"{region}: {describe(exc)}")
                    continue
                raise translate(exc, f"reading global cluster {db.global_cluster_id}") from None
            clusters = answer.get("GlobalClusters", [])
            if not clusters:
                raise NotFoundError(f"global cluster {db.global_cluster_id} of {database} does not exist")
            return self._parse(database, db, clusters[0])
        raise Unreachable(f"reading global cluster {db.global_cluster_id}: no region answered ({'; '.join(misses)})")

    def _region_of(self, db: AwsDatabaseSettings, arn: str | None) -> str | None:
        return next((region for region, member in db.clusters.items() if member == arn), None)

    def _parse(self, database: str, db: AwsDatabaseSettings, cluster: dict[str, Any]) -> GlobalView:
        members = {}
        for member in cluster.get("GlobalClusterMembers", []):
            region = self._region_of(db, member.get("DBClusterArn"))
            if region is not None:
                members[region] = member
        writer = next((r for r, m in members.items() if m.get("IsWriter")), None)
        state = cluster.get("FailoverState") or {}
        failover = None
        if state.get("Status") in IN_PROGRESS:
            failover = FailoverInProgress(str(state["Status"]), self._region_of(db, state.get("FromDbClusterArn")),
                                          self._region_of(db, state.get("ToDbClusterArn")),
                                          bool(state.get("IsDataLossAllowed")))
        return GlobalView(database, str(cluster.get("Engine", "")), writer, members, failover)

    def status(self, database: str) -> DatabaseStatus:
        view = self.view(database)
        record = self.records.last(database)
        diverged = record.diverged_region if record is not None else None
        members = {}
        for region in self.regions:
            member = view.members.get(region)
            if member is None:
                role = "diverged" if region == diverged else "down"
                members[region] = MemberStatus(region=region, role=role)
                continue
            if member.get("IsWriter"):
                members[region] = MemberStatus(region=region, role="writer")
                continue
            streaming = member.get("SynchronizationStatus", "connected") == "connected"
            role = "diverged" if region == diverged else "standby"
            lag_ms = self._lag_ms(database, region) if streaming else None
            members[region] = MemberStatus(region=region, role=role, streaming=streaming, lag_ms=lag_ms)
        interrupted = view.failover.to_region if view.failover is not None else None
        return DatabaseStatus(database=database, writer=view.settled_writer, members=members,
                              interrupted_to=interrupted)

    def _lag_ms(self, database: str, region: str) -> float | None:
        """The secondary's replication lag from CloudWatch (newest minute, so read at most every 30 s);
        None when there is no figure."""
        cached = self._lags.get((database, region))
        if cached is not None and self.clock() - cached[0] < LAG_MAX_AGE_S:
            return cached[1]
        lag = self._read_lag_ms(database, region)
        self._lags[(database, region)] = (self.clock(), lag)
        return lag

    def _read_lag_ms(self, database: str, region: str) -> float | None:
        now = datetime.now(UTC)
        try:
            answer = self.factory("cloudwatch", region).get_metric_statistics(
                Namespace="AWS/RDS", MetricName=LAG_METRIC, Period=60, Statistics=["Maximum"],
                Dimensions=[{"Name": "DBClusterIdentifier", "Value": cluster_id(self._db(database).clusters[region])}],
                StartTime=now - timedelta(minutes=5), EndTime=now)
        except Exception:  # a missing metric must not make the database's status fail
            return None
        points = sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])
        return float(points[-1]["Maximum"]) if points else None

    # --- promotions ------------------------------------------------------------------------------------------

    def switchover(self, database: str, to_region: str) -> Any:
        return self._promote(database, to_region, planned=True)

    def failover(self, database: str, to_region: str) -> Any:
        return self._promote(database, to_region, planned=False)

    def _promote(self, database: str, to_region: str, planned: bool) -> dict[str, Any]:
        db = self._db(database)
        if to_region not in self.regions:
            raise InputError(f"unknown region {to_region!r}; this deployment has {', '.join(self.regions)}")
        how = "switchover" if planned else "failover"
        view = self.view(database, max_age_s=0)
        result: dict[str, Any] = {"database": database, "to_region": to_region, "how": how}
        if view.failover is None and view.writer == to_region:
            return {**result, "writer": to_region, "requested": False,
                    "reason": f"{to_region} already writes {database}; no {how}"}
        if view.failover is not None:
            if view.failover.to_region != to_region:
                raise ConflictError(f"Aurora is carrying out a promotion of {database} to "
                                    f"{view.failover.to_region or 'another cluster'} ({view.failover.status}); "
                                    f"wait for it before a {how} to {to_region}")
            requested, reason = False, f"Aurora is already promoting {to_region} ({view.failover.status}): waiting"
        else:
            self._check_target(database, view, to_region, how)
            previous = self.records.last(database)
            self.records.save(Promotion(database, view.writer, to_region, planned, now_iso()))
            try:
                self._request(db, to_region, planned)
            except Exception:  # refused or not sent: nothing diverged, what was recorded before still holds
                self.records.put_back(database, previous)
                raise
            requested, reason = True, f"asked Aurora for a {how} of {database} to {to_region}"
        started = self.clock()
        final = self._wait_for_writer(database, to_region, how, seen_in_progress=not requested)
        return {**result, "writer": final.writer, "requested": requested, "reason": reason,
                "from_region": view.writer, "waited_s": round(self.clock() - started, 1)}

    def _check_target(self, database: str, view: GlobalView, to_region: str, how: str) -> None:
        member = view.members.get(to_region)
        if member is None:
            raise ConflictError(f"the {to_region} cluster is not a member of {database}'s global cluster; "
                                f"there is nothing to {how} to")
        if how == "switchover" and member.get("SynchronizationStatus", "connected") != "connected":
            raise ConflictError(f"the {to_region} cluster of {database} is {member['SynchronizationStatus']}, not "
                                "connected: a switchover (RPO 0) needs it in sync; a failover allows data loss")

    def _request(self, db: AwsDatabaseSettings, to_region: str, planned: bool) -> None:
        """Asked of the target region: the old writer's region may be the one that is impaired."""
        target = db.clusters[to_region]
        rds = self._rds(to_region)
        try:
            if planned:
                rds.switchover_global_cluster(GlobalClusterIdentifier=db.global_cluster_id,
                                              TargetDbClusterIdentifier=target)
            else:
                rds.failover_global_cluster(GlobalClusterIdentifier=db.global_cluster_id,
                                            TargetDbClusterIdentifier=target, AllowDataLoss=True)
        except Exception as exc:
            if error_code(exc) in ("InvalidGlobalClusterStateFault", "InvalidDBClusterStateFault"):
                raise ConflictError(f"Aurora refused the promotion of {cluster_id(target)}: "
                                    f"{describe(exc)}") from None
            raise translate(exc, f"asking Aurora to promote {cluster_id(target)}") from None

    def _wait_for_writer(self, database: str, to_region: str, how: str, seen_in_progress: bool) -> GlobalView:
        started = self.clock()
        deadline = started + self.aws.failover_timeout_s
        while True:
            try:
                view = self.view(database, max_age_s=0)
            except Unreachable:  # a region answering nothing mid-failover is expected; the other will
                view = None
            if view is not None:
                if view.failover is None and view.writer == to_region:
                    return view
                if view.failover is not None:
                    seen_in_progress = True
                elif seen_in_progress or self.clock() - started > START_GRACE_S:
                    raise ConflictError(f"the {how} of {database} to {to_region} ended without it: the writer is "
                                        f"{view.writer or 'nowhere'} (cancelled, or refused by Aurora)")
            if self.clock() >= deadline:
                state = view.failover.status if view is not None and view.failover else "no answer"
                raise OperationTimeout(f"the {how} of {database} to {to_region} had not finished after "
                                       f"{self.aws.failover_timeout_s:g} s ({state}); running it again waits "
                                       "for it without asking twice")
            self.sleep(self.aws.poll_interval_s)

    # --- the old writer's copy -------------------------------------------------------------------------------

    def diverged(self, database: str, region: str) -> Promotion:
        """The recorded failover that left ``region``'s copy of ``database`` diverged (ConflictError if none)."""
        record = self.records.last(database)
        if record is None or record.diverged_region != region:
            raise ConflictError(f"no failover away from {region} that left {database} diverged is recorded: "
                                "there is nothing to keep")
        return record

    def preserve(self, database: str, region: str) -> Any:
        """Keep the old writer's copy: Aurora's ``rds:unplanned-global-failover-*`` snapshot of it, else one we
        take (named after the failover, so a retry finds it). Pending while its region does not answer."""
        record = self.diverged(database, region)
        if record.preserved_snapshot:
            return {"database": database, "region": region, "snapshot": record.preserved_snapshot, "kept": False}
        arn = self._db(database).clusters[region]
        rds = self._rds(region)
        try:
            found = self.failover_snapshot(rds, arn, record)
            taken_by = "aurora"
            if found is None:
                found, taken_by = self._take_snapshot(rds, arn, f"regionctl-preserved-{database}-{record.stamp}"), \
                    "regionctl"
        except Unreachable:
            raise Pending(f"the old writer of {database} in {region} cannot be reached to keep its copy",
                          f"regionctl runbook start Failback -p region={region}") from None
        self.records.update(record, preserved_snapshot=found)
        return {"database": database, "region": region, "snapshot": found, "taken_by": taken_by, "kept": True}

    def failover_snapshot(self, rds: Any, cluster_arn: str, record: Promotion) -> str | None:
        """The newest snapshot of the old writer taken at or after its failover: Aurora's, or ours."""
        since = datetime.fromisoformat(record.requested_at) - timedelta(minutes=1)
        try:
            pages = rds.get_paginator("describe_db_cluster_snapshots").paginate(
                DBClusterIdentifier=cluster_id(cluster_arn))  # an identifier: the API takes no ARN here
            snapshots = [s for page in pages for s in page.get("DBClusterSnapshots", [])]
        except Exception as exc:
            raise translate(exc, f"listing the snapshots of {cluster_id(cluster_arn)}") from None
        ours = f"regionctl-preserved-{record.database}-{record.stamp}"
        kept = [s for s in snapshots
                if (s["DBClusterSnapshotIdentifier"].startswith(FAILOVER_SNAPSHOT_PREFIX)
                    or s["DBClusterSnapshotIdentifier"] == ours)
                and _aware(s.get("SnapshotCreateTime")) >= since]
        if not kept:
            return None
        return str(max(kept, key=lambda s: _aware(s.get("SnapshotCreateTime")))["DBClusterSnapshotArn"])

    def _take_snapshot(self, rds: Any, cluster_arn: str, name: str) -> str:
        try:
            answer = rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=name,
                                                    DBClusterIdentifier=cluster_id(cluster_arn))
            return str(answer["DBClusterSnapshot"]["DBClusterSnapshotArn"])
        except Exception as exc:
            if error_code(exc) == "DBClusterSnapshotAlreadyExistsFault":
                found = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"]
                return str(found[0]["DBClusterSnapshotArn"])
            raise translate(exc, f"taking snapshot {name} of {cluster_id(cluster_arn)}") from None

    def rebuild(self, database: str, region: str) -> Any:
        """Aurora rebuilds the old writer as a secondary itself; this refuses without its copy kept
        (invariant 2), then waits until Aurora lists it as a connected secondary."""
        record = self.diverged(database, region)
        if not record.preserved_snapshot:
            raise ConflictError(f"the diverged copy of {database} in {region} is not kept yet: preserve it first "
                                "(a rebuild would lose what it alone holds)")
        deadline = self.clock() + self.aws.failover_timeout_s
        while True:
            member = self.view(database, max_age_s=0).members.get(region)
            if member is not None and not member.get("IsWriter") and \
                    member.get("SynchronizationStatus", "connected") == "connected":
                self.records.update(record, rebuilt=True)
                return {"database": database, "region": region, "rebuilt_by": "aurora",
                        "kept": record.preserved_snapshot}
            if self.clock() >= deadline:
                what = "not a member" if member is None else member.get("SynchronizationStatus", "?")
                raise OperationTimeout(f"Aurora has not rebuilt {database} in {region} as a secondary ({what}) after "
                                       f"{self.aws.failover_timeout_s:g} s; if its cluster was removed from the "
                                       "global cluster, add it back (see docs/aws.md)")
            self.sleep(self.aws.poll_interval_s)

    # --- snapshots and restores ------------------------------------------------------------------------------

    def snapshot(self, database: str, region: str, label: str) -> Any:
        """A cluster snapshot of the writer named after ``label``; the existing one when it is there."""
        if region not in self.regions:
            raise InputError(f"unknown region {region!r}; this deployment has {', '.join(self.regions)}")
        view = self.view(database)
        if view.settled_writer is None:
            raise ConflictError(f"{database} has no settled writer to snapshot (a promotion is in progress)")
        name = snapshot_name(database, label)
        arn = self._take_snapshot(self._rds(view.settled_writer), self._db(database).clusters[view.settled_writer],
                                  name)
        return {"database": database, "snapshot": arn, "region": view.settled_writer}

    def restore(self, database: str, snapshot: str, name: str, target_time: str | None,
                target_lsn: str | None) -> Any:
        """A new cluster ``name`` with one instance, from ``snapshot`` or (``latest``) the writer at
        ``target_time``; Aurora restores to a time, never to an LSN."""
        if target_lsn:
            raise InputError("Aurora restores to a point in time, not to a WAL position: give target_time")
        view = self.view(database)
        region = view.settled_writer
        if region is None:
            raise ConflictError(f"{database} has no settled writer to restore from")
        rds = self._rds(region)
        cluster = name.lower().replace("_", "-")
        if snapshot == "latest":
            restore_cluster(rds, cluster, self.placement(region),
                            source_cluster=cluster_id(self._db(database).clusters[region]), restore_time=target_time)
        else:
            restore_cluster(rds, cluster, self.placement(region), snapshot=snapshot)
        instance = add_instance(rds, cluster, self.aws.reconcile.instance_class)
        found = describe_cluster(rds, cluster) or {}
        return {"database": database, "cluster": cluster, "instance": instance, "region": region,
                "status": found.get("Status"), "endpoint": found.get("Endpoint")}

    def placement(self, region: str) -> Placement:
        where = self.aws.regions[region]
        return Placement(where.subnet_group, where.security_group_ids, self.aws.reconcile.kms_key_id)

    def waiting(self) -> Waiting:
        return Waiting(self.aws.poll_interval_s, self.aws.reconcile.available_timeout_s, self.sleep, self.clock)


def snapshot_name(database: str, label: str) -> str:
    """Cluster snapshot names are letters, digits and single hyphens, starting with a letter."""
    cleaned = "".join(c if c.isalnum() else "-" for c in label).strip("-")
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return f"regionctl-{database}-{cleaned}"[:255]


def _aware(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return _aware(datetime.fromisoformat(value))
    return datetime.min.replace(tzinfo=UTC)
