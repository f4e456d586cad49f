"""The resolution function of merge policies, on random histories of one row: ``delta`` counts both sides'
increments, ``lww`` keeps the later timestamp, ``keep-new``/``keep-lost`` pick a side, ``manual`` refuses what
conflicts, and applying a resolution's write makes a second resolution find nothing to do (except a delta,
which only the replay's record of applied transactions keeps from counting twice)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regionctl.config import load_settings
from regionctl.errors import ConfigError, InputError
from regionctl.reconcile.merge import (
    DELTA,
    KEEP_LOST,
    KEEP_NEW,
    LWW,
    MANUAL,
    SKIP,
    Rule,
    TablePolicy,
    check_types,
    delta,
    later_side,
    policies_for,
    resolve,
)
from regionctl.reconcile.model import DELETE, INSERT, UPDATE

COUNTER = TablePolicy(columns={"count": Rule(DELTA)})
increments = st.lists(st.integers(-50, 50), max_size=6)


def _apply(current: dict[str, str | None], write: dict[str, str | None]) -> dict[str, str | None]:
    return {**current, **write}


@settings(max_examples=300)
@given(start=st.integers(-1000, 1000), lost=increments, new=increments)
def test_delta_equals_the_sum_of_both_sides_increments(
        start: int, lost: list[int], new: list[int]) -> None:
    """The old writer applied ``lost`` after the failover point, the new writer ``new``: one lost update from
    ``start`` to ``start + sum(lost)`` (its before and after images), against the new writer's row."""
    before = {"id": "7", "count": str(start), "name": "watch"}
    after = {"id": "7", "count": str(start + sum(lost)), "name": "watch"}
    current = {"id": "7", "count": str(start + sum(new)), "name": "watch"}
    first = resolve(UPDATE, before, after, current, COUNTER)
    merged = _apply(current, first.write)
    assert int(merged["count"] or 0) == start + sum(lost) + sum(new)
    assert first.outcome == ("apply" if sum(lost) else "done")
    # a delta cannot be recognised by content (equal counts may be two increments): applied twice it adds twice,
    # which is why replay records each applied transaction on the writer, in the same transaction
    second = resolve(UPDATE, before, after, merged, COUNTER)
    assert int(_apply(merged, second.write)["count"] or 0) == start + 2 * sum(lost) + sum(new)


@given(lost=st.integers(0, 100), new=st.integers(0, 100))
def test_two_inserts_of_one_counter_row_add_up(lost: int, new: int) -> None:
    current = {"product_id": "3", "count": str(new)}
    result = resolve(INSERT, None, {"product_id": "3", "count": str(lost)}, current, COUNTER)
    assert int(_apply(current, result.write)["count"] or 0) == lost + new


stamps = st.integers(0, 10_000).map(lambda s: f"2026-12-02 {s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}+00")


@settings(max_examples=200)
@given(lost_at=stamps, new_at=stamps, lost=st.text(max_size=4), new=st.text(max_size=4))
def test_lww_keeps_the_later_timestamp_and_is_idempotent(lost_at: str, new_at: str, lost: str, new: str) -> None:
    policy = TablePolicy(Rule(LWW, "updated_at"))
    before = {"id": "1", "v": "start", "updated_at": "2026-12-01 00:00:00+00"}
    after = {"id": "1", "v": lost, "updated_at": lost_at}
    current = {"id": "1", "v": new, "updated_at": new_at}
    result = resolve(UPDATE, before, after, current, policy)
    merged = _apply(current, result.write)
    assert result.outcome != "conflict"
    if lost != new and new != "start":
        assert merged["v"] == (lost if lost_at > new_at else new)
    again = resolve(UPDATE, before, after, merged, policy)
    assert again.outcome in ("done", "resolved") and _apply(merged, again.write) == merged


@given(st.sampled_from([KEEP_NEW, KEEP_LOST]), st.text(max_size=3), st.text(max_size=3))
def test_keep_new_and_keep_lost_pick_their_side(merge: str, lost: str, new: str) -> None:
    before = {"id": "1", "v": "was"}
    result = resolve(UPDATE, before, {"id": "1", "v": lost}, {"id": "1", "v": new}, TablePolicy(Rule(merge)))
    merged = _apply({"id": "1", "v": new}, result.write)
    if lost != new and new != "was" and lost != "was":
        assert merged["v"] == (new if merge == KEEP_NEW else lost)
        assert result.outcome == ("resolved" if merge == KEEP_NEW else "apply")


def test_manual_refuses_a_conflict_and_merges_nothing() -> None:
    result = resolve(UPDATE, {"id": "1", "v": "a"}, {"id": "1", "v": "b"}, {"id": "1", "v": "c"},
                     TablePolicy(Rule(MANUAL), {"other": Rule(DELTA)}))
    assert result.outcome == "conflict" and "v: the new writer holds 'c'" in result.why[0]


def test_columns_the_lost_change_did_not_touch_keep_the_new_writers_value() -> None:
    before = {"id": "1", "count": "5", "note": "a"}
    result = resolve(UPDATE, before, {**before, "count": "6"}, {**before, "count": "9", "note": "changed"}, COUNTER)
    assert result.outcome == "apply" and result.write == {"count": "10"}


def test_skip_lists_without_applying_and_deletes_follow_the_table_rule() -> None:
    assert resolve(INSERT, None, {"id": "1"}, None, TablePolicy(Rule(SKIP))).outcome == "skipped"
    changed = {"id": "1", "v": "new"}
    assert resolve(DELETE, {"id": "1", "v": "old"}, None, changed, TablePolicy(Rule(KEEP_NEW))).outcome == "resolved"
    assert resolve(DELETE, {"id": "1", "v": "old"}, None, changed, TablePolicy(Rule(KEEP_LOST))).action == "delete"
    assert resolve(DELETE, {"id": "1", "v": "old"}, None, changed, COUNTER).outcome == "conflict"
    assert resolve(DELETE, {"id": "1", "v": "old"}, None, None, COUNTER).outcome == "done"


def test_delta_and_timestamps_parse_what_postgresql_prints() -> None:
    assert delta("10.50", "12.00", "11.25") == "12.75"
    assert delta(None, "3", "4") == "7"
    assert delta("1", "x", "2") is None and delta("1", None, "2") is None
    assert later_side("2026-12-02 10:00:00.5+00", "2026-12-02 10:00:00+00") == "lost"
    assert later_side("2026-12-02 10:00:00+00", "2026-12-02 10:00:00+00") == "new"
    assert later_side("12", "2026-12-02 10:00:00+00") is None


@pytest.mark.parametrize(("policy", "named"), [
    ({"database": "orders", "table": "t", "merge": "lww"}, "timestamp: lww needs the column"),
    ({"database": "orders", "table": "t", "merge": "skip", "columns": ["a"]}, "columns: skip is for a whole table"),
    ({"database": "orders", "table": "t", "merge": "sum"}, "'sum' is not a merge policy"),
    ({"database": "nope", "table": "t", "merge": "delta"}, "must be one of orders, catalog"),
    ({"database": "orders", "table": "Bad Name", "merge": "delta"}, "table"),
])
def test_a_bad_policy_is_refused_at_load_naming_the_field(policy: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(reconcile={"policies": [policy]})
    assert "reconcile.policies" in str(refused.value) and named in str(refused.value)


def test_two_rules_for_one_column_are_refused_and_policies_fold_per_table() -> None:
    twice = [{"database": "orders", "table": "t", "columns": ["n"], "merge": "delta"},
             {"database": "orders", "table": "public.t", "columns": ["n"], "merge": "keep-new"}]
    with pytest.raises(ConfigError, match=r"\[1\] repeats the rule of \[0\] for orders public.t n"):
        load_settings(reconcile={"policies": twice})
    settings = load_settings(reconcile={"policies": [
        {"database": "orders", "table": "t", "columns": ["n"], "merge": "delta"},
        {"database": "orders", "table": "t", "merge": "keep-new"},
        {"database": "catalog", "table": "other", "merge": "skip"}]})
    folded = policies_for(settings.reconcile.policies, "orders")
    assert folded == {"public.t": TablePolicy(Rule(KEEP_NEW), {"n": Rule(DELTA)})}


def test_a_policy_the_writers_tables_cannot_take_is_refused_and_an_absent_table_only_noted() -> None:
    policies = {"public.t": TablePolicy(columns={"name": Rule(DELTA), "gone": Rule(KEEP_NEW)}),
                "public.missing": TablePolicy(Rule(SKIP))}
    with pytest.raises(InputError) as refused:
        check_types(policies, {"public.t": {"id": "integer", "name": "text"}, "public.missing": None})
    text = str(refused.value)
    assert "public.t has no column gone" in text and "public.missing" not in text
    assert "delta on public.t.name, a text" in text and refused.value.field == "reconcile.policies"
    notes = check_types({"public.t": TablePolicy(columns={"n": Rule(DELTA)}), "public.missing": TablePolicy()},
                        {"public.t": {"n": "numeric(10,2)"}, "public.missing": None})
    assert notes == ["reconcile.policies: public.missing does not exist on the writer; its rule applies to nothing"]
