"""Reconciliation looks rows up by key on both sides; that must cost what was lost, not what the table holds.

For a few thousand keys PostgreSQL's planner prefers a (parallel) sequential scan of the whole table to index
probes, which made the report's lookups on the new writer grow with the table. Checked here through PostgreSQL's
own counters: a lookup of 15,000 keys on a 300,000-row table scans no table, and finds exactly the rows there.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from regionctl.reconcile import catalog
from regionctl.reconcile.versions import PgRowSource
from tests.support.deploy import RunningDeployment

pytestmark = pytest.mark.integration

TABLE = "public.lookup_probe"


def scans(conn: psycopg.Connection[Any], before: tuple[int, int] | None = None) -> tuple[int, int]:
    """(sequential scans, index scans) of the table, once the lookup's counters reached shared memory."""
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
        conn.execute("create table lookup_probe (a int, b text, v text, primary key (a, b))")
        conn.execute("insert into lookup_probe select g / 3, 'p' || g % 3, 'v' || g from generate_series(0, 299999) g")
        conn.execute("analyze lookup_probe")
        try:
            source = PgRowSource(conn, catalog.read_tables(conn))
            present = [(str(a), f"p{b}") for a in range(0, 100_000, 20) for b in range(3)]
            missing = [("-1", "p0"), ("20", "p9")]
            before = scans(conn)
            found = source.by_keys(TABLE, ("a", "b"), present + missing)
            conn.execute("select pg_stat_force_next_flush()")
            seq_scans, index_scans = scans(conn, before)
        finally:
            conn.execute("drop table lookup_probe")
    assert set(found) == set(present)
    assert found[("20", "p1")].values == {"a": "20", "b": "p1", "v": "v61"}
    assert seq_scans == before[0], "the lookup scanned the whole table"
    assert index_scans > before[1]
