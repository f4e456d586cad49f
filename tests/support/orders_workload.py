"""An orders workload that logs every acknowledged transaction: the ground truth reconciliation is checked against.

Each transaction inserts, updates or deletes an order (and its items, a second table) and appends one row to
an event log table whose ``seq`` numbers the transactions. Writes come from one connection, so commit order is
acknowledgement order and the transactions a failover lost are exactly the acknowledged ones whose ``seq`` is
greater than the largest ``seq`` on the new writer. The one transaction whose commit was in flight when the
writer died may or may not have committed; it is kept aside in ``in_flight``.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg

SCHEMA_SQL = """
create schema if not exists {s};
create table if not exists {s}.customer_order (
    id uuid primary key, email text not null, first_name text not null, last_name text not null,
    created_on timestamptz not null default now(), total numeric(12, 2) not null, version int not null,
    note text
);
create table if not exists {s}.customer_order_item (
    order_id uuid not null references {s}.customer_order (id) on delete cascade,
    product_id text not null, name text not null, quantity int not null, unit_cost numeric(12, 2) not null,
    total_cost numeric(12, 2) not null, primary key (order_id, product_id)
);
create table if not exists {s}.order_event (seq bigint primary key, order_id uuid not null, kind text not null);
"""

Signature = frozenset[tuple[str, str, tuple[str, ...]]]


@dataclass(frozen=True)
class Ack:
    seq: int
    kind: str  # insert | update_order | update_item | delete
    order_id: str
    signature: Signature  # (table, insert|update|delete, key) of every row the transaction changed
    email: str
    total: str


@dataclass
class OrderModel:
    email: str
    total: Decimal
    version: int
    items: dict[str, int] = field(default_factory=dict)


@dataclass
class OrdersWorkload:
    dsn: str
    schema: str = "recon"
    seed: int = 7
    acked: list[Ack] = field(default_factory=list)
    in_flight: Ack | None = None
    errors: int = 0
    orders: dict[str, OrderModel] = field(default_factory=dict)
    _next_seq: int = 1
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def t(self, name: str) -> str:
        return f"{self.schema}.{name}"

    def create_schema(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(SCHEMA_SQL.format(s=self.schema))

    def run_some(self, count: int) -> None:
        """Run ``count`` transactions in the caller's thread (seeding)."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for _ in range(count):
                self._one(conn)

    def start(self) -> OrdersWorkload:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Ack]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        return list(self.acked)

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        target = len(self.acked) + count
        while len(self.acked) < target and time.monotonic() < deadline:
            if self._thread is not None and not self._thread.is_alive():
                break
            time.sleep(0.01)
        if len(self.acked) < target:
            raise AssertionError(f"workload acknowledged only {len(self.acked)} of {target} transactions")

    def _run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=2) as conn:
                while not self._stop.is_set():
                    self._one(conn)
        except psycopg.Error:
            self.errors += 1  # the writer died: stop, keeping the unacknowledged transaction aside

    def _pick_kind(self) -> str:
        if len(self.orders) < 20:
            return "insert"
        return self.rng.choices(["insert", "update_order", "update_item", "delete"], [45, 25, 15, 15])[0]

    def _one(self, conn: psycopg.Connection) -> None:
        kind = self._pick_kind()
        seq = self._next_seq
        with_items = [o for o, m in self.orders.items() if m.items]
        if kind == "update_item" and not with_items:
            kind = "update_order"
        builder = {"insert": self._insert, "update_order": self._update_order, "update_item": self._update_item,
                   "delete": self._delete}[kind]
        ack, statements, apply = builder(seq, with_items)
        statements.append((f"insert into {self.t('order_event')} values (%s, %s, %s)", (seq, ack.order_id, kind)))
        self.in_flight = ack
        with conn.transaction():
            for query, params in statements:
                conn.execute(query, params)
        self.in_flight = None
        apply()
        self.acked.append(ack)
        self._next_seq += 1

    def _sig(self, seq: int, *rows: tuple[str, str, tuple[str, ...]]) -> Signature:
        return frozenset((*rows, (self.t("order_event"), "insert", (str(seq),))))

    def _insert(self, seq: int, _: list[str]):  # type: ignore[no-untyped-def]
        oid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        items = {f"p{n}": self.rng.randint(1, 5) for n in self.rng.sample(range(1, 10), self.rng.randint(1, 3))}
        total = sum(Decimal(q) * Decimal("2.50") for q in items.values())
        email = f"c{seq}@example.com"
        stmts = [(f"insert into {self.t('customer_order')} (id, email, first_name, last_name, total, version) "
                  "values (%s, %s, %s, %s, %s, 1)", (oid, email, "Ann", "O'Neil", total))]
        stmts += [(f"insert into {self.t('customer_order_item')} values (%s, %s, %s, %s, 2.50, %s)",
                   (oid, p, f"item {p}", q, Decimal(q) * Decimal("2.50"))) for p, q in items.items()]
        sig = self._sig(seq, (self.t("customer_order"), "insert", (oid,)),
                        *((self.t("customer_order_item"), "insert", (oid, p)) for p in items))

        def apply() -> None:
            self.orders[oid] = OrderModel(email, total, 1, dict(items))
        return Ack(seq, "insert", oid, sig, email, f"{total:.2f}"), stmts, apply

    def _update_order(self, seq: int, _: list[str]):  # type: ignore[no-untyped-def]
        oid = self.rng.choice(sorted(self.orders))
        model = self.orders[oid]
        total = model.total + Decimal("1.00")
        stmts = [(f"update {self.t('customer_order')} set total = %s, version = version + 1, note = %s "
                  "where id = %s", (total, f"seq {seq}", oid))]
        sig = self._sig(seq, (self.t("customer_order"), "update", (oid,)))

        def apply() -> None:
            model.total, model.version = total, model.version + 1
        return Ack(seq, "update_order", oid, sig, model.email, f"{total:.2f}"), stmts, apply

    def _update_item(self, seq: int, with_items: list[str]):  # type: ignore[no-untyped-def]
        oid = self.rng.choice(sorted(with_items))
        model = self.orders[oid]
        product = self.rng.choice(sorted(model.items))
        qty = model.items[product] + 1
        total = model.total + Decimal("2.50")
        stmts = [(f"update {self.t('customer_order_item')} set quantity = %s, total_cost = %s "
                  "where order_id = %s and product_id = %s", (qty, Decimal(qty) * Decimal("2.50"), oid, product)),
                 (f"update {self.t('customer_order')} set total = %s, version = version + 1 where id = %s",
                  (total, oid))]
        sig = self._sig(seq, (self.t("customer_order_item"), "update", (oid, product)),
                        (self.t("customer_order"), "update", (oid,)))

        def apply() -> None:
            model.items[product], model.total, model.version = qty, total, model.version + 1
        return Ack(seq, "update_item", oid, sig, model.email, f"{total:.2f}"), stmts, apply

    def _delete(self, seq: int, _: list[str]):  # type: ignore[no-untyped-def]
        oid = self.rng.choice(sorted(self.orders))
        model = self.orders[oid]
        stmts = [(f"delete from {self.t('customer_order')} where id = %s", (oid,))]
        sig = self._sig(seq, (self.t("customer_order"), "delete", (oid,)),
                        *((self.t("customer_order_item"), "delete", (oid, p)) for p in model.items))

        def apply() -> None:
            del self.orders[oid]
        return Ack(seq, "delete", oid, sig, model.email, f"{model.total:.2f}"), stmts, apply
