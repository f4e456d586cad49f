"""The drill's own SQL client: in each region, for each global database, one thread inserting, updating and
deleting rows of ``regionctl_drill`` through the writer endpoint that region's services use (libpq finds the
writer wherever it is), and appending every acknowledged commit to a ledger. A commit whose answer never came
is indeterminate: it is not acknowledged, and the row is left alone from then on (its version is unknown).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from regionctl.drill.check import DELETE, INSERT, LEDGER_TABLE, UPDATE, LedgerAck

CREATE = (f"create table if not exists {LEDGER_TABLE} (id text primary key, version int not null, "
          "payload text not null, written_at timestamptz not null default now())")


@dataclass
class LedgerClient:
    """One region's client of one global database; ``rate`` operations per second, open loop."""

    database: str
    region: str
    dsn: str
    drill_id: str
    rate: float
    log: Path
    seed: int
    errors: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> LedgerClient:
        self._thread = threading.Thread(target=self._run, name=f"ledger-{self.database}-{self.region}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        rng = random.Random(self.seed)
        live: dict[str, int] = {}  # rows this client owns and knows the version of
        made = 0
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        with open(self.log, "a") as out:
            next_at = time.monotonic()
            while not self._stop.is_set():
                next_at = max(next_at + 1.0 / self.rate, time.monotonic() - 1.0)  # slots missed while blocked
                self._stop.wait(max(0.0, next_at - time.monotonic()))
                roll = rng.random()
                version: int | None
                if not live or roll < 0.5:
                    made += 1
                    row, op, version = f"{self.drill_id}-{self.region}-{made}", INSERT, 1
                else:
                    row = rng.choice(sorted(live))
                    op, version = (UPDATE, live[row] + 1) if roll < 0.85 else (DELETE, None)
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=2)
                    changed = _apply(conn, op, row, version)
                except psycopg.Error as exc:
                    kind = type(exc).__name__
                    self.errors[kind] = self.errors.get(kind, 0) + 1
                    live.pop(row, None)  # its state is unknown now: leave it alone
                    if conn is not None:
                        conn.close()
                    conn = None
                    continue
                if not changed:  # the writer lacks the version this client left (lost in a failover): not an ack
                    self.errors["row lost under the client"] = self.errors.get("row lost under the client", 0) + 1
                    live.pop(row, None)
                    continue
                if op == DELETE:
                    live.pop(row)
                else:
                    live[row] = version or 1
                ack = LedgerAck(self.database, row, op, version, time.time(), self.region)
                out.write(json.dumps(ack.__dict__, separators=(",", ":")) + "\n")
                out.flush()
        if conn is not None:
            conn.close()


def _apply(conn: psycopg.Connection[tuple[object, ...]], op: str, row: str, version: int | None) -> bool:
    """One statement, one transaction; True if it changed the row. An update names the version it follows, so
    one that finds the row elsewhere changes nothing and is not acknowledged."""
    if op == INSERT:
        cur = conn.execute(f"insert into {LEDGER_TABLE} (id, version, payload) values (%s, 1, %s)", (row, "v1"))
    elif op == UPDATE:
        assert version is not None
        cur = conn.execute(f"update {LEDGER_TABLE} set version = %s, payload = %s, written_at = now() "
                           "where id = %s and version = %s", (version, f"v{version}", row, version - 1))
    else:
        cur = conn.execute(f"delete from {LEDGER_TABLE} where id = %s", (row,))
    return cur.rowcount == 1


def json_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one of the drill's JSONL logs; a torn last line from a killed run is skipped."""
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        try:
            yield json.loads(line)
        except ValueError:
            continue


def read_ledger(path: Path) -> list[LedgerAck]:
    """Acknowledged ledger operations."""
    return [LedgerAck(**row) for row in json_lines(path)]
