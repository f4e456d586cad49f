"""Database access that survives a failover: a small pool, a hard time limit per operation, and retries.

``Database.run(fn)`` runs ``fn(conn)`` in one transaction on a pooled connection. A connection error, a
read-only error (the writer moved) or a timeout drops the connection and runs ``fn`` again on a fresh one, with
backoff, until a deadline. ``fn`` must therefore be safe to run twice (the orders insert carries an idempotency
key; migrations are idempotent). The time limit matters because a partitioned link may swallow bytes without
closing the socket: the operation runs in a worker thread and the caller stops waiting after ``op_timeout_s``;
that worker rolls back and closes its connection whenever the socket finally returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from regionctl.errors import DatabaseError, OperationTimeout
from regionctl.shop.kit.retry import backoff_s, classify
from regionctl.shop.kit.settings import ServiceSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
Conn = psycopg.Connection[dict[str, Any]]
RetryHook = Callable[[str, str], None]  # (database name, reason)


def describe_dsn(dsn: str) -> str:
    """Hosts, ports and database of a DSN, never its password: safe for logs and errors."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparseable dsn>"
    return f"{parts.get('dbname', '?')}@{parts.get('host', '?')}:{parts.get('port', '5432')}"


class _Abandoned(Exception):
    """Raised inside the worker when the caller gave up: roll back instead of committing late."""


class Database:
    """One logical database reached through one DSN (possibly multi-host)."""

    def __init__(self, dsn: str, name: str, *, connect_timeout_s: float = 2.0, deadline_s: float = 8.0,
                 op_timeout_s: float = 5.0, max_idle: int = 4, max_age_s: float = 60.0, workers: int = 16,
                 on_retry: RetryHook | None = None, application_name: str = "regionctl-shop") -> None:
        self.dsn = dsn
        self.name = name
        self.connect_timeout_s = connect_timeout_s
        self.deadline_s = deadline_s
        self.op_timeout_s = op_timeout_s
        self.max_idle = max_idle
        self.max_age_s = max_age_s
        self.on_retry = on_retry
        self.application_name = application_name
        self._idle: list[tuple[float, Conn]] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"db-{name}")
        self._closed = False

    def __repr__(self) -> str:
        return f"Database({self.name}, {describe_dsn(self.dsn)})"

    # ----- public ------------------------------------------------------------------------------------------
    def run(self, fn: Callable[[Conn], T], *, deadline_s: float | None = None) -> T:
        """``fn(conn)`` in a transaction, retried on retryable failures until ``deadline_s`` has passed."""
        deadline = self.deadline_s if deadline_s is None else deadline_s
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(fn)
            except (psycopg.Error, OperationTimeout) as exc:
                decision = classify(exc)
                if not decision.retry:
                    raise
                delay = backoff_s(attempt)
                if time.monotonic() - started + delay > deadline:
                    raise DatabaseError(
                        f"{self.name} ({describe_dsn(self.dsn)}): {decision.reason} after {attempt} attempt(s): "
                        f"{_first_line(exc)}"
                    ) from None
                log.warning("retrying %s: %s", self.name, decision.reason,
                            extra={"database": self.name, "attempt": attempt, "error": _first_line(exc)})
                if self.on_retry is not None:
                    self.on_retry(self.name, decision.reason)
                time.sleep(delay)

    def probe(self) -> str:
        """One quick attempt at ``select``; a detail for readiness (role of the member answering)."""
        def query(conn: Conn) -> str:
            row = conn.execute("select pg_is_in_recovery() as standby").fetchone()
            return "standby" if row and row["standby"] else "writer"

        return self.run(query, deadline_s=0)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            idle, self._idle = self._idle, []
        for _, conn in idle:
            conn.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ----- internals ---------------------------------------------------------------------------------------
    def _attempt(self, fn: Callable[[Conn], T]) -> T:
        if self._closed:
            raise DatabaseError(f"{self.name} is closed")
        abandoned = threading.Event()
        future = self._executor.submit(self._in_transaction, fn, abandoned)
        try:
            return future.result(timeout=self.op_timeout_s + self.connect_timeout_s)
        except FutureTimeout:
            abandoned.set()
            future.cancel()
            raise OperationTimeout(f"{self.name}: no answer within {self.op_timeout_s:g}s") from None

    def _in_transaction(self, fn: Callable[[Conn], T], abandoned: threading.Event) -> T:
        conn = self._acquire()
        reusable = False
        try:
            with conn.transaction():
                result = fn(conn)
                if abandoned.is_set():
                    raise _Abandoned()
            reusable = True
            return result
        except psycopg.Error as exc:
            reusable = not classify(exc).reconnect
            raise
        except _Abandoned:
            raise OperationTimeout(f"{self.name}: abandoned by its caller") from None
        except Exception:
            reusable = True  # the application refused something; the connection is fine
            raise
        finally:
            if reusable and not abandoned.is_set() and not conn.broken and not conn.closed:
                self._release(conn)
            else:
                conn.close()

    def _acquire(self) -> Conn:
        with self._lock:
            while self._idle:
                born, conn = self._idle.pop()
                if time.monotonic() - born < self.max_age_s and not conn.closed and not conn.broken:
                    conn._regionctl_born = born  # type: ignore[attr-defined]
                    return conn
                conn.close()
        conn = psycopg.connect(
            self.dsn, autocommit=True, row_factory=dict_row, connect_timeout=max(1, round(self.connect_timeout_s)),
            application_name=self.application_name, keepalives=1, keepalives_idle=5, keepalives_interval=2,
            keepalives_count=3,
        )
        conn._regionctl_born = time.monotonic()  # type: ignore[attr-defined]
        return conn

    def _release(self, conn: Conn) -> None:
        born = getattr(conn, "_regionctl_born", time.monotonic())
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle:
                self._idle.append((born, conn))
                return
        conn.close()


def open_database(settings: ServiceSettings, dsn_field: str, name: str, service: str,
                  on_retry: RetryHook | None = None) -> Database:
    """A Database configured from the service's settings (timeouts, deadline) for the DSN in ``dsn_field``."""
    return Database(
        settings.dsn(dsn_field), name, connect_timeout_s=settings.db_connect_timeout_s,
        deadline_s=settings.db_retry_deadline_s, op_timeout_s=settings.db_op_timeout_s, on_retry=on_retry,
        application_name=f"shop-{service}-{settings.region}",
    )


def open_global_database(settings: ServiceSettings, database: str, service: str,
                         on_retry: RetryHook | None = None) -> GlobalDatabase:
    """Writer and local reader of a global database (``orders`` or ``catalog``) from the service's settings."""
    writer = open_database(settings, f"{database}_writer_dsn", f"{database}-writer", service, on_retry)
    reader = open_database(settings, f"{database}_reader_dsn", f"{database}-reader", service, on_retry)
    return GlobalDatabase(writer, reader)


class GlobalDatabase:
    """A global database as one service sees it: writes to the writer, reads to the local member.

    Reads fall back to the writer when the local member does not answer, so a dead local member slows reads
    down instead of failing them.
    """

    def __init__(self, writer: Database, reader: Database, reader_deadline_s: float = 1.0) -> None:
        self.writer = writer
        self.reader = reader
        self.reader_deadline_s = reader_deadline_s

    def write(self, fn: Callable[[Conn], T]) -> T:
        return self.writer.run(fn)

    def read(self, fn: Callable[[Conn], T], deadline_s: float | None = None) -> T:
        """``fn`` on the local member, else on the writer; ``deadline_s=0`` tries each once (readiness)."""
        try:
            return self.reader.run(fn, deadline_s=self.reader_deadline_s if deadline_s is None else deadline_s)
        except DatabaseError as exc:
            log.warning("local reader %s unavailable, reading from the writer: %s", self.reader.name, exc)
            return self.writer.run(fn, deadline_s=deadline_s)

    def close(self) -> None:
        self.writer.close()
        self.reader.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
