"""The replicator's Prometheus metrics, in a registry of its own (several replicators can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ReplicatorMetrics:
    def __init__(self, source: str, target: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = {"source": source, "target": target}
        names = list(labels)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, names, registry=self.registry).labels(**labels)

        self.lag = Histogram("regionalstore_replication_lag_seconds",
                             "Write at the origin to apply at the target, per applied item", names,
                             buckets=LAG_BUCKETS, registry=self.registry).labels(**labels)
        self.apply_seconds = Histogram("regionalstore_replication_apply_seconds",
                                       "Duration of one batch apply at the target (one transaction)", names,
                                       buckets=LAG_BUCKETS, registry=self.registry).labels(**labels)
        self.visible_lag = Histogram("regionalstore_replication_read_lag_seconds",
                                     "Write at the origin to being read by the replicator, per item", names,
                                     buckets=LAG_BUCKETS, registry=self.registry).labels(**labels)
        self._items = Counter("regionalstore_replicated_items_total", "Items shipped, by what the target did",
                              [*names, "action"], registry=self.registry)
        self._conflicts = Counter("regionalstore_conflicts_total", "Concurrent writes met while applying",
                                  [*names, "winner"], registry=self.registry)
        self._labels = labels
        self.batches = Counter("regionalstore_replication_batches_total", "Batches applied", names,
                               registry=self.registry).labels(**labels)
        self.errors = Counter("regionalstore_replication_errors_total", "Failed replication steps", names,
                              registry=self.registry).labels(**labels)
        self.paused = gauge("regionalstore_replication_paused", "1 while this direction is paused")
        self.backlog = gauge("regionalstore_replication_backlog", "Local changes not yet applied at the target")
        self.cursor_seq = gauge("regionalstore_replication_cursor_seq", "Seq of the last change applied at target")
        self.last_apply = gauge("regionalstore_replication_last_apply_timestamp_seconds", "Unix time of last apply")
        self.up = gauge("regionalstore_replication_connected", "1 while both databases are reachable")

    def item(self, action: str) -> Counter:
        return self._items.labels(**self._labels, action=action)

    def conflict(self, winner: str) -> Counter:
        return self._conflicts.labels(**self._labels, winner=winner)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
