"""The drill's verdict from synthetic evidence: evidence built to fail must FAIL, naming what is wrong."""

from __future__ import annotations

from dataclasses import replace

from regionctl.drill.check import (
    DELETE,
    INSERT,
    UPDATE,
    Evidence,
    LedgerAck,
    LedgerChange,
    OrderAck,
    check,
    ledger_changes,
)

EAST, WEST = "us-east-1", "us-west-2"


def _ledger(*steps: tuple[str, str, int | None, float]) -> tuple[LedgerAck, ...]:
    return tuple(LedgerAck("orders", row, op, version, at, EAST) for row, op, version, at in steps)


def _evidence(**kw: object) -> Evidence:
    base = Evidence(orders=(OrderAck("o1", 1.0, EAST), OrderAck("o2", 2.0, EAST), OrderAck("o3", 3.0, WEST)),
                    ledger=_ledger(("r1", INSERT, 1, 1.0), ("r1", UPDATE, 2, 2.0), ("r2", INSERT, 1, 1.5),
                                   ("r2", DELETE, None, 2.5)),
                    orders_on_writer=frozenset({"o1", "o3"}), ledger_on_writer={"orders": {"r1": 1}},
                    reported_orders=frozenset({"o2"}),
                    reported_ledger=frozenset({LedgerChange("orders", "r1", 2)}))
    return replace(base, **kw)  # type: ignore[arg-type]


def test_every_acknowledged_write_on_the_writer_or_in_a_report_passes() -> None:
    verdict = check(_evidence())
    assert verdict.passed, verdict.reason
    assert verdict.counts == {"present": 5, "reported": 2, "replayed": 0, "unreported": 0, "reported_present": 0,
                              "acknowledged": 7}
    assert verdict.lost_at == [2.0, 2.0]  # o2 and r1's update


def test_an_acknowledged_order_missing_from_both_fails_naming_it() -> None:
    verdict = check(_evidence(orders_on_writer=frozenset({"o1"})))
    assert not verdict.passed
    assert verdict.unreported == [f"order o3 (acknowledged via {WEST})"]
    assert "1 acknowledged writes lost without a trace (first: order o3" in verdict.reason


def test_a_reported_write_present_on_the_writer_fails() -> None:
    verdict = check(_evidence(orders_on_writer=frozenset({"o1", "o2", "o3"})))
    assert not verdict.passed and verdict.reported_present == ["order o2"]
    assert "reported lost but on the writer" in verdict.reason


def test_a_replayed_write_is_neither_lost_nor_a_false_report() -> None:
    verdict = check(_evidence(orders_on_writer=frozenset({"o1", "o2", "o3"}), replayed_orders=frozenset({"o2"})))
    assert verdict.passed and verdict.counts["replayed"] == 1


def test_ledger_steps_lost_without_a_trace_fail() -> None:
    verdict = check(_evidence(reported_ledger=frozenset()))  # r1's update v2 is not on the writer, nor reported
    assert not verdict.passed and verdict.unreported == [f"ledger orders/r1@updatev2 (acknowledged via {EAST})"]


def test_a_row_gone_without_its_delete_surviving_is_lost() -> None:
    # r2's delete is reported lost, so its insert did not survive either: gone and unreported -> FAIL
    verdict = check(_evidence(reported_ledger=frozenset({LedgerChange("orders", "r1", 2),
                                                         LedgerChange("orders", "r2", None)})))
    assert not verdict.passed and verdict.unreported == [f"ledger orders/r2@insertv1 (acknowledged via {EAST})"]
    # a row that was never deleted and is gone is lost too
    verdict = check(_evidence(ledger=_ledger(("r3", INSERT, 1, 1.0)), ledger_on_writer={"orders": {}}))
    assert verdict.unreported == [f"ledger orders/r3@insertv1 (acknowledged via {EAST})"]


def test_a_lost_delete_of_a_row_still_on_the_writer_is_reported() -> None:
    verdict = check(_evidence(ledger=_ledger(("r4", INSERT, 1, 1.0), ("r4", DELETE, None, 2.0)),
                              ledger_on_writer={"orders": {"r4": 1}},
                              reported_ledger=frozenset({LedgerChange("orders", "r4", None)})))
    assert verdict.passed and (verdict.counts["reported"], verdict.counts["present"]) == (2, 3)  # o2 and the delete


def test_reports_are_read_for_ledger_changes() -> None:
    report = {"database": "orders", "lenses": {"orders": [{"id": "o2"}]}, "transactions": [
        {"id": "t1", "changes": [
            {"table": "public.regionctl_drill", "kind": "update", "key": {"id": "r1"}, "new": {"version": "2"}},
            {"table": "public.regionctl_drill", "kind": "delete", "key": {"id": "r2"}, "new": None},
            {"table": "public.customer_order", "kind": "insert", "key": {"id": "o2"}, "new": {"version": "9"}},
        ]}]}
    assert ledger_changes(report) == {LedgerChange("orders", "r1", 2), LedgerChange("orders", "r2", None)}


def test_an_insert_and_delete_both_lost_are_both_reported_not_present() -> None:
    lost = {LedgerChange("orders", "r5", 1), LedgerChange("orders", "r5", None)}
    verdict = check(_evidence(ledger=_ledger(("r5", INSERT, 1, 1.0), ("r5", DELETE, None, 2.0)),
                              ledger_on_writer={"orders": {}}, reported_ledger=frozenset(lost)))
    assert verdict.passed and (verdict.counts["reported"], verdict.counts["reported_present"]) == (3, 0)


def test_steps_before_a_lost_delete_that_replay_applied_again_are_present() -> None:
    """Insert and update reached the new writer, the delete was lost, replay applied it: the row is gone because
    of the replayed delete, not because the insert was lost (found by a drill with an approver)."""
    delete = LedgerChange("orders", "r6", None)
    verdict = check(_evidence(ledger=_ledger(("r6", INSERT, 1, 1.0), ("r6", UPDATE, 2, 1.5), ("r6", DELETE, None, 2.0)),
                              ledger_on_writer={"orders": {}}, reported_ledger=frozenset({delete}),
                              replayed_ledger=frozenset({delete})))
    assert verdict.passed, verdict.reason
    assert (verdict.counts["replayed"], verdict.counts["unreported"]) == (1, 0)


def test_figures_count_each_acknowledgement_even_when_timestamps_coincide() -> None:
    """A lost and a surviving write acknowledged in the same millisecond are two writes, one of each."""
    from regionctl.drill.run import Timeline, ack_series, drill_figures

    verdict = check(_evidence(orders=(OrderAck("o1", 2.0, EAST), OrderAck("o2", 2.0, EAST)),
                              ledger=(), orders_on_writer=frozenset({"o1"}), reported_orders=frozenset({"o2"})))
    figures = drill_figures(verdict, Timeline(load_started=0.0), None, [])
    assert (figures["acknowledged"], figures["lost"]) == (2, 1)
    assert ack_series(verdict, 0.0) == {EAST: {"surviving": [0, 0, 1], "lost": [0, 0, 1]}}
