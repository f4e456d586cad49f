"""Missing-transaction report at scale, against the reference's method and a plain scan, in one run.

Starts a real local deployment (link emulator, both regions), loads N orders with 1-3 items each on the orders
writer, lets the standby and the reconciliation slot catch up, partitions the link, writes 1% more orders (plus
updates and deletes of existing ones) that the standby never receives, fails over, and keeps the old writer's
copy. Then, each timed with its peak memory (RSS growth of this process, sampled every 5 ms):

- our report: ``reconcile.service.report`` end to end (capture = copy the preserved data directory and start the
  reconciliation instance; then decoding, classification, conflicts, schema diff, lens, storing JSON/CSV/HTML);
- the reference's method: read every order id from both sides, set difference, then read the missing orders
  (from the copy: the reference reads them from the new writer, where they cannot be);
- the floor: ``count(*)`` of both tables on both sides;
- a bound: only decoding the lost stretch, parsing each row change once and writing them as JSON, which any
  Python report has to do at least (it shows how much of the floor budget that alone takes).

The reference and the floor run against a reconciliation instance already started, so compare them with our
report's analysis time (total minus capture); the capture time is printed too.

After the failover the new writer changes half of the orders the lost updates and deletes touched, so the report
has conflicts. Then replay throughput on the new writer, as ``replay --dry-run`` (every write made, then rolled
back, so each run starts from the same state): without policies (conflicts refused) and with merge policies
(orders keep the new writer's values, item quantities add up), next to its floor: reading each changed row by
key once.

    .venv/bin/python benchmarks/reconcile.py               # 1,000,000 orders, 1% lost
    .venv/bin/python benchmarks/reconcile.py --orders 20000
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.deploy import running_deployment  # noqa: E402

from regionctl.config import MergePolicySettings  # noqa: E402
from regionctl.globaldb.members import RECON_SLOT  # noqa: E402
from regionctl.reconcile import service  # noqa: E402
from regionctl.reconcile.capture import from_copy  # noqa: E402
from regionctl.reconcile.decode import PEEK_OPTIONS  # noqa: E402
from regionctl.reconcile.model import Report  # noqa: E402
from regionctl.reconcile.testdecoding import parse_change  # noqa: E402
from regionctl.runtime.network import deployment_network  # noqa: E402

EAST, WEST = "us-east-1", "us-west-2"
T = TypeVar("T")

SCHEMA = """
create table customer_order (
    id uuid primary key, email text not null, first_name text not null, last_name text not null,
    created_on timestamptz not null default now(), total numeric(12, 2) not null
);
create table customer_order_item (
    order_id uuid not null references customer_order (id) on delete cascade, product_id text not null,
    quantity int not null, unit_cost numeric(12, 2) not null, total_cost numeric(12, 2) not null, name text not null,
    primary key (order_id, product_id)
);
alter table customer_order_item replica identity full;  -- delta on quantity needs each lost change's before
"""
LOAD = """
with o as (
    insert into customer_order (id, email, first_name, last_name, created_on, total)
    select gen_random_uuid(), 'customer' || g || '@example.com', 'First' || g %% 1000, 'Last' || g %% 977,
           now() - g * interval '1 second', 9.99 * (select sum(1 + (g + k) %% 4) from generate_series(1, 1 + g %% 3) k)
    from generate_series(%s::bigint, %s::bigint) g
    returning id, email)
insert into customer_order_item (order_id, product_id, quantity, unit_cost, total_cost, name)
select o.id, 'product-' || k, 1 + (n + k) %% 4, 9.99, 9.99 * (1 + (n + k) %% 4), 'Item ' || k
from o cross join lateral (select substring(o.email from 'customer(\\d+)@')::bigint as n) x
       cross join lateral generate_series(1, 1 + x.n %% 3) k
"""
LOST_ORDER = """
with o as (insert into customer_order (id, email, first_name, last_name, total)
           values (gen_random_uuid(), %s, 'Lost', 'Order', 29.97) returning id)
insert into customer_order_item (order_id, product_id, quantity, unit_cost, total_cost, name)
select o.id, 'product-' || k, 1, 9.99, 9.99, 'Item ' || k from o cross join generate_series(1, %s) k
"""


class PeakRss:
    """Peak resident memory of this process above where it started, sampled in a thread."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 1e6


def measure(fn: Callable[[], T]) -> tuple[T, float, float]:
    with PeakRss() as rss:
        started = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - started
    return result, seconds, rss.mb


def best(fn: Callable[[int], T], repeat: int) -> tuple[T, float, float, float]:
    """The fastest of ``repeat`` runs (a shared machine adds noise, never speed): result, s, peak MB, CPU s."""
    runs = []
    for i in range(repeat):
        cpu = time.process_time()
        result, seconds, mb = measure(lambda i=i: fn(i))  # type: ignore[misc]
        runs.append((result, seconds, mb, time.process_time() - cpu))
    return min(runs, key=lambda r: r[1])


def _kept(reports: list[Report], report: Report) -> Report:
    reports.append(report)
    return report


def load(dsn: str, orders: int, gdbs: Any, chunk: int = 50_000) -> None:
    """Orders and their items in chunks, letting the standby and the reconciliation slot follow as they would
    follow real traffic (one huge burst can leave the slot more than max_slot_wal_keep_size behind: it is then
    invalidated, which the report survives through its fallbacks, but this benchmark measures the slot path)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        for start in range(1, orders + 1, chunk):
            conn.execute(LOAD, (start, min(orders, start + chunk - 1)))
            wait_caught_up(gdbs)
        conn.execute("analyze customer_order, customer_order_item")


def lost_writes(dsn: str, orders: int, updates: int, deletes: int) -> list[Any]:
    """One transaction per order, update and delete, pipelined: what the standby never receives. Returns the
    updated then the deleted orders' ids."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        victims = [r[0] for r in conn.execute("select id from customer_order tablesample system (1) limit %s",
                                              (updates + deletes,))]
        with conn.pipeline() as pipe:  # a sync after each statement: each its own transaction
            for n in range(orders):
                conn.execute(LOST_ORDER, (f"lost{n}@example.com", 1 + n % 3))
                pipe.sync()
            for oid in victims[:updates]:
                with conn.transaction():
                    conn.execute("update customer_order set total = total + 1 where id = %s", (oid,))
                    conn.execute("update customer_order_item set quantity = quantity + 1 where order_id = %s",
                                 (oid,))
                pipe.sync()
            for oid in victims[updates:]:
                conn.execute("delete from customer_order where id = %s", (oid,))
                pipe.sync()
    return victims


def new_writer_writes(dsn: str, victims: list[Any], updates: int) -> int:
    """After the failover the new writer changes half of the orders the lost updates and deletes touched (total
    and item quantities): each such row is a conflict, which merge policies resolve and ``manual`` refuses."""
    touched = victims[:updates:2] + victims[updates::2]
    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
        conn.execute("update customer_order set total = total + 2 where id = any(%s)", (touched,))
        conn.execute("update customer_order_item set quantity = quantity + 5 where order_id = any(%s)", (touched,))
    return len(touched)


def reference_method(copy_dsn: str, new_dsn: str) -> int:
    """The reference's reconciliation: ids in the old primary's copy that the new primary lacks."""
    with psycopg.connect(copy_dsn) as source, psycopg.connect(new_dsn) as target:
        source_ids = {r[0] for r in source.execute("select id from customer_order")}
        target_ids = {r[0] for r in target.execute("select id from customer_order")}
        missing = list(source_ids - target_ids)
        rows = source.execute("select * from customer_order where id = any(%s)", (missing,)).fetchall()
        return len(rows)


def floor(copy_dsn: str, new_dsn: str) -> int:
    total = 0
    for dsn in (copy_dsn, new_dsn):
        with psycopg.connect(dsn) as conn:
            for table in ("customer_order", "customer_order_item"):
                total += conn.execute(f"select count(*) from {table}").fetchone()[0]  # type: ignore[index]
    return total


def lost_stretch(copy_dsn: str, divergence_lsn: str, select: str) -> list[tuple[Any, ...]]:
    """``select`` over the slot's changes past the divergence point, decoded the way the report decodes them
    (the slot first advanced to the divergence point, as ``decode.read_lost`` does)."""
    with psycopg.connect(copy_dsn, autocommit=True) as conn:
        conn.execute("select pg_replication_slot_advance(%s, %s::pg_lsn) where (select confirmed_flush_lsn "
                     "from pg_replication_slots where slot_name = %s) < %s::pg_lsn",
                     (RECON_SLOT, divergence_lsn, RECON_SLOT, divergence_lsn))
        return conn.execute(f"select {select} from pg_logical_slot_peek_changes(%s, NULL, NULL, "
                            + ", ".join(["%s"] * len(PEEK_OPTIONS)) + ")", (RECON_SLOT, *PEEK_OPTIONS)).fetchall()


def server_decode(copy_dsn: str, divergence_lsn: str) -> int:
    """PostgreSQL's own share of our report: decoding the lost stretch of the slot, nothing read into Python."""
    return int(lost_stretch(copy_dsn, divergence_lsn, "count(*)")[0][0])


def python_bound(copy_dsn: str, divergence_lsn: str) -> int:
    """A lower bound for any Python report: decode the lost stretch, fetch it, turn each row-change line into
    values with one regex match (``parse_change``'s learned-shape path) and write them as JSON; no keys, no
    lookups on the new writer, no before-images, no conflicts, no lens, nothing stored."""
    rows = lost_stretch(copy_dsn, divergence_lsn, "data")
    gc.disable()  # as the report does while it builds
    try:
        changes = [c for c in (parse_change(r[0]) for r in rows) if c is not None]
        orjson.dumps(changes)
    finally:
        gc.enable()
    return len(changes)


POLICIES = [MergePolicySettings(database="orders", table="customer_order", merge="keep-new"),
            MergePolicySettings(database="orders", table="customer_order_item", columns=("quantity",), merge="delta")]


def key_reads(new_dsn: str, report: Report) -> int:
    """The replay's floor: each changed row read once by its key on the new writer, in one transaction."""
    n = 0
    with psycopg.connect(new_dsn) as conn:
        for tx in report.transactions:
            for ch in tx.changes:
                if ch.key:
                    where = " and ".join(f'"{c}" = %s' for c in ch.key)
                    conn.execute(f"select 1 from {ch.table} where {where}", list(ch.key.values())).fetchall()
                    n += 1
    return n


def replay_dry(topo: Any, network: Any, report: Report, policies: list[MergePolicySettings]) -> dict[str, Any]:
    return service.replay(topo, network, report.id, "benchmark", dry_run=True, policies=policies)


def wait_caught_up(gdbs: Any, timeout: float = 1800) -> None:
    """Standby replayed everything and the reconciliation slot followed it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = gdbs.status("orders")
        standby = status.member(WEST)
        slot = status.recon_slot or {}
        if slot.get("wal_status") == "lost":
            raise RuntimeError("the reconciliation slot was invalidated (it fell too far behind)")
        if standby.lag_bytes is not None and standby.lag_bytes < 1_000_000 and \
                (slot.get("behind_standby_bytes") or 0) < 1_000_000:
            return
        time.sleep(0.2)
    raise TimeoutError("the standby or the reconciliation slot did not catch up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--lost-percent", type=float, default=1.0)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; the fastest is printed")
    args = parser.parse_args()
    lost = max(1, int(args.orders * args.lost_percent / 100))
    updates, deletes = max(1, lost // 10), max(1, lost // 20)
    with running_deployment(latency_ms=args.latency_ms, shop=False) as dep:
        gdbs, topo = dep.gdbs, dep.topo
        cluster = gdbs.cluster("orders")
        east, west = cluster.member(EAST), cluster.member(WEST)
        t = time.perf_counter()
        load(east.conninfo("orders"), args.orders, gdbs)
        print(f"loaded {args.orders:,} orders with items in {time.perf_counter() - t:.1f}s", flush=True)
        wait_caught_up(gdbs)
        east.query("checkpoint")  # the slot's position survives a crash only as of the last checkpoint
        dep.link.partition("both")
        try:
            t = time.perf_counter()
            victims = lost_writes(east.conninfo("orders"), lost, updates, deletes)
            print(f"wrote {lost:,} orders, {updates:,} updates, {deletes:,} deletes during the partition in "
                  f"{time.perf_counter() - t:.1f}s", flush=True)
            failover = gdbs.failover("orders", WEST)
        finally:
            dep.link.heal("both")
        changed = new_writer_writes(west.conninfo("orders"), victims, updates)
        copy, preserve_s, _ = measure(lambda: gdbs.preserve("orders", EAST))
        print(f"failover at {failover.divergence_lsn}; preserved copy {copy.bytes / 1e9:.2f} GB in "
              f"{preserve_s:.1f}s", flush=True)

        source = from_copy(gdbs.cluster("orders"), copy)
        recon = source.instance
        copy_dsn, new_dsn = recon.conninfo("orders"), west.conninfo("orders")
        try:
            floor(copy_dsn, new_dsn)  # warm both sides' caches once for everyone
            network = deployment_network(topo)
            reports: list[Report] = []
            ours, ours_s, ours_mb, ours_cpu = best(lambda i: _kept(reports, service.report(
                topo, network, "orders", EAST, fresh=i > 0)), args.repeat)
            ref, ref_s, ref_mb, ref_cpu = best(lambda i: reference_method(copy_dsn, new_dsn), args.repeat)
            rows, floor_s, floor_mb, floor_cpu = best(lambda i: floor(copy_dsn, new_dsn), args.repeat)
            decoded, decode_s, _, _ = best(lambda i: server_decode(copy_dsn, failover.divergence_lsn), args.repeat)
            parsed, bound_s, bound_mb, _ = best(lambda i: python_bound(copy_dsn, failover.divergence_lsn),
                                                args.repeat)
        finally:
            source.drop()
        manual, manual_s, _, _ = best(lambda i: replay_dry(topo, network, ours, []), args.repeat)
        merged, merged_s, _, _ = best(lambda i: replay_dry(topo, network, ours, POLICIES), args.repeat)
        reads, reads_s, _, _ = best(lambda i: key_reads(new_dsn, ours), args.repeat)
    fastest = min(reports, key=lambda r: r.seconds["analysis"]).seconds  # capture varies apart from analysis
    analysis = fastest["analysis"]
    counts = ours.counts.get("public.customer_order", {})
    print()
    print(f"best of {args.repeat} runs each; load average {psutil.getloadavg()[0]:.1f} on {psutil.cpu_count()} cores; "
          f"client CPU seconds: ours {ours_cpu:.2f}, reference {ref_cpu:.2f}, floor {floor_cpu:.2f}")
    print(f"{'method':<44} {'seconds':>8} {'peak MB':>8}  finds")
    print(f"{'our report, end to end (incl. capture)':<44} {ours_s:>8.2f} {ours_mb:>8.1f}  "
          f"{len(ours.transactions):,} lost transactions: orders {counts.get('insert', 0):,} inserted, "
          f"{counts.get('update', 0):,} updated, {counts.get('delete', 0):,} deleted; "
          f"{ours.change_count:,} row changes incl. items; {len(ours.conflicts):,} conflicts ({changed:,} orders "
          "the new writer changed too)")
    print(f"{'  capture (copy + start instance)':<44} {ours.seconds['capture']:>8.2f}")
    print(f"{'  analysis (' + ours.method + ', classify, schema, store)':<44} {analysis:>8.2f}  "
          f"find {fastest['find']:.2f}s, classify+schema {fastest['classify']:.2f}s, "
          f"store {fastest['store']:.2f}s; then cleanup {fastest['cleanup']:.2f}s (fastest analysis of: "
          + ", ".join(f"{r.seconds['analysis']:.2f}" for r in reports) + ")")
    print(f"{'  of which PostgreSQL decoding the slot':<44} {decode_s:>8.2f}  {decoded:,} decoded rows, none read "
          "into Python (the rest of the analysis is Python: parse, classify, lens, store)")
    print(f"{'bound: decode + parse + JSON, nothing else':<44} {bound_s:>8.2f} {bound_mb:>8.1f}  {parsed:,} row "
          "changes: the least a Python report can take (no lookups, classification, lens or storing)")
    print(f"{'reference: set difference of order ids':<44} {ref_s:>8.2f} {ref_mb:>8.1f}  "
          f"{ref:,} missing orders (inserts only)")
    print(f"{'floor: count(*) of both tables, both sides':<44} {floor_s:>8.2f} {floor_mb:>8.1f}  {rows:,} rows")
    for label, outcome, seconds in (("replay (dry run), no policies", manual, manual_s),
                                    ("replay (dry run), merge policies", merged, merged_s)):
        print(f"{label:<44} {seconds:>8.2f} {'':>8}  {ours.change_count / seconds:,.0f} changes/s: "
              f"{len(outcome['applied']):,} applied, {len(outcome['resolved']):,} resolved, "
              f"{len(outcome['refused']):,} refused")
    print(f"{'floor: read each changed row by key':<44} {reads_s:>8.2f} {'':>8}  {reads / reads_s:,.0f} rows/s")
    print()
    print(f"analysis / floor = {analysis / floor_s:.2f}x (target <= 2x; the bound alone is "
          f"{bound_s / floor_s:.2f}x); "
          f"analysis / reference = {analysis / ref_s:.2f}x (target < 1x); "
          f"end to end / reference = {ours_s / ref_s:.2f}x")


if __name__ == "__main__":
    main()
