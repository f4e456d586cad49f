"""A writer that logs every acknowledged commit: the ground truth drills compare databases against."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psycopg


@dataclass
class AckingWriter:
    """Inserts one row per transaction into ``table`` through ``dsn`` and records the ids it saw committed.

    On an error it reconnects and retries the same id (``on conflict do nothing``), so a commit whose
    acknowledgement was lost is never counted twice and never counted unless acknowledged.
    """

    dsn: str
    table: str
    acked: list[int] = field(default_factory=list)
    acked_at: list[float] = field(default_factory=list)  # epoch seconds each acknowledgement arrived
    errors: int = 0
    next_id: int = 1
    stop_on_error: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def create_table(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"create table if not exists {self.table} (id bigint primary key, note text, "
                         "at timestamptz not null default clock_timestamp())")

    def start(self) -> AckingWriter:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[int]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        return list(self.acked)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        target = len(self.acked) + count
        while len(self.acked) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        if len(self.acked) < target:
            raise AssertionError(f"writer acknowledged only {len(self.acked)} of {target} rows")

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=2)
                conn.execute(f"insert into {self.table} (id, note) values (%s, 'w') on conflict do nothing",
                             (self.next_id,))
                self.acked.append(self.next_id)
                self.acked_at.append(time.time())
                self.next_id += 1
            except psycopg.Error:
                self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                if self.stop_on_error:
                    return
                time.sleep(0.02)
        if conn is not None:
            conn.close()
