"""The outbox relay: delivers OrderCreated events written in the order's own transaction, at least once.

Each region's orders service runs one relay against the current writer. A relay claims due events with
``FOR UPDATE SKIP LOCKED`` and a lease (so two relays never hold the same event, and a relay that dies mid-batch
only delays its events until the lease ends), delivers them over HTTP, then marks them delivered. A crash or a
failover between delivery and marking means the event is delivered again: consumers dedupe on the event id.
Because the relay reaches the writer through the kit's retrying database, it keeps working after a failover.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from regionctl.shop.kit.db import Conn, Database
from regionctl.shop.kit.http import CannotConnect, HttpExchange, NoAnswerInTime, SyncExchange
from regionctl.shop.kit.retry import backoff_s

log = logging.getLogger(__name__)
LEASE_S = 30


@dataclass(frozen=True)
class OutboxEvent:
    event_id: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class RelayResult:
    claimed: int
    delivered: int
    failed: int


class OutboxStore(Protocol):
    def claim(self, batch: int, worker: str) -> list[OutboxEvent]: ...
    def delivered(self, event_ids: list[str]) -> None: ...
    def failed(self, event_id: str, retry_in_s: float, error: str) -> None: ...
    def pending(self) -> int: ...


Deliver = Callable[[OutboxEvent], None]  # raises when the consumer did not take the event


def retry_delay_s(attempts: int) -> float:
    """How long a failed event waits before its next delivery attempt (pure; grows to a minute)."""
    return backoff_s(attempts, base_s=0.5, cap_s=60.0, jitter=0.0)


class PgOutbox:
    def __init__(self, writer: Database) -> None:
        self.writer = writer

    def claim(self, batch: int, worker: str) -> list[OutboxEvent]:
        def run(conn: Conn) -> list[OutboxEvent]:
            rows = conn.execute(
                "with due as (select event_id from order_outbox where delivered_at is null "
                "and next_attempt_at <= now() and (claimed_until is null or claimed_until < now()) "
                "order by next_attempt_at limit %s for update skip locked) "
                "update order_outbox o set claimed_until = now() + make_interval(secs => %s), claimed_by = %s, "
                "attempts = o.attempts + 1 from due where o.event_id = due.event_id "
                "returning o.event_id, o.payload, o.attempts, o.created_at",
                (batch, LEASE_S, worker),
            ).fetchall()
            rows.sort(key=lambda r: r["created_at"])
            return [OutboxEvent(str(r["event_id"]), r["payload"], r["attempts"]) for r in rows]

        return self.writer.run(run)

    def delivered(self, event_ids: list[str]) -> None:
        self.writer.run(lambda conn: conn.execute(
            "update order_outbox set delivered_at = now(), claimed_until = null, last_error = null "
            "where event_id = any(%s::uuid[])", (event_ids,)))

    def failed(self, event_id: str, retry_in_s: float, error: str) -> None:
        self.writer.run(lambda conn: conn.execute(
            "update order_outbox set claimed_until = null, last_error = %s, "
            "next_attempt_at = now() + make_interval(secs => %s) where event_id = %s",
            (error[:500], retry_in_s, event_id)))

    def pending(self) -> int:
        row = self.writer.run(lambda conn: conn.execute(
            "select count(*) as n from order_outbox where delivered_at is null").fetchone())
        return int(row["n"]) if row else 0


class HttpDelivery:
    """Delivers an event by POSTing it to the consumer's URL; any 2xx means the consumer has it."""

    def __init__(self, url: str, timeout_s: float = 3.0, exchange: SyncExchange | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self.path = parts.path or "/"
        self.exchange = exchange or HttpExchange(f"{parts.scheme}://{parts.netloc}", read_timeout_s=timeout_s)

    def __call__(self, event: OutboxEvent) -> None:
        try:
            answer = self.exchange.request("POST", self.path, json=event.payload)
        except (CannotConnect, NoAnswerInTime, OSError) as exc:
            raise RuntimeError(f"{self.url}: {exc or type(exc).__name__}") from None
        if answer.status_code >= 300:
            raise RuntimeError(f"consumer answered HTTP {answer.status_code}: {answer.text[:200]}")

    def close(self) -> None:
        self.exchange.close()


class OutboxRelay:
    """Claims, delivers and marks events in a loop; ``wake()`` after a local insert skips the wait."""

    def __init__(self, store: OutboxStore, deliver: Deliver, worker: str, *, batch: int = 20,
                 interval_s: float = 0.5, on_result: Callable[[RelayResult, int | None], None] | None = None):
        self.store = store
        self.deliver = deliver
        self.worker = worker
        self.batch = batch
        self.interval_s = interval_s
        self.on_result = on_result
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def run_once(self) -> RelayResult:
        events = self.store.claim(self.batch, self.worker)
        done: list[str] = []
        failed = 0
        for event in events:
            try:
                self.deliver(event)
                done.append(event.event_id)
            except Exception as exc:
                failed += 1
                delay = retry_delay_s(event.attempts)
                log.warning("event %s not delivered (attempt %d, retry in %.1fs): %s", event.event_id,
                            event.attempts, delay, exc)
                self.store.failed(event.event_id, delay, str(exc))
        if done:
            self.store.delivered(done)
        return RelayResult(len(events), len(done), failed)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                result = self.run_once()
                failures = 0
                self.last_error = None
                if self.on_result is not None:
                    self.on_result(result, None if result.claimed else self.store.pending())
                if result.claimed == self.batch and not result.failed:
                    continue  # a full batch: more may be waiting
                wait = self.interval_s
            except Exception as exc:  # the writer is away: keep trying, more slowly
                failures += 1
                self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                wait = backoff_s(failures, base_s=self.interval_s, cap_s=5.0)
                log.warning("outbox relay cannot reach the writer: %s", self.last_error)
            self._wake.wait(wait)
            self._wake.clear()
