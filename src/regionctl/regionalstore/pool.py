"""A small thread-safe pool of psycopg connections: enough for sync FastAPI routes without another dependency.

Connections are made lazily, up to ``max_size``; one that broke (server restart, network cut) is thrown away on
its way back, so the next caller gets a fresh one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from regionctl.errors import DatabaseError, OperationTimeout


def describe_dsn(dsn: str) -> str:
    """host:port/dbname of a DSN, for messages; never the password."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparseable DSN>"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def connect(dsn: str, connect_timeout: float = 5.0, **kwargs: Any) -> psycopg.Connection[Any]:
    """An autocommit connection with dict rows, or DatabaseError naming the server (never the password)."""
    try:
        return psycopg.connect(dsn, autocommit=True, row_factory=dict_row,
                               connect_timeout=max(1, int(connect_timeout)), **kwargs)
    except psycopg.Error as exc:
        raise DatabaseError(f"regional store at {describe_dsn(dsn)}: {str(exc).strip()}") from None


class ConnectionPool:
    def __init__(self, dsn: str, max_size: int = 8, connect_timeout: float = 5.0, wait_timeout: float = 30.0) -> None:
        if max_size < 1:
            raise ValueError("pool max_size must be at least 1")
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        self.wait_timeout = wait_timeout
        self._slots = threading.BoundedSemaphore(max_size)
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self, fresh: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """Borrow a connection; ``fresh`` skips idle ones (used to retry after a stale one broke)."""
        if self._closed:
            raise DatabaseError(f"regional store at {describe_dsn(self.dsn)}: the store is closed")
        if not self._slots.acquire(timeout=self.wait_timeout):
            raise OperationTimeout(f"no free connection to {describe_dsn(self.dsn)} within {self.wait_timeout:.0f}s")
        conn: psycopg.Connection[Any] | None = None
        try:
            conn = None if fresh else self._take_idle()
            if conn is None:
                conn = connect(self.dsn, self.connect_timeout)
            yield conn
        finally:
            if conn is not None:
                self._give_back(conn)
            self._slots.release()

    def _take_idle(self) -> psycopg.Connection[Any] | None:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and not conn.broken:
                    return conn
        return None

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        healthy = not conn.closed and not conn.broken and conn.info.transaction_status == pq.TransactionStatus.IDLE
        with self._lock:
            if healthy and not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
