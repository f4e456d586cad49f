"""Replay under merge policies, on fakes: counters changed on both sides add up with ``delta`` (and are refused
with ``manual``, as before), ``keep-new`` lists what it keeps, ``skip`` writes nothing, a dry run keeps nothing,
and every replayed transaction is recorded so a second replay (or one after a crash part-way) applies nothing
twice."""

from __future__ import annotations

import pytest

from regionctl.reconcile.merge import DELTA, KEEP_NEW, SKIP, Rule, TablePolicy, propose
from regionctl.reconcile.replay import replay
from regionctl.reconcile.testdecoding import DecodedChange
from tests.unit.reconcile.fakes import FakeTarget
from tests.unit.reconcile.test_classify_replay import ITM, ORD, ins, make_report, sides, target_from, tx

COUNTERS = {ORD: TablePolicy(columns={"total": Rule(DELTA)})}


def full_update(table: str, old: dict[str, str], **new: str) -> DecodedChange:
    """An update decoded with its whole old row (REPLICA IDENTITY FULL): the lost change's before is known."""
    return DecodedChange(table, "update", new={**old, **new}, old=dict(old), old_full=True)


def counters() -> tuple[FakeTarget, object]:
    """Order a's total was 10 at the failover; the old writer then added 3 and 2 (lost), the new writer 7."""
    copy, new = sides()
    new.put(ORD, {"id": "a", "email": "a@x", "total": "17"}, "900")
    row = {"id": "a", "email": "a@x"}
    report = make_report([
        tx(1, full_update(ORD, {**row, "total": "10"}, total="13")),
        tx(2, full_update(ORD, {**row, "total": "13"}, total="15"), ins(ITM, order_id="a", product_id="p", qty="1")),
    ], copy, new)
    return target_from(new), report


def test_delta_counts_every_increment_of_both_sides_and_manual_refuses_them_as_before() -> None:
    target, report = counters()
    manual = replay(report, target, "ann", "us-west-2")  # type: ignore[arg-type]
    assert [t.id for t in manual.refused] == ["tl1:0/1", "tl1:0/2"]
    assert target.data[ORD][("a",)]["total"] == "17"

    target, report = counters()
    merged = replay(report, target, "ann", "us-west-2", COUNTERS)  # type: ignore[arg-type]
    assert merged.applied == ["tl1:0/1", "tl1:0/2"] and not merged.refused
    assert target.data[ORD][("a",)]["total"] == "22"  # 10 + 3 + 2 (lost) + 7 (new writer)
    assert ("a", "p") in target.data[ITM]
    why = merged.transactions[0].resolutions[0]
    assert why["write"] == {"total": "20"} and "delta 17 + (13 - 10) = 20" in why["why"][0]

    again = replay(report, target, "bob", "us-west-2", COUNTERS)  # type: ignore[arg-type]
    assert again.applied == [] and again.already_applied == ["tl1:0/1", "tl1:0/2"]
    assert target.data[ORD][("a",)]["total"] == "22"  # a delta is not recognisable by content: the record is


def test_a_replay_cut_short_applies_the_rest_once_when_run_again() -> None:
    target, report = counters()
    writes = []
    original = target.transaction

    def crash_on_second():  # type: ignore[no-untyped-def]
        writes.append(1)
        if len(writes) == 2:
            raise KeyboardInterrupt("the operator's terminal went away")
        return original()

    target.transaction = crash_on_second  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        replay(report, target, "ann", "us-west-2", COUNTERS)  # type: ignore[arg-type]
    target.transaction = original  # type: ignore[method-assign]
    assert target.data[ORD][("a",)]["total"] == "20"
    rest = replay(report, target, "ann", "us-west-2", COUNTERS)  # type: ignore[arg-type]
    assert rest.already_applied == ["tl1:0/1"] and rest.applied == ["tl1:0/2"]
    assert target.data[ORD][("a",)]["total"] == "22"


def test_a_dry_run_shows_what_it_would_write_and_keeps_nothing() -> None:
    target, report = counters()
    before = {t: dict(rows) for t, rows in target.data.items()}
    shown = replay(report, target, "ann", "us-west-2", COUNTERS, dry_run=True)  # type: ignore[arg-type]
    assert shown.dry_run and shown.applied == ["tl1:0/1", "tl1:0/2"]
    assert target.data == before and target.recorded == set()
    writes = [(r["table"], r["action"], r["write"]) for t in shown.transactions for r in t.resolutions]
    assert (ORD, "update", {"total": "20"}) in writes and (ORD, "update", {"total": "22"}) in writes
    assert (ITM, "insert", {"order_id": "a", "product_id": "p", "qty": "1"}) in writes


def test_keep_new_resolves_without_writing_and_skip_never_writes() -> None:
    target, report = counters()
    kept = replay(report, target, "ann", "us-west-2", {ORD: TablePolicy(Rule(KEEP_NEW))})  # type: ignore[arg-type]
    assert kept.transactions[0].status == "resolved" and target.data[ORD][("a",)]["total"] == "17"
    assert "keep-new keeps '17'" in kept.transactions[0].resolutions[0]["why"][0]
    target, report = counters()
    skipped = replay(report, target, "ann", "us-west-2", {ORD: TablePolicy(Rule(SKIP)),  # type: ignore[arg-type]
                                                          ITM: TablePolicy(Rule(SKIP))})
    assert [t.status for t in skipped.transactions] == ["resolved", "resolved"] and target.writes == 0


def test_the_report_proposes_each_conflicts_resolution_under_the_policies() -> None:
    target, report = counters()
    [conflict] = [c for c in report.conflicts if c.table == ORD]  # type: ignore[attr-defined]
    [merged] = propose(report.transactions, [conflict], COUNTERS)  # type: ignore[attr-defined]
    assert merged.resolution is not None and merged.resolution["outcome"] == "apply"
    assert merged.resolution["write"] == {"total": "22"} and merged.resolution["policy"] == "manual, total: delta"
    assert len(merged.resolution["why"]) == 2  # one line per lost change of the row
    [manual] = propose(report.transactions, [conflict], {})  # type: ignore[attr-defined]
    assert manual.resolution is not None and manual.resolution["outcome"] == "refused"
    outcome = replay(report, target, "ann", "us-west-2", COUNTERS)  # type: ignore[arg-type]
    assert target.data[ORD][("a",)]["total"] == merged.resolution["write"]["total"] and outcome.applied
