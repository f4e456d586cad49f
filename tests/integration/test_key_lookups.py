"""Reconciliation looks rows up by key on both sides; that must cost what was lost, not what the table holds.

For a few thousand random keys PostgreSQL's planner may prefer a (parallel) sequential scan of the whole table to
index probes (it did on the benchmark's new writer, 1M orders), which made the report's lookups grow with the
table. Whether it does depends on its cost estimates, so this session makes random reads look expensive, as a
cold cache would, and checks through PostgreSQL's own counters, on a table shaped like the shop's order items
(uuid order ids in no physical order, three lines each), that looking up 15,000 of its 600,000 rows scans no
table and finds exactly those rows.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest

from regionctl.reconcile import catalog
from regionctl.reconcile.versions import PgRowSource
from tests.support.deploy import RunningDeployment

pytestmark = pytest.mark.integration

TABLE = "public.lookup_probe"


def scans(conn: psycopg.Connection[Any], before: tuple[int, int] | None = None) -> tuple[int, int]:
    """(sequential scans, index scans) of the table, once the lookup's counters reached shared memory.

    A backend hands its counters over at most once a second unless asked (`pg_stat_force_next_flush`), so the
    caller asks before each reading; without it, earlier scans could land in the lookup's window.
    """
    deadline = time.monotonic() + 10
    while True:
        row = conn.execute("select seq_scan, idx_scan from pg_stat_user_tables where relid = %s::regclass",
                           (TABLE,)).fetchone()
        assert row is not None
        now = (int(row["seq_scan"] or 0), int(row["idx_scan"] or 0))
        if before is None or now != before or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def test_a_key_lookup_probes_the_index_however_many_keys(deployment: RunningDeployment) -> None:
    gdbs = deployment.gdbs
    writer = gdbs.cluster("orders").member(gdbs.state("orders").writer)
    with catalog.connect(writer.conninfo("orders")) as conn:
        conn.execute("drop table if exists lookup_probe")
        conn.execute("create table lookup_probe (order_id uuid, product_id text, quantity int, name text, "
                     "primary key (order_id, product_id))")
        conn.execute("insert into lookup_probe select o, 'product-' || k, k, 'Item ' || k "
                     "from (select gen_random_uuid() o from generate_series(1, 200000)) s, generate_series(1, 3) k")
        conn.execute("analyze lookup_probe")
        try:
            orders = [r["o"] for r in conn.execute("select distinct order_id::text o from lookup_probe limit 5000")]
            present = [(o, f"product-{k}") for o in orders for k in (1, 2, 3)]
            missing = [("00000000-0000-4000-8000-000000000000", "product-1"), (orders[0], "product-9")]
            conn.execute("set random_page_cost = 40")
            source = PgRowSource(conn, catalog.read_tables(conn))
            conn.execute("select pg_stat_force_next_flush()")  # the scans above count before, not during
            before = scans(conn)
            found = source.by_keys(TABLE, ("order_id", "product_id"), present + missing)
            conn.execute("select pg_stat_force_next_flush()")
            seq_scans, index_scans = scans(conn, before)
        finally:
            conn.execute("drop table lookup_probe")
    assert set(found) == set(present)
    assert found[(orders[0], "product-2")].values == {"order_id": orders[0], "product_id": "product-2",
                                                       "quantity": "2", "name": "Item 2"}
    assert seq_scans == before[0], "the lookup scanned the whole table"
    assert index_scans > before[1]


def test_a_failed_lookup_raises_its_own_error_and_leaves_the_session_as_it_was(
        deployment: RunningDeployment) -> None:
    gdbs = deployment.gdbs
    writer = gdbs.cluster("orders").member(gdbs.state("orders").writer)
    with catalog.connect(writer.conninfo("orders")) as conn:
        conn.execute("drop table if exists lookup_bad")
        conn.execute("create table lookup_bad (id uuid primary key)")
        try:
            source = PgRowSource(conn, catalog.read_tables(conn))
            with pytest.raises(psycopg.errors.InvalidTextRepresentation):
                source.by_keys("public.lookup_bad", ("id",), [("not-a-uuid",)])
            with conn.transaction():  # a caller's own transaction goes on, planner settings untouched
                assert source.by_keys("public.lookup_bad", ("id",), [(str(uuid.uuid4()),)]) == {}
                assert conn.execute("show enable_seqscan").fetchone() == {"enable_seqscan": "on"}
        finally:
            conn.execute("drop table lookup_bad")
