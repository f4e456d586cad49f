"""The decision taken when a replicated version meets the local one, case by case, with its reason."""

from __future__ import annotations

from regionctl.regionalstore.lww import Action, Version, concurrent, decide, dominates, local_write, merge

EAST, WEST = "us-east-1", "us-west-2"


def test_vector_dominance_and_merge() -> None:
    assert dominates({EAST: 5, WEST: 3}, {EAST: 5})
    assert not dominates({EAST: 5}, {EAST: 5, WEST: 1})
    assert concurrent({EAST: 5}, {WEST: 1})
    assert merge({EAST: 5, WEST: 1}, {WEST: 7}) == {EAST: 5, WEST: 7}


def test_local_write_is_stamped_after_the_version_it_overwrites_even_with_a_slow_clock() -> None:
    existing = Version(1000, WEST, {WEST: 1000})
    written = local_write(existing, proposed_hlc=10, region=EAST)
    assert written.stamp == (1001, EAST)
    assert written.vv == {WEST: 1000, EAST: 1001}
    assert local_write(None, 10, EAST, deleted=True) == Version(10, EAST, {EAST: 10}, deleted=True)


def test_first_version_is_inserted_without_conflict() -> None:
    decision = decide(Version(5, EAST, {EAST: 5}), None)
    assert (decision.action, decision.conflict, decision.winner) == (Action.INSERT, False, "incoming")
    assert decision.reason == "no local version of this item"


def test_successor_replaces_without_conflict() -> None:
    local = Version(5, EAST, {EAST: 5})
    decision = decide(Version(9, WEST, {EAST: 5, WEST: 9}), local)
    assert (decision.action, decision.conflict) == (Action.REPLACE, False)
    assert "supersedes" in decision.reason


def test_concurrent_newer_incoming_wins_and_is_a_conflict() -> None:
    decision = decide(Version(9, WEST, {WEST: 9}), Version(5, EAST, {EAST: 5}))
    assert (decision.action, decision.conflict, decision.winner) == (Action.REPLACE, True, "incoming")
    assert decision.vv == {EAST: 5, WEST: 9}
    assert decision.reason.startswith("concurrent writes: incoming version (9, us-west-2) wins")


def test_concurrent_older_incoming_loses_but_its_history_is_absorbed() -> None:
    decision = decide(Version(5, WEST, {WEST: 5}), Version(9, EAST, {EAST: 9}))
    assert (decision.action, decision.conflict, decision.winner) == (Action.KEEP, True, "local")
    assert decision.vv == {EAST: 9, WEST: 5}


def test_equal_timestamps_are_broken_by_region_name() -> None:
    decision = decide(Version(7, WEST, {WEST: 7}), Version(7, EAST, {EAST: 7}))
    assert decision.action is Action.REPLACE  # "us-west-2" > "us-east-1"
    assert decide(Version(7, EAST, {EAST: 7}), Version(7, WEST, {WEST: 7})).action is Action.KEEP


def test_duplicate_delivery_is_skipped() -> None:
    version = Version(7, EAST, {EAST: 7})
    decision = decide(version, version)
    assert (decision.action, decision.conflict) == (Action.SKIP, False)
    assert decision.reason.startswith("duplicate")


def test_old_version_already_superseded_is_skipped_without_conflict() -> None:
    decision = decide(Version(3, EAST, {EAST: 3}), Version(8, WEST, {EAST: 3, WEST: 8}))
    assert (decision.action, decision.conflict) == (Action.SKIP, False)
    assert "already superseded" in decision.reason


def test_older_write_does_not_resurrect_a_tombstone() -> None:
    tombstone = Version(8, WEST, {WEST: 8}, deleted=True)
    decision = decide(Version(3, EAST, {EAST: 3}), tombstone)
    assert decision.winner == "local"
    assert "tombstone (8, us-west-2)" in decision.reason


def test_clock_anomaly_keeps_the_larger_stamp_and_reports_it() -> None:
    decision = decide(Version(3, EAST, {EAST: 3, WEST: 9}), Version(9, WEST, {WEST: 9}))
    assert (decision.action, decision.conflict) == (Action.KEEP, True)
    assert decision.reason.startswith("clock anomaly")
