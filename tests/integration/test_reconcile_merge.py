"""Counters changed on both sides of a partition, on the real deployment: the old writer increments them while
cut off (acknowledged, then lost by the failover), the new writer increments the same rows; replay refuses them
as conflicts with ``manual`` (as it always did), then with ``delta`` every counter ends at the sum of every
acknowledged increment from both sides, a dry run first showing exactly those values, and a replay after that
applies nothing (the writer's own record of replayed transactions), also after a switchover back. Both sides
also stamp ``touched``: without a rule of its own that column alone would refuse the merge, so it keeps the new
writer's stamp."""

from __future__ import annotations

import random
import time

import psycopg
import pytest

from regionctl.config import MergePolicySettings
from regionctl.reconcile import merge, service
from regionctl.runtime.network import deployment_network
from tests.support.deploy import RunningDeployment

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"
DB, TABLE = "catalog", "merge_it.counter"
ROWS = 6
DELTA = [MergePolicySettings(database=DB, table=TABLE, columns=("hits",), merge="delta"),
         MergePolicySettings(database=DB, table=TABLE, columns=("touched",), merge="keep-new")]


def increment(dsn: str, rng: random.Random, times: int, acked: dict[int, int]) -> None:
    """``times`` transactions of one increment each, counted once the commit returned."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(times):
            row, by = rng.randrange(ROWS), rng.randint(1, 9)
            conn.execute(f"update {TABLE} set hits = hits + %s, touched = now() where id = %s", (by, row))
            acked[row] += by


def counters(dsn: str) -> dict[int, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {r[0]: r[1] for r in conn.execute(f"select id, hits from {TABLE}").fetchall()}


def wait_healthy(deployment: RunningDeployment, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not deployment.gdbs.status(DB).healthy and time.monotonic() < deadline:
        time.sleep(0.2)
    assert deployment.gdbs.status(DB).healthy, deployment.gdbs.status(DB).problems


def test_counters_incremented_on_both_sides_add_up_after_a_delta_replay(deployment: RunningDeployment) -> None:
    gdbs, topo = deployment.gdbs, deployment.topo
    network = deployment_network(topo)
    cluster = gdbs.cluster(DB)
    wait_healthy(deployment)
    east, west = cluster.member(EAST), cluster.member(WEST)
    with psycopg.connect(east.conninfo(DB), autocommit=True) as conn:
        conn.execute("create schema merge_it")
        conn.execute(f"create table {TABLE} (id int primary key, hits bigint not null, touched timestamptz)")
        conn.execute(f"alter table {TABLE} replica identity full")  # decoding keeps each change's before-image
        conn.execute(f"insert into {TABLE} select g, 100, now() from generate_series(0, {ROWS - 1}) g")
    cluster.wait_replayed(WEST, int(east.scalar("select pg_current_wal_lsn() - '0/0'", dbname=DB)))
    rng = random.Random(7)
    lost: dict[int, int] = dict.fromkeys(range(ROWS), 0)
    new: dict[int, int] = dict.fromkeys(range(ROWS), 0)
    deployment.link.partition("both")
    try:
        increment(east.conninfo(DB), rng, 40, lost)  # acknowledged by the old writer, never replicated
        gdbs.failover(DB, WEST)
    finally:
        deployment.link.heal("both")
    try:
        increment(west.conninfo(DB), rng, 30, new)
        report = service.report(topo, network, DB, EAST)
        touching = [tx for tx in report.transactions if any(ch.table == TABLE for ch in tx.changes)]
        assert len(touching) == 40 and report.complete
        counted = [c for c in report.conflicts if c.table == TABLE]
        assert {int(c.key["id"]) for c in counted} == {r for r in range(ROWS) if lost[r] and new[r]}
        assert all(c.resolution and c.resolution["outcome"] == "refused" for c in counted)  # manual by default
        proposed = merge.propose(report.transactions, counted, merge.policies_for(DELTA, DB))
        expected = {r: 100 + lost[r] + new[r] for r in range(ROWS)}
        assert {int(c.key["id"]): int(c.resolution["write"]["hits"]) for c in proposed  # type: ignore[index]
                } == {int(c.key["id"]): expected[int(c.key["id"])] for c in counted}

        manual = service.replay(topo, network, report.id, "first-approver", policies=[])
        assert {r["id"] for r in manual["refused"]} >= {tx.id for tx in touching}
        assert counters(west.conninfo(DB)) == {r: 100 + new[r] for r in range(ROWS)}  # nothing merged

        shown = service.replay(topo, network, report.id, "second-approver", dry_run=True, policies=DELTA)
        last_write: dict[int, int] = {}
        for tx in shown["transactions"]:
            for r in tx["resolutions"]:
                if r["table"] == TABLE:
                    last_write[int(r["key"]["id"])] = int(r["write"]["hits"])
        assert last_write == {r: v for r, v in expected.items() if lost[r]}, shown["refused"][:3]  # exactly that
        assert counters(west.conninfo(DB)) == {r: 100 + new[r] for r in range(ROWS)}  # and kept nothing

        merged = service.replay(topo, network, report.id, "second-approver", policies=DELTA)
        assert {tx.id for tx in touching} <= set(merged["applied"])
        assert not {r["id"] for r in merged["refused"]} & {tx.id for tx in touching}
        assert counters(west.conninfo(DB)) == expected

        again = service.replay(topo, network, report.id, "third-approver", policies=DELTA)
        assert again["applied"] == [] and again["changes_applied"] == 0
        assert counters(west.conninfo(DB)) == expected

        gdbs.rebuild(DB, EAST)  # the record of what was replayed travels with the data: a switchover keeps it
        gdbs.switchover(DB, EAST)
        wait_healthy(deployment)
        after = service.replay(topo, network, report.id, "fourth-approver", policies=DELTA)
        assert after["applied"] == [] and after["changes_applied"] == 0 and after["writer"] == EAST, after
        assert counters(east.conninfo(DB)) == expected
    finally:
        if gdbs.state(DB).writer != EAST:
            gdbs.rebuild(DB, EAST)
            gdbs.switchover(DB, EAST)
        wait_healthy(deployment)
        with psycopg.connect(cluster.member(EAST).conninfo(DB), autocommit=True) as conn:
            conn.execute("drop schema merge_it cascade")
