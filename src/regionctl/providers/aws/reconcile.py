"""The missing-transaction report on Aurora: the old writer's failover snapshot restored as a throwaway cluster,
compared with the new writer by the same code as ``reconcile compare``, then deleted.

The reference restored the snapshot, ran a Lambda that failed as committed, and left the clusters running. Here
the throwaway cluster is deleted after the report whether the report succeeded or not (``keep_cluster`` keeps
it for an operator on purpose), the report is stored like every other and replayed with an approver's name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from regionctl.config import Settings
from regionctl.errors import ConfigError, ConflictError, InputError
from regionctl.providers.aws.aurora import AuroraDatabases, snapshot_id
from regionctl.providers.aws.clients import ClientFactory
from regionctl.providers.aws.records import Promotion
from regionctl.providers.aws.restore import ENGINE, add_instance, delete_restored, restore_cluster, wait_available
from regionctl.reconcile import external, lens
from regionctl.reconcile.store import ReportStore

log = logging.getLogger(__name__)
Compare = Callable[..., Any]
Replay = Callable[..., Any]


class AuroraReconciler:
    """``Reconciler`` over Aurora snapshots and two libpq connection strings."""

    def __init__(self, settings: Settings, factory: ClientFactory, databases: AuroraDatabases,
                 compare: Compare = external.compare, replay_to: Replay = external.replay_to,
                 progress: Callable[[str], None] = lambda _: None) -> None:
        if settings.aws is None:
            raise InputError("provider 'aws' needs [aws] settings")
        self.settings = settings
        self.aws = settings.aws
        self.factory = factory
        self.databases = databases
        self.compare = compare
        self.replay_to = replay_to
        self.progress = progress

    def _failover_from(self, database: str, region: str) -> Promotion:
        record = self.databases.records.last(database)
        if record is None or record.planned or record.from_region != region:
            raise ConflictError(f"no failover of {database} away from {region} is recorded: a switchover loses "
                                "nothing, and a failover made outside regionctl has no record to report on")
        return record

    def _dsn(self, database: str, region: str) -> str:
        dsn = self.aws.databases[database].dsn.get(region)
        if not dsn:
            raise ConfigError(f"aws.databases.{database}.dsn.{region} is not set: the report reads the new writer "
                              "over libpq")
        return dsn

    def report(self, database: str, region: str) -> Any:
        record = self._failover_from(database, region)
        if record.report_id:
            return ReportStore(self.settings.root).load(record.report_id).summary()
        new_dsn = self._dsn(database, record.to_region)
        engine = self.databases.view(database).engine
        if engine and engine != ENGINE:
            raise ConfigError(f"global cluster of {database} runs {engine}: the report reads Aurora PostgreSQL only")
        if not record.preserved_snapshot:  # Pending while the old region does not answer
            self.databases.preserve(database, region)
            record = self._failover_from(database, region)
        snapshot = record.preserved_snapshot
        rds = self.factory("rds", region)  # the snapshot's region
        name = f"regionctl-recon-{database}-{record.stamp}"
        report: Any = None
        instance = f"{name}-1"
        try:
            self.progress(f"restoring {snapshot} as {name}")
            restore_cluster(rds, name, self.databases.placement(region), snapshot=snapshot_id(snapshot or ""))
            instance = add_instance(rds, name, self.aws.reconcile.instance_class)
            restored = wait_available(rds, name, instance, self.databases.waiting(), self.progress)
            old_dsn = (f"host={restored.endpoint} port={restored.port or 5432} "
                       f"dbname={self.aws.databases[database].database_name or database} "
                       f"{self.aws.reconcile.connect_options}").strip()
            report = self.compare(old_dsn, new_dsn, database, self.settings.root, method="auto",
                                  lenses=lens.configured(self.settings.workload.lenses, database),
                                  progress=self.progress, sides=(region, record.to_region))
            self.databases.records.update(record, report_id=report.id)
        finally:
            deleted = self._clean_up(rds, name, instance, failed=report is None)
        return {**report.summary(), "throwaway_cluster": name, "deleted": deleted}

    def _clean_up(self, rds: Any, name: str, instance: str, failed: bool) -> list[str]:
        if self.aws.reconcile.keep_cluster:
            log.warning("keeping restored cluster %s (reconcile.keep_cluster): delete it when done", name)
            return []
        try:
            return delete_restored(rds, name, instance)
        except Exception as exc:
            if failed:  # the report's own failure is the one to see; say the cluster is left
                log.error("the report failed and restored cluster %s could not be deleted: %s", name, exc)
                return []
            raise ConflictError(f"the report is stored but restored cluster {name} was not deleted: {exc}; "
                                f"delete it: aws rds delete-db-cluster --db-cluster-identifier {name} "
                                "--skip-final-snapshot") from None

    def replay(self, report_id: str, approved_by: str) -> Any:
        report = ReportStore(self.settings.root).load(report_id)
        return self.replay_to(self._dsn(report.database, report.new_writer), self.settings.root, report_id,
                              approved_by, policies=self.settings.reconcile.policies)
