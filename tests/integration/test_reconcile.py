"""Reconciliation on the real deployment: writes flowing, partition, failover, writes on the new writer, then the
missing-transaction report checked against the writer's acknowledgement log, replay, and the fallbacks.

One drill (module fixture) builds every report and replay; each test asserts one property of what it produced.
The fixture leaves the deployment as it found it: the old writer rebuilt and the writer switched back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from regionctl.errors import DatabaseError, InputError
from regionctl.reconcile import external, service
from regionctl.reconcile.capture import from_copy
from regionctl.reconcile.lens import LensConfig
from regionctl.reconcile.model import DELETE, INSERT, UPDATE, Report
from regionctl.runtime.network import deployment_network
from tests.support.deploy import RunningDeployment
from tests.support.orders_workload import Ack, OrdersWorkload

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"
S = "recon_it"
ORDER, ITEM, EVENT = f"{S}.customer_order", f"{S}.customer_order_item", f"{S}.order_event"
LENS = LensConfig("orders", ORDER, "id", ("email", "total"), ITEM, "order_id", ("product_id", "quantity"))


@dataclass
class Drill:
    deployment: RunningDeployment
    workload: OrdersWorkload
    acked: list[Ack]
    lost: list[Ack]
    in_flight: Ack | None
    conflict_orders: dict[str, str]  # order id -> what the new writer did
    new_writer_only: set[str]  # orders written on the new writer that no lost change touches
    slot: Report
    wal: Report
    diff: Report
    replays: list[dict[str, Any]]
    copy_rows: dict[str, dict[tuple[str, ...], dict[str, Any]]]
    final_rows: dict[str, dict[tuple[str, ...], dict[str, Any]]]
    stages: list[str]  # what the slot report told its progress callback, in order
    external_slot: Report  # from two connection strings: the copy and the new writer
    external_diff: Report


def rows(dsn: str, table: str, key: tuple[str, ...]) -> dict[tuple[str, ...], dict[str, Any]]:
    with psycopg.connect(dsn, autocommit=True, options="-c timezone=UTC") as conn:
        cur = conn.execute(f"select * from {table}")
        names = [d.name for d in cur.description or ()]
        out = {}
        for r in cur.fetchall():
            row = {n: (None if v is None else str(v)) for n, v in zip(names, r, strict=True)}
            out[tuple(row[k] for k in key)] = row
        return out


KEYS = {ORDER: ("id",), ITEM: ("order_id", "product_id"), EVENT: ("seq",)}


def snapshot(dsn: str) -> dict[str, dict[tuple[str, ...], dict[str, Any]]]:
    return {t: rows(dsn, t, k) for t, k in KEYS.items()}


def wait_healthy(deployment: RunningDeployment, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not deployment.gdbs.status(name).healthy and time.monotonic() < deadline:
        time.sleep(0.2)
    assert deployment.gdbs.status(name).healthy, deployment.gdbs.status(name).problems


def pick_conflicts(lost: list[Ack], on_new: dict[tuple[str, ...], dict[str, Any]],
                   in_flight: Ack | None) -> tuple[str, str, str]:
    """Two orders the lost window only updated (the new writer will change one and delete the other) and one it
    only created (the new writer will create it too), so every method's view of them is predictable."""
    kinds: dict[str, list[str]] = {}
    for ack in lost:
        kinds.setdefault(ack.order_id, []).append(ack.kind)
    skip = {in_flight.order_id} if in_flight else set()
    updated = [o for o, k in kinds.items() if set(k) <= {"update_order", "update_item"} and (o,) in on_new
               and o not in skip]
    created = [o for o, k in kinds.items() if k == ["insert"] and o not in skip]
    assert len(updated) >= 2 and created, "the drill needs lost updates of two orders and one lost insert"
    return updated[0], updated[1], created[0]


@pytest.fixture(scope="module")
def drill(deployment: RunningDeployment) -> Iterator[Drill]:
    gdbs, topo = deployment.gdbs, deployment.topo
    network = deployment_network(topo)
    cluster = gdbs.cluster("orders")
    wait_healthy(deployment, "orders")
    east, west = cluster.member(EAST), cluster.member(WEST)
    workload = OrdersWorkload(east.conninfo("orders"), schema=S, seed=11)
    workload.create_schema()
    workload.run_some(80)
    cluster.wait_replayed(WEST, int(east.scalar("select pg_current_wal_lsn() - '0/0'", dbname="orders")))
    workload.start()
    workload.wait_for(30)
    deployment.link.partition("both")
    try:
        workload.wait_for(60)
        with psycopg.connect(east.conninfo("orders"), autocommit=True) as conn:  # lost DDL
            conn.execute(f"alter table {EVENT} add column channel text default 'web'")
        workload.wait_for(60)
        gdbs.failover("orders", WEST)
    finally:
        deployment.link.heal("both")
    acked = workload.stop()
    new_dsn = west.conninfo("orders")
    boundary = int(west.scalar(f"select max(seq) from {EVENT}", dbname="orders"))
    lost = [a for a in acked if a.seq > boundary]

    # The new writer takes writes: some overlap lost changes (conflicts), some do not.
    on_new = rows(new_dsn, ORDER, ("id",))
    changed, deleted, created = pick_conflicts(lost, on_new, workload.in_flight)
    touched = {a.order_id for a in lost}
    untouched = next(o for (o,) in on_new if o not in touched)
    with psycopg.connect(new_dsn, autocommit=True) as conn:
        conn.execute(f"update {ORDER} set total = 999, note = 'west' where id = %s", (changed,))
        conn.execute(f"delete from {ORDER} where id = %s", (deleted,))
        conn.execute(f"insert into {ORDER} (id, email, first_name, last_name, total, version) "
                     "values (%s, 'west@example.com', 'W', 'W', 1, 1)", (created,))
        conn.execute(f"update {ORDER} set note = 'west' where id = %s", (untouched,))
        conn.execute(f"insert into {ORDER} (id, email, first_name, last_name, total, version) values "
                     "('00000000-0000-4000-8000-000000000001', 'fresh@example.com', 'F', 'F', 5, 1)")

    stages: list[str] = []
    slot = service.report(topo, network, "orders", EAST, lenses=[LENS], progress=stages.append)
    wal = service.report(topo, network, "orders", EAST, method="wal", lenses=[LENS], fresh=True)
    diff = service.report(topo, network, "orders", EAST, method="diff", lenses=[LENS], fresh=True)

    copy = next(c for c in gdbs.preserved("orders") if c.promotion_id == slot.promotion_id)
    source = from_copy(gdbs.cluster("orders"), copy)
    recon = source.instance
    try:
        copy_rows = snapshot(recon.conninfo("orders"))
        # Real regions: the same copy and the new writer, known only by their connection strings.
        old_dsn = recon.conninfo("orders")
        external_slot = external.compare(old_dsn, new_dsn, "orders", topo.paths.root, lenses=[LENS])
        external_diff = external.compare(old_dsn, new_dsn, "orders", topo.paths.root, method="diff", lenses=[LENS])
    finally:
        source.drop()

    replays = [service.replay(topo, network, slot.id, "first-operator")]  # before the schema is reconciled
    with psycopg.connect(new_dsn, autocommit=True) as conn:
        conn.execute(f"alter table {EVENT} add column channel text default 'web'")
    replays.append(service.replay(topo, network, slot.id, "second-operator"))
    replays.append(service.replay(topo, network, slot.id, "third-operator"))
    final_rows = snapshot(new_dsn)

    yield Drill(deployment, workload, acked, lost, workload.in_flight,
                {changed: "changed", deleted: "deleted", created: "inserted"},
                {untouched, "00000000-0000-4000-8000-000000000001"}, slot, wal, diff, replays, copy_rows,
                final_rows, stages, external_slot, external_diff)

    gdbs.rebuild("orders", EAST)
    gdbs.switchover("orders", EAST)
    wait_healthy(deployment, "orders")
    with psycopg.connect(cluster.member(EAST).conninfo("orders"), autocommit=True) as conn:
        conn.execute(f"drop schema {S} cascade")


def seq_of(tx: Any) -> int:
    seqs = [int(ch.key["seq"]) for ch in tx.changes if ch.table == EVENT and ch.kind == INSERT]
    assert len(seqs) == 1, f"{tx.id} holds {len(seqs)} event rows"
    return seqs[0]


def signature(tx: Any) -> frozenset[tuple[str, str, tuple[str, ...]]]:
    return frozenset((ch.table, ch.kind, tuple(ch.key.values())) for ch in tx.changes)


def test_the_report_lists_exactly_the_acknowledged_but_lost_transactions(drill: Drill) -> None:
    report = drill.slot
    assert report.method == "slot" and report.complete
    assert len(drill.lost) >= 100, f"the partition lost only {len(drill.lost)} transactions"
    by_seq = {seq_of(tx): tx for tx in report.transactions}
    expected = {a.seq: a for a in drill.lost}
    extra = set(by_seq) - set(expected)
    assert not set(expected) - set(by_seq), "acknowledged transactions missing from the report"
    # Only the transaction whose commit was in flight when the writer died may be in the report unacknowledged.
    assert extra <= ({drill.in_flight.seq} if drill.in_flight else set()), f"unacknowledged: {sorted(extra)}"
    for seq, ack in expected.items():
        assert signature(by_seq[seq]) == ack.signature, f"transaction {seq} ({ack.kind})"
    kinds = {(ch.table, ch.kind) for tx in report.transactions for ch in tx.changes}
    assert {(ORDER, UPDATE), (ORDER, DELETE), (ITEM, INSERT), (ITEM, UPDATE), (ITEM, DELETE)} <= kinds
    lsns = [tx.commit_lsn for tx in report.transactions]
    assert all(tx.id.endswith(tx.commit_lsn or "") for tx in report.transactions) and len(set(lsns)) == len(lsns)


def test_a_report_tells_its_stages_as_they_start(drill: Drill) -> None:
    n = len(drill.slot.transactions)
    assert [s.split(" ")[0] for s in drill.stages] == ["capturing", "finding", "classifying", "dropping", "storing"]
    assert f"classifying {n:,} lost transactions (slot)" in drill.stages[2] and drill.stages[4] == (
        f"storing {n:,} lost transactions")


def test_the_report_carries_values_before_images_window_and_schema(drill: Drill) -> None:
    report = drill.slot
    by_seq = {seq_of(tx): tx for tx in report.transactions}
    for ack in drill.lost:
        order = next(ch for ch in by_seq[ack.seq].changes if ch.table == ORDER)
        if ack.kind == "insert":
            assert order.new is not None and order.new["email"] == ack.email and order.new["total"] == ack.total
            assert order.new["last_name"] == "O'Neil"
        elif ack.kind == "delete":
            if ack.order_id not in drill.conflict_orders:  # else the new writer may no longer hold its values
                assert order.old is not None and order.old.get("email") == ack.email
        else:
            assert order.new is not None and order.new["total"] == ack.total
            if order.old_source in ("new_writer", "lost_transaction"):
                assert order.old is not None and order.old["email"] == ack.email
    window = report.window
    assert window["transactions"] == len(report.transactions)
    assert window["first_lost_commit_at"] <= window["last_lost_commit_at"] and window["rpo_seconds"] > 0
    assert window["last_replicated_commit_at"] is not None and window["lost_wal_bytes"] > 0
    assert report.lag_before.get("target_replay_lsn") and "lag_bytes" in report.lag_before
    assert [(c.table, c.column, c.new_writer) for c in report.schema.columns] == [(EVENT, "channel", None)]
    after_ddl = [tx for tx in report.transactions if any(ch.table == EVENT and "channel" in (ch.new or {})
                                                         for ch in tx.changes)]
    assert after_ddl and all(ch.new["channel"] == "web" for tx in after_ddl for ch in tx.changes if ch.table == EVENT)
    assert report.counts[ORDER]["update"] > 0 and report.counts[ITEM]["delete"] > 0


def test_the_orders_lens_lists_lost_orders_with_items_email_and_totals(drill: Drill) -> None:
    docs = {d["id"]: d for d in drill.slot.lenses["orders"]}
    reported = {seq_of(tx) for tx in drill.slot.transactions}
    in_flight = [drill.in_flight] if drill.in_flight and drill.in_flight.seq in reported else []
    final: dict[str, Ack] = {}
    for ack in [*drill.lost, *in_flight]:  # the unacknowledged one counts when the old writer committed it
        final[ack.order_id] = ack
    assert set(docs) == set(final)
    for order_id, ack in final.items():
        doc = docs[order_id]
        assert doc["email"] == ack.email and doc["total"] == ack.total, order_id
        if ack.kind == "delete":
            assert doc["status"] in ("deleted", "created and deleted")
        assert doc["conflict"] == (order_id in drill.conflict_orders)
    created = [docs[a.order_id] for a in [*drill.lost, *in_flight] if a.kind == "insert"]
    assert all(doc["lines"] for doc in created)


def test_conflicts_are_the_rows_the_new_writer_changed_that_lost_changes_touch(drill: Drill) -> None:
    conflicts = {(c.table, c.key.get("id") or c.key.get("order_id")): c for c in drill.slot.conflicts}
    orders = {k: c.new_writer for (t, k), c in conflicts.items() if t == ORDER}
    assert orders == drill.conflict_orders
    deleted = next(o for o, what in drill.conflict_orders.items() if what == "deleted")
    reported = {seq_of(tx) for tx in drill.slot.transactions}
    acks = [*drill.lost, *([drill.in_flight] if drill.in_flight and drill.in_flight.seq in reported else [])]
    items = {(ITEM, key) for a in acks if a.order_id == deleted for t, _, key in a.signature if t == ITEM}
    assert {(c.table, tuple(c.key.values())) for c in drill.slot.conflicts if c.table == ITEM} == items
    assert not {o for _, o in conflicts} & drill.new_writer_only
    assert all(c.transactions and c.reason for c in drill.slot.conflicts)


def test_the_wal_fallback_finds_the_same_transactions_and_final_values(drill: Drill) -> None:
    wal, slot = drill.wal, drill.slot
    assert wal.method == "wal" and "slot" not in wal.method_trail[0]
    conflict_rows = {(c.table, tuple(c.key.values())) for c in slot.conflicts}
    by_id = {tx.id: tx for tx in slot.transactions}
    for tx in wal.transactions:  # a change it cannot tie to a row is a delete of a row the new writer changed
        for ch in tx.changes:
            if ch.action == "manual":
                assert any((c.table, tuple(c.key.values())) in conflict_rows for c in by_id[tx.id].changes
                           if c.table == ch.table and c.kind == DELETE), (tx.id, ch)
    assert wal.complete == all(ch.action != "manual" for tx in wal.transactions for ch in tx.changes)
    assert [tx.id for tx in wal.transactions] == [tx.id for tx in slot.transactions]
    assert [tx.commit_time for tx in wal.transactions] == [tx.commit_time for tx in slot.transactions]
    for w, s in zip(wal.transactions, slot.transactions, strict=True):
        applied = {(ch.table, ch.kind, tuple(ch.key.values())) for ch in w.changes if ch.action == "apply"}
        assert applied <= signature(s) | {(t, INSERT, k) for t, _, k in signature(s)}, w.id
    assert {(c.table, tuple(c.key.values())) for c in wal.conflicts} == \
        {(c.table, tuple(c.key.values())) for c in slot.conflicts}


def net_changes(report: Report) -> dict[tuple[str, tuple[str, ...]], str]:
    """Per row, the net effect of the report's changes: insert, update or delete (nothing when they cancel)."""
    first: dict[tuple[str, tuple[str, ...]], str] = {}
    last: dict[tuple[str, tuple[str, ...]], str] = {}
    for tx in report.transactions:
        for ch in tx.changes:
            if ch.action == "apply" and ch.key is not None:
                k = (ch.table, tuple(ch.key.values()))
                first.setdefault(k, ch.kind)
                last[k] = ch.kind
    net = {}
    for k, kind in first.items():
        if kind == INSERT and last[k] == DELETE:
            continue
        net[k] = INSERT if kind == INSERT else DELETE if last[k] == DELETE else UPDATE
    return net


def test_the_keyed_diff_finds_the_same_lost_rows_without_the_slot_or_the_wal(drill: Drill) -> None:
    diff, slot = drill.diff, drill.slot
    assert diff.method == "diff" and diff.method_trail[0].startswith("diff:")
    expected, found = net_changes(slot), net_changes(diff)

    def plain(keys: dict[tuple[str, tuple[str, ...]], str]) -> dict[tuple[str, tuple[str, ...]], str]:
        return {k: v for k, v in keys.items() if k[1][0] not in drill.conflict_orders}

    # Rows both sides changed are judged by the conflict checks below: a keyed diff sees only where they ended.
    assert plain(found) == plain(expected)
    assert {o for (t, (o,)) in ((c.table, tuple(c.key.values())) for c in diff.conflicts) if t == ORDER} == \
        {o for o, what in drill.conflict_orders.items() if what != "deleted"}


def test_replay_restores_every_lost_change_that_does_not_conflict_and_a_second_replay_applies_nothing(
    drill: Drill,
) -> None:
    first, second, third = drill.replays
    assert first["approved_by"] == "first-operator" and third["approved_by"] == "third-operator"
    schema_refusals = [r for r in first["refused"] if any("channel" in x for x in r["reasons"])]
    assert schema_refusals, "rows carrying the lost column must wait for the schema"
    assert second["applied"] and not third["applied"] and third["changes_applied"] == 0
    assert set(third["already_applied"]) == set(first["applied"]) | set(second["applied"])
    refused = {r["id"] for r in third["refused"]}
    touching = {tx.id for tx in drill.slot.transactions
                if any(ch.table == ORDER and ch.key["id"] in drill.conflict_orders for ch in tx.changes)}
    assert refused == touching, [(r, [t for t in drill.slot.transactions if t.id == r["id"]])
                                 for r in third["refused"] if r["id"] not in touching]
    assert all("new writer" in " ".join(r["reasons"]) for r in third["refused"])

    exceptions = {(ch.table, tuple(ch.key.values())) for tx in drill.slot.transactions if tx.id in refused
                  for ch in tx.changes if ch.key}
    exceptions |= {(ORDER, (o,)) for o in (*drill.conflict_orders, *drill.new_writer_only)}
    exceptions |= {(ITEM, k) for k in drill.copy_rows[ITEM] if k[0] in drill.conflict_orders}
    for table, copy in drill.copy_rows.items():
        final = drill.final_rows[table]
        for key in set(copy) | set(final):
            if (table, key) not in exceptions:
                assert copy.get(key) == final.get(key), (table, key)


def test_the_cli_lists_shows_and_replays_reports_recording_the_approver(drill: Drill) -> None:
    env = drill.deployment.cli_env

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(Path(sys.executable).parent / "regionctl"), "reconcile", *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    listed = cli("list", "orders", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    ids = [r["report_id"] for r in json.loads(listed.stdout)]
    assert {drill.slot.id, drill.wal.id, drill.diff.id} <= set(ids)
    shown = json.loads(cli("show", drill.slot.id, "--format", "json").stdout)
    assert shown["id"] == drill.slot.id and len(shown["transactions"]) == len(drill.slot.transactions)
    csv_text = cli("show", drill.slot.id, "--render", "csv").stdout
    assert csv_text.startswith("report_id,transaction,commit_lsn") and len(csv_text.splitlines()) > len(drill.lost)
    assert "<html" in cli("show", drill.slot.id, "--render", "html").stdout
    again = cli("replay", drill.slot.id, "--yes", "--format", "json")  # as the caller: here the admin
    assert again.returncode == 0, again.stderr
    outcome = json.loads(again.stdout)
    assert outcome["approved_by"] == "admin" and outcome["changes_applied"] == 0
    missing = cli("show", "no-such-report")
    assert missing.returncode == 4 and "no reconciliation report 'no-such-report'" in missing.stderr
    assert cli("report", "orders", "--region", "mars-1").returncode == 2


def test_asking_again_returns_the_stored_report_of_that_failover(drill: Drill) -> None:
    topo = drill.deployment.topo
    again = service.report(topo, deployment_network(topo), "orders", EAST)
    assert again.id == drill.diff.id  # the newest report of this failover, not a new one


def test_the_engine_api_lists_and_serves_the_stored_reports(drill: Drill) -> None:
    from regionctl.runbooks.launch import engine_url
    from regionctl.runtime.secrets import control_token

    base = engine_url(drill.deployment.settings)
    assert base, "the deployment runs a runbook engine"
    listed = httpx.get(f"{base}/reconcile/reports", params={"database": "orders"}, timeout=30)
    assert listed.status_code == 200
    assert {drill.slot.id, drill.wal.id, drill.diff.id} <= {r["report_id"] for r in listed.json()}
    summary = httpx.get(f"{base}/reconcile/reports/{drill.slot.id}", timeout=30).json()
    assert summary["method"] == "slot" and summary["replays"], summary
    page = f"{base}/reconcile/reports/{drill.slot.id}/html"
    assert httpx.get(page, timeout=30).status_code == 401  # customer data: the whole report needs the token
    auth = {"Authorization": f"Bearer {control_token(drill.deployment.settings)}"}
    html = httpx.get(page, headers=auth, timeout=30)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert drill.slot.transactions[0].id in html.text
    full = httpx.get(f"{base}/reconcile/reports/{drill.slot.id}/json", headers=auth, timeout=30).json()
    assert len(full["transactions"]) == len(drill.slot.transactions)
    assert httpx.get(f"{base}/reconcile/reports/no-such-report", timeout=30).status_code == 404
    bad = httpx.get(f"{base}/reconcile/reports/{drill.slot.id}/pdf", headers=auth, timeout=30)
    assert bad.status_code == 400 and "pdf" in bad.text


def test_two_connection_strings_give_the_same_report_as_the_local_reconciliation(drill: Drill) -> None:
    local, found = drill.slot, drill.external_slot
    assert found.method == "slot" and found.divergence_lsn == local.divergence_lsn  # read from the timeline history
    assert found.source["kind"] == "external" and found.source["divergence"].startswith("timeline ")
    assert [(tx.commit_lsn, signature(tx)) for tx in found.transactions] == \
        [(tx.commit_lsn, signature(tx)) for tx in local.transactions]
    assert {(c.table, tuple(c.key.values())) for c in found.conflicts} == \
        {(c.table, tuple(c.key.values())) for c in local.conflicts}
    assert net_changes(drill.external_diff) == net_changes(drill.diff)
    listed = {r["report_id"] for r in service.list_reports(drill.deployment.topo, "orders")}
    assert {found.id, drill.external_diff.id} <= listed


def test_compare_refuses_bad_input_by_name(drill: Drill) -> None:
    root = drill.deployment.topo.paths.root
    writer = drill.deployment.gdbs.cluster("orders").member(WEST).conninfo("orders")
    with pytest.raises(InputError, match="--method must be one of auto, slot, diff"):
        external.compare(writer, writer, "orders", root, method="wal")
    with pytest.raises(InputError, match="--divergence-lsn 'nope' is not an LSN"):
        external.compare(writer, writer, "orders", root, divergence_lsn="nope")
    with pytest.raises(DatabaseError, match="the old database at 127.0.0.1:1/orders cannot be reached") as refused:
        external.compare("host=127.0.0.1 port=1 user=postgres password=hunter2secret dbname=orders connect_timeout=2",
                         writer, "orders", root)
    assert "hunter2secret" not in str(refused.value)
    env = {**drill.deployment.cli_env, "REGIONCTL_OLD_DSN": "host=127.0.0.1 port=1 password=hunter2secret",
           "REGIONCTL_NEW_DSN": writer}  # how the docs say to pass them: never in argv
    cli = subprocess.run([str(Path(sys.executable).parent / "regionctl"), "reconcile", "compare", "orders"], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode != 0 and "the old database at 127.0.0.1:1/" in cli.stderr
    assert "hunter2secret" not in cli.stderr + cli.stdout
