"""One replication direction as a long-lived process: ship this region's changes to the other region's store.

    python -m regionctl.regionalstore.replicator --source DSN --target DSN --source-region A --target-region B

Each step: obey the pause flag, read a batch after the cursor, then, holding the direction's outbound lock (shared)
at the source and having checked the flag again, apply it at the target in one transaction with the cursor,
acknowledge at the source, release. Pausing takes the same lock exclusively, so once ``pause()`` returns no batch is
in flight. The replicator sleeps until a local write commits (LISTEN/NOTIFY) or a short poll interval passes.
Any database error drops the connections and retries with backoff; the cursor is re-read from the target, so
nothing is lost or repeated. DSNs may also come from REGIONALSTORE_SOURCE_DSN / REGIONALSTORE_TARGET_DSN
(keeps passwords out of argv).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from regionctl.errors import RegionctlError
from regionctl.regionalstore import replication as rep
from regionctl.regionalstore import schema
from regionctl.regionalstore.items import check_region
from regionctl.regionalstore.metrics import ReplicatorMetrics
from regionctl.regionalstore.pool import connect, describe_dsn

log = logging.getLogger("regionctl.regionalstore.replicator")


@dataclass(frozen=True)
class ReplicatorConfig:
    source_dsn: str
    target_dsn: str
    source_region: str
    target_region: str
    batch_size: int = 500
    poll_interval_s: float = 0.05  # fallback only: local writes wake the replicator by NOTIFY
    heartbeat_interval_s: float = 1.0
    max_backoff_s: float = 2.0
    keep_lag_samples: int = 5000

    @property
    def direction(self) -> str:
        return f"{self.source_region}->{self.target_region}"


@dataclass(frozen=True)
class Step:
    shipped: int
    paused: bool


class Replicator:
    def __init__(self, config: ReplicatorConfig, metrics: ReplicatorMetrics | None = None) -> None:
        check_region(config.source_region)
        check_region(config.target_region)
        self.config = config
        self.metrics = metrics or ReplicatorMetrics(config.source_region, config.target_region)
        self._source: psycopg.Connection[Any] | None = None
        self._target: psycopg.Connection[Any] | None = None
        self._listener: psycopg.Connection[Any] | None = None
        self._cursor = rep.Cursor()
        self._was_paused: bool | None = None
        self._last_heartbeat = 0.0

    # ----- connections --------------------------------------------------------------------------------------
    def _connect(self) -> tuple[psycopg.Connection[Any], psycopg.Connection[Any]]:
        cfg = self.config
        if self._source is None or self._source.closed or self._source.broken:
            conn = connect(cfg.source_dsn, application_name=f"{rep.SHIP_APP} {cfg.direction}")
            schema.migrate(conn, cfg.source_region)
            rep.ensure_outbound(conn, cfg.target_region)
            self._source = conn
        if self._listener is None or self._listener.closed or self._listener.broken:
            self._listener = connect(cfg.source_dsn, application_name=f"{rep.LISTEN_APP} {cfg.direction}")
            rep.listen(self._listener)
        if self._target is None or self._target.closed or self._target.broken:
            conn = connect(cfg.target_dsn, application_name=f"{rep.APPLY_APP} {cfg.direction}")
            try:
                schema.migrate(conn, cfg.target_region)
                rep.claim_direction(conn, cfg.source_region)
                self._cursor = rep.read_cursor(conn, cfg.source_region)
            except BaseException:
                conn.close()
                raise
            self._target = conn
            log.info("%s: connected to %s (source) and %s (target), resuming after %s", cfg.direction,
                     describe_dsn(cfg.source_dsn), describe_dsn(cfg.target_dsn), self._cursor)
        self.metrics.up.set(1)
        return self._source, self._target

    def close(self) -> None:
        for conn in (self._source, self._target, self._listener):
            if conn is not None:
                conn.close()
        self._source = self._target = self._listener = None
        self.metrics.up.set(0)

    # ----- one step -----------------------------------------------------------------------------------------
    def step(self) -> Step:
        source, target = self._connect()
        cfg = self.config
        if self._paused(source):
            return Step(0, True)
        changes = rep.read_changes(source, cfg.source_region, self._cursor, cfg.batch_size)
        if not changes:
            return Step(0, False)
        rep.lock_outbound_shared(source, cfg.target_region)
        try:
            if self._paused(source):  # paused while we read: pause() now waits for nobody, ship nothing
                return Step(0, True)
            read_at = time.time()
            for change in changes:
                self.metrics.visible_lag.observe(max(0.0, read_at - change.origin_ts.timestamp()))
            result = rep.apply_changes(target, cfg.source_region, changes)
            self.metrics.apply_seconds.observe(time.time() - read_at)
            self._cursor = result.cursor
            self._record(result)
            rep.acknowledge(source, cfg.target_region, result.cursor)
            self._last_heartbeat = time.monotonic()
            return Step(len(changes), False)
        finally:
            if not source.broken and not source.closed:
                rep.unlock_outbound_shared(source, cfg.target_region)

    def wait_for_changes(self, timeout: float) -> None:
        """Sleep until a local write commits (NOTIFY) or ``timeout`` passes."""
        listener = self._listener
        if listener is None or listener.closed or listener.broken:
            time.sleep(timeout)
            return
        for _ in listener.notifies(timeout=timeout, stop_after=1):
            pass

    def _paused(self, source: psycopg.Connection[Any]) -> bool:
        paused = rep.outbound_paused(source, self.config.target_region)
        self._note_pause(paused)
        return paused

    def heartbeat(self) -> None:
        """Every second or so: tell the source we live, and measure the backlog."""
        if time.monotonic() - self._last_heartbeat < self.config.heartbeat_interval_s:
            return
        source, target = self._connect()
        rep.acknowledge(source, self.config.target_region, None)
        rep.trim_applies(target, self.config.source_region, self.config.keep_lag_samples)
        self.metrics.backlog.set(rep.backlog(source, self.config.source_region, self._cursor))
        self._last_heartbeat = time.monotonic()

    def _note_pause(self, paused: bool) -> None:
        if paused != self._was_paused:
            log.info("%s: replication %s", self.config.direction, "paused" if paused else "running")
            self._was_paused = paused
        self.metrics.paused.set(1 if paused else 0)

    def _record(self, result: rep.BatchResult) -> None:
        now = time.time()
        m = self.metrics
        m.batches.inc()
        for outcome in result.outcomes:
            m.item(outcome.decision.action.value).inc()
            if outcome.applied:
                m.lag.observe(max(0.0, now - outcome.change.origin_ts.timestamp()))
            if outcome.decision.conflict:
                m.conflict(outcome.decision.winner).inc()
                log.info("%s: conflict on %s/%s: %s", self.config.direction, outcome.change.table,
                         outcome.change.key, outcome.decision.reason)
        m.cursor_seq.set(result.cursor.seq)
        m.last_apply.set(now)

    # ----- the loop -----------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        backoff = 0.0
        log.info("%s: replicator started", self.config.direction)
        while not stop.is_set():
            try:
                step = self.step()
                self.heartbeat()
                backoff = 0.0
                if step.shipped < self.config.batch_size:
                    self.wait_for_changes(self.config.poll_interval_s)
            except (psycopg.Error, RegionctlError) as exc:
                backoff = min(self.config.max_backoff_s, max(0.1, backoff * 2))
                self._failed(exc, backoff)
                stop.wait(backoff)
        self.close()
        log.info("%s: replicator stopped", self.config.direction)

    def _failed(self, exc: Exception, backoff: float) -> None:
        self.metrics.errors.inc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("%s: %s; retrying in %.1fs", self.config.direction, message, backoff)
        source = self._source
        self.close()
        try:  # leave the reason where `regionctl store status` shows it, if the source is reachable
            if source is not None:
                conn = connect(self.config.source_dsn, connect_timeout=2)
                with conn:
                    rep.acknowledge(conn, self.config.target_region, None, error=message[:500])
        except (psycopg.Error, RegionctlError):
            pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m regionctl.regionalstore.replicator", description=__doc__.split("\n")[0])
    p.add_argument("--source", default=os.environ.get("REGIONALSTORE_SOURCE_DSN"), help="source region's DSN")
    p.add_argument("--target", default=os.environ.get("REGIONALSTORE_TARGET_DSN"), help="target region's DSN")
    p.add_argument("--source-region", required=True)
    p.add_argument("--target-region", required=True)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--poll-interval", type=float, default=0.05,
                   help="seconds between polls when no NOTIFY arrives (a fallback)")
    p.add_argument("--keep-lag-samples", type=int, default=5000, help="recent applies kept for lag percentiles")
    p.add_argument("--metrics-port", type=int, default=None)
    p.add_argument("--metrics-host", default="127.0.0.1")
    args = p.parse_args(argv)
    for name in ("source", "target"):
        if not getattr(args, name):
            p.error(f"--{name} DSN is required (or REGIONALSTORE_{name.upper()}_DSN)")
    if args.source_region == args.target_region:
        p.error("--source-region and --target-region must differ")
    if not 1 <= args.batch_size <= 10_000:
        p.error("--batch-size must be between 1 and 10000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ReplicatorConfig(args.source, args.target, args.source_region, args.target_region,
                              batch_size=args.batch_size, poll_interval_s=args.poll_interval,
                              keep_lag_samples=args.keep_lag_samples)
    replicator = Replicator(config)
    if args.metrics_port is not None:
        replicator.metrics.serve(args.metrics_port, args.metrics_host)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    replicator.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
