"""Classification (keys, before-images, conflicts) and replay (content checks, idempotence), on fakes."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from regionctl.reconcile.classify import Captured, classify
from regionctl.reconcile.model import Report, SchemaDiff, TableMeta
from regionctl.reconcile.replay import replay
from regionctl.reconcile.testdecoding import DecodedChange
from tests.unit.reconcile.fakes import FakeSide, FakeTarget, table

ORD, ITM = "public.orders", "public.items"
TABLES = {ORD: table(ORD, ("id", "email", "total"), ("id",)),
          ITM: table(ITM, ("order_id", "product_id", "qty"), ("order_id", "product_id")),
          "public.log": table("public.log", ("line",), ())}
META = {n: TableMeta(t.types(), t.key) for n, t in TABLES.items()}
SHARED_TS = "2026-11-29 10:00:00+00"


def sides() -> tuple[FakeSide, FakeSide]:
    """(copy, new writer): xid 100 committed before the split on both; 500 lost on the copy and reused on the new
    writer for an unrelated transaction (different commit time); 900 only on the new writer."""
    copy = FakeSide(TABLES, commits={"100": SHARED_TS, "500": "2026-11-29 10:00:05+00"})
    new = FakeSide(TABLES, commits={"100": SHARED_TS, "500": "2026-11-29 10:01:00+00", "900": "2026-11-29 10:02+00"})
    return copy, new


def tx(n: int, *changes: DecodedChange) -> Captured:
    return Captured(f"tl1:0/{n:X}", n, f"2026-11-29T10:00:{n:02d}+00:00", 500, tuple(changes))


def ins(t: str, **values: str) -> DecodedChange:
    return DecodedChange(t, "insert", new=values)


def upd(t: str, **values: str) -> DecodedChange:
    return DecodedChange(t, "update", new=values)


def dele(t: str, **key: str) -> DecodedChange:
    return DecodedChange(t, "delete", old=key)


def make_report(captured: Sequence[Captured], copy: FakeSide, new: FakeSide, schema: SchemaDiff | None = None
                ) -> Report:
    result = classify(captured, META, new, copy)
    return Report(
        id="r1", database="orders", former_writer="us-east-1", new_writer="us-west-2", promotion_id="p1",
        created_at="now", method="slot", method_trail=(), complete=True, divergence_lsn="0/1", old_timeline=1,
        new_timeline=2, source={}, window={}, lag_before={}, counts={}, tables=META,
        transactions=result.transactions, conflicts=result.conflicts, schema=schema or SchemaDiff(),
    )


def test_before_images_come_from_the_new_writer_when_it_still_holds_that_version() -> None:
    copy, new = sides()
    new.put(ORD, {"id": "a", "email": "a@x", "total": "1"}, "100")
    report = make_report([tx(1, upd(ORD, id="a", email="a@x", total="2")), tx(2, dele(ORD, id="a"))], copy, new)
    first, second = (t.changes[0] for t in report.transactions)
    assert first.old == {"id": "a", "email": "a@x", "total": "1"} and first.old_source == "new_writer"
    assert second.old == {"id": "a", "email": "a@x", "total": "2"} and second.old_source == "lost_transaction"
    assert report.conflicts == ()


def test_conflicts_are_rows_the_new_writer_changed_deleted_or_inserted_since_the_failover() -> None:
    copy, new = sides()
    new.put(ORD, {"id": "changed", "email": "west", "total": "9"}, "900")
    new.put(ORD, {"id": "reused-xid", "email": "west", "total": "9"}, "500")  # same xid, other transaction
    new.put(ORD, {"id": "taken", "email": "west", "total": "9"}, "900")
    new.put(ORD, {"id": "kept", "email": "k", "total": "1"}, "100")
    report = make_report([
        tx(1, upd(ORD, id="changed", email="e", total="2")),
        tx(2, upd(ORD, id="reused-xid", email="e", total="2")),
        tx(3, dele(ORD, id="gone")),
        tx(4, ins(ORD, id="taken", email="e", total="2")),
        tx(5, upd(ORD, id="kept", email="k", total="3"), ins(ORD, id="new", email="n", total="1")),
    ], copy, new)
    found = {c.key["id"]: c.new_writer for c in report.conflicts}
    assert found == {"changed": "changed", "reused-xid": "changed", "gone": "deleted", "taken": "inserted"}
    assert all(c.transactions and "since the failover" in c.reason for c in report.conflicts)


def test_key_changes_unkeyed_tables_and_unchanged_toast() -> None:
    copy, new = sides()
    new.put(ORD, {"id": "a", "email": "a@x", "total": "1"}, "100")
    moved = DecodedChange(ORD, "update", new={"id": "b", "email": "a@x", "total": "1"}, old={"id": "a"})
    toast = DecodedChange(ORD, "update", new={"id": "b", "total": "5"}, unchanged=("email",))
    nokey = DecodedChange("public.log", "insert", new={"line": "x"})
    report = make_report([tx(1, moved), tx(2, toast), tx(3, nokey)], copy, new)
    move, merged, log = (t.changes[0] for t in report.transactions)
    assert move.key == {"id": "b"} and move.old_key == {"id": "a"} and move.old == {"id": "a", "email": "a@x",
                                                                                     "total": "1"}
    assert merged.old == {"id": "b", "email": "a@x", "total": "1"} and merged.unchanged == ("email",)
    assert log.action == "manual" and log.key is None and report.conflicts == ()


def target_from(new: FakeSide) -> FakeTarget:
    target = FakeTarget({ORD: (("id", "email", "total"), ("id",)), ITM: (("order_id", "product_id", "qty"),
                                                                     ("order_id", "product_id"))})
    for name, versions in new.rows.items():
        for v in versions:
            target.data.setdefault(name, {})[tuple(v.values[c] for c in target.tables[name][1])] = dict(v.values)
    return target


def test_replay_applies_what_does_not_conflict_refuses_whole_transactions_and_is_idempotent() -> None:
    copy, new = sides()
    new.put(ORD, {"id": "a", "email": "a@x", "total": "1"}, "100")
    new.put(ORD, {"id": "b", "email": "b@x", "total": "1"}, "900")  # changed on the new writer since
    report = make_report([
        tx(1, ins(ORD, id="c", email="c@x", total="3"), ins(ITM, order_id="c", product_id="p", qty="1")),
        tx(2, upd(ORD, id="a", email="a@x", total="2")),
        tx(3, upd(ORD, id="b", email="b@x", total="2"), ins(ITM, order_id="b", product_id="p", qty="1")),
        tx(4, upd(ITM, order_id="c", product_id="p", qty="2")),
        tx(5, dele(ORD, id="a")),
    ], copy, new, SchemaDiff(sequences_ahead_in_copy=({"sequence": "public.s", "copy": 40, "new_writer": 30},)))
    target = target_from(new)
    target.sequences["public.s"] = 30
    first = replay(report, target, "ann", "us-west-2")
    assert first.applied == ["tl1:0/1", "tl1:0/2", "tl1:0/4", "tl1:0/5"]
    assert [(t.id, t.status) for t in first.refused] == [("tl1:0/3", "refused")]
    assert "holds other values" in first.refused[0].reasons[0]
    assert target.data[ORD] == {("b",): {"id": "b", "email": "b@x", "total": "1"},
                              ("c",): {"id": "c", "email": "c@x", "total": "3"}}
    assert target.data[ITM] == {("c", "p"): {"order_id": "c", "product_id": "p", "qty": "2"}}  # not (b, p)
    assert first.sequences_advanced == ["public.s"] and first.changes_applied == 5

    writes = target.writes
    second = replay(report, target, "bob", "us-west-2")
    assert second.applied == [] and second.changes_applied == 0 and target.writes == writes
    assert second.already_applied == first.applied and [t.id for t in second.refused] == ["tl1:0/3"]
    assert second.sequences_advanced == [] and second.to_dict()["approved_by"] == "bob"


def test_replay_refuses_rows_the_new_writer_cannot_hold_and_changes_it_cannot_replay() -> None:
    copy, new = sides()
    report = make_report([
        tx(1, ins(ORD, id="c", email="c@x", total="3", channel="web")),
        tx(2, ins(ORD, id="d", email="d@x", total="3"), DecodedChange("public.log", "insert", new={"line": "x"})),
        tx(3, DecodedChange(ORD, "update", new={"id": "e"}, action="covered"), ins(ORD, id="f", email="f", total="1")),
    ], copy, new)
    target = target_from(new)
    outcome = replay(report, target, "ann", "us-west-2")
    reasons = {t.id: " ".join(t.reasons) for t in outcome.refused}
    assert "lacks column(s) channel" in reasons["tl1:0/1"] and "no primary key" in reasons["tl1:0/2"]
    assert outcome.applied == ["tl1:0/3"] and set(target.data[ORD]) == {("f",)}


def new_state(new: FakeSide, key: str) -> dict[str, str | None] | None:
    return next((dict(v.values) for v in new.rows.get(ORD, []) if v.values["id"] == key), None)


STATES = st.one_of(st.none(), st.sampled_from(["1", "2", "3"]))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, str | None], list[list[tuple[str, str | None]]],
                                         dict[str, str | None]]:
    """Initial (shared) totals per key, lost transactions as [(key, new total or None=delete)], interference."""
    keys = ["k1", "k2", "k3", "k4"]
    initial = {k: draw(STATES) for k in keys}
    state = dict(initial)
    txs = []
    for _ in range(draw(st.integers(1, 8))):
        changes = []
        for k in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=2, unique=True)):
            value = draw(STATES) if state[k] is not None else draw(st.sampled_from(["4", "5"]))
            changes.append((k, value))
            state[k] = value
        txs.append(changes)
    interference = {k: draw(st.sampled_from(["9", None])) for k in draw(st.lists(st.sampled_from(keys), unique=True))}
    return initial, txs, interference


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_replaying_twice_changes_nothing_the_second_time_and_restores_every_unrefused_row(scenario) -> None:  # type: ignore[no-untyped-def]
    initial, txs, interference = scenario
    copy, new = sides()
    state = dict(initial)
    captured = []
    for n, changes in enumerate(txs, start=1):
        decoded = []
        for k, value in changes:
            if value is None:
                decoded.append(dele(ORD, id=k))
            else:
                decoded.append((ins if state[k] is None else upd)(ORD, id=k, email=k, total=value))
            state[k] = value
        captured.append(tx(n, *decoded))
    for k, total in state.items():
        if total is not None:
            copy.put(ORD, {"id": k, "email": k, "total": total}, "500")
    for k, total in initial.items():
        if k in interference:
            if interference[k] is not None:
                new.put(ORD, {"id": k, "email": k, "total": interference[k]}, "900")  # type: ignore[dict-item]
        elif total is not None:
            new.put(ORD, {"id": k, "email": k, "total": total}, "100")
    report = make_report(captured, copy, new)
    target = target_from(new)
    first = replay(report, target, "ann", "w")
    writes = target.writes
    second = replay(report, target, "ann", "w")
    assert second.changes_applied == 0 and target.writes == writes
    refused = {t.id for t in first.refused}
    touched_by_refused = {ch.key["id"] for t in report.transactions if t.id in refused for ch in t.changes}
    for conflict in report.conflicts:  # the new writer's change is never overwritten blindly
        row = target.data.get(ORD, {}).get((conflict.key["id"],))
        assert conflict.transactions[0] in refused or row == new_state(new, conflict.key["id"]) or \
            (row or {}).get("total") in {ch.new["total"] for t in report.transactions for ch in t.changes
                                          if ch.new and ch.key["id"] == conflict.key["id"]} | {None}
    touched = {k for changes in txs for k, _ in changes}
    for k, total in state.items():
        if k in touched and k not in touched_by_refused:
            row = target.data.get(ORD, {}).get((k,))
            assert (row or {}).get("total") == total, (k, row, total)
