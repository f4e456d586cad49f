"""The bundled runbooks validate, and do what they say on fake ports, also when the engine dies at any step
boundary: exactly one promotion per database, the diverged copies kept before any rebuild."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from regionctl.runbooks import journal as J
from regionctl.runbooks.actions import default_registry
from regionctl.runbooks.engine import Engine
from regionctl.runbooks.fakes import FakeDatabases, FakeReconciler, FakeRouting
from regionctl.runbooks.loader import RunbookCatalog
from regionctl.runbooks.ports import ProbeResult
from tests.unit.runbooks.harness import Harness, crash_at

PRIMARY, STANDBY = "us-east-1", "us-west-2"
BUNDLED = ("DisableApplication", "EnableApplication", "FailoverOrders", "FailoverCatalog", "RegionFailover",
           "Failback")


def test_every_bundled_runbook_validates_against_the_registry() -> None:
    catalog = RunbookCatalog(default_registry())
    assert set(BUNDLED) <= set(catalog.names())
    for name in BUNDLED:
        runbook = catalog.get(name).runbook
        assert runbook.description
        text = catalog.get(name).source
        assert PRIMARY not in text and STANDBY not in text, f"{name} hard-codes a region"


def _h(root: Path) -> Harness:
    return Harness(root, with_library=True)


def _dbs(h: Harness) -> FakeDatabases:
    assert isinstance(h.ports.databases, FakeDatabases)
    return h.ports.databases


def _routing(h: Harness) -> FakeRouting:
    assert isinstance(h.ports.routing, FakeRouting)
    return h.ports.routing


def test_disable_and_enable_application(tmp_path: Path) -> None:
    h = _h(tmp_path)
    ex = h.run("DisableApplication", {"region": PRIMARY})
    assert ex.status == J.SUCCEEDED and _routing(h).controls == {PRIMARY: "Off", STANDBY: "On"}
    again = h.run("DisableApplication", {"region": PRIMARY})  # idempotent: no second change
    assert again.status == J.SUCCEEDED and len(_routing(h).changes) == 1
    refused = h.run("DisableApplication", {"region": STANDBY})
    assert refused.status == J.FAILED and "AtLeastOneOn" in (refused.error or "")
    assert _routing(h).controls[STANDBY] == "On"
    assert h.run("EnableApplication", {"region": PRIMARY}).status == J.SUCCEEDED
    assert _routing(h).controls == {PRIMARY: "On", STANDBY: "On"}


@pytest.mark.parametrize("database", ["orders", "catalog"])
def test_failover_one_database(tmp_path: Path, database: str) -> None:
    h = _h(tmp_path)
    _dbs(h).lose_region(PRIMARY)
    ex = h.run(f"Failover{database.capitalize()}", {"region": PRIMARY})
    assert ex.status == J.SUCCEEDED, ex.error
    assert ex.outputs == {"writer": STANDBY, "promoted": True}
    other = "catalog" if database == "orders" else "orders"
    assert _dbs(h).state[database].writer == STANDBY and _dbs(h).promotions(database) == 1
    assert _dbs(h).promotions(other) == 0
    assert _routing(h).controls[PRIMARY] == "Off"


def test_ungraceful_region_failover_then_failback(tmp_path: Path) -> None:
    h = _h(tmp_path)
    dbs = _dbs(h)
    dbs.lose_region(PRIMARY)
    ex = h.run("RegionFailover", {"region": PRIMARY})
    assert ex.status == J.SUCCEEDED, ex.error
    assert ex.parameters == {"region": PRIMARY, "to_region": STANDBY, "mode": "ungraceful", "approver": ""}
    assert {d: dbs.state[d].writer for d in dbs.state} == {"orders": STANDBY, "catalog": STANDBY}
    assert {(d, r) for d, r, _ in dbs.preserved} == {("orders", PRIMARY), ("catalog", PRIMARY)}
    assert ex.recovery_seconds is not None and ex.recovery_seconds > 0
    assert [op for op in dbs.log if op[0] == "failover"] == [("failover", "orders", STANDBY),
                                                              ("failover", "catalog", STANDBY)] or \
        sorted(op for op in dbs.log if op[0] == "failover") == [("failover", "catalog", STANDBY),
                                                                ("failover", "orders", STANDBY)]

    dbs.catch_up_polls = 3  # the rebuilt standbys need a few looks before they have caught up
    back = h.run("Failback", {"region": PRIMARY})
    assert back.status == J.SUCCEEDED, back.error
    assert {d: dbs.state[d].writer for d in dbs.state} == {"orders": PRIMARY, "catalog": PRIMARY}
    assert {d: dbs.promotions(d) for d in dbs.state} == {"orders": 2, "catalog": 2}
    switch = [op for op in dbs.log if op[0] == "switchover"]
    assert sorted(switch) == [("switchover", "catalog", PRIMARY), ("switchover", "orders", PRIMARY)]
    # the copy was kept before the rebuild: preserve precedes rebuild in the log for each database
    for database in ("orders", "catalog"):
        assert dbs.log.index(("preserve", database, PRIMARY)) < dbs.log.index(("rebuild", database, PRIMARY))
    assert _routing(h).controls == {PRIMARY: "On", STANDBY: "On"}
    assert back.recovery_seconds is not None


def _reconciler(h: Harness) -> FakeReconciler:
    assert isinstance(h.ports.reconciler, FakeReconciler)
    return h.ports.reconciler


def test_an_ungraceful_failover_reports_what_was_lost_and_replays_it_only_once_approved(tmp_path: Path) -> None:
    h = _h(tmp_path)
    _dbs(h).lose_region(PRIMARY)
    _reconciler(h).lost = 3

    async def body(engine: Engine) -> J.Execution:
        ex = await engine.start("RegionFailover", {"region": PRIMARY, "approver": "oncall"}, "tester")
        for _ in range(500):
            if engine.waiting_approvals(ex.id):
                break
            await asyncio.sleep(0.01)
        (_, waiting), = engine.waiting_approvals(ex.id)
        assert waiting.step == "ApproveReplay" and "(3 transactions)" in (waiting.wait or {})["message"]
        assert set(_reconciler(h).reports) == {"orders-us-east-1-1", "catalog-us-east-1-2"}
        assert not _reconciler(h).replays  # nothing replayed before the approval
        engine.decide(ex.id, "oncall", True, "the customers are waiting")
        return await engine.wait(ex.id, 30)

    ex = h.session(body)
    assert ex.status == J.SUCCEEDED, ex.error
    assert _reconciler(h).replays == {"orders-us-east-1-1": "oncall", "catalog-us-east-1-2": "oncall"}
    replayed = next(r for r in h.journal().runs(ex.id) if r.step == "ReplayOrders")
    assert replayed.outputs == {"applied": [f"orders-us-east-1-1-tx{n}" for n in range(3)], "refused": []}


@pytest.mark.parametrize("approver", ["", "oncall"])
def test_without_an_approver_or_when_declined_the_reports_wait_for_a_later_replay(tmp_path: Path,
                                                                                 approver: str) -> None:
    h = _h(tmp_path)
    _dbs(h).lose_region(PRIMARY)

    async def body(engine: Engine) -> J.Execution:
        ex = await engine.start("RegionFailover", {"region": PRIMARY, "approver": approver}, "tester")
        if approver:
            for _ in range(500):
                if engine.waiting_approvals(ex.id):
                    break
                await asyncio.sleep(0.01)
            engine.decide(ex.id, approver, False, "replay by hand after checking the conflicts")
        return await engine.wait(ex.id, 30)

    ex = h.session(body)
    assert ex.status == J.SUCCEEDED, ex.error
    assert len(_reconciler(h).reports) == 2 and not _reconciler(h).replays
    assert [r.step for r in h.journal().runs(ex.id) if r.parent_seq is None][-1] == "ReportOnly"


def test_graceful_region_failover_switches_over_and_keeps_nothing(tmp_path: Path) -> None:
    h = _h(tmp_path)
    ex = h.run("RegionFailover", {"region": PRIMARY, "mode": "graceful"})
    assert ex.status == J.SUCCEEDED, ex.error
    dbs = _dbs(h)
    assert sorted(op for op in dbs.log) == [("switchover", "catalog", STANDBY), ("switchover", "orders", STANDBY)]
    assert dbs.state["orders"].members[PRIMARY].role == "standby"
    # failback after a graceful failover: nothing diverged, nothing rebuilt, one switchover back each
    back = h.run("Failback", {"region": PRIMARY})
    assert back.status == J.SUCCEEDED, back.error
    assert not dbs.preserved and not [op for op in dbs.log if op[0] == "rebuild"]
    assert not _reconciler(h).reports  # nothing was lost
    assert {d: dbs.promotions(d) for d in dbs.state} == {"orders": 2, "catalog": 2}


def test_failback_waits_for_the_named_approver(tmp_path: Path) -> None:
    h = _h(tmp_path)
    h.run("RegionFailover", {"region": PRIMARY, "mode": "graceful"})

    async def body(engine: Engine) -> J.Execution:
        ex = await engine.start("Failback", {"region": PRIMARY, "approver": "oncall"}, "tester")
        for _ in range(500):
            if engine.waiting_approvals(ex.id):
                break
            await asyncio.sleep(0.01)
        assert _dbs(h).state["orders"].writer == STANDBY  # nothing switched before the approval
        engine.decide(ex.id, "oncall", True, "traffic is low")
        return await engine.wait(ex.id, 30)

    ex = h.session(body)
    assert ex.status == J.SUCCEEDED and _dbs(h).state["orders"].writer == PRIMARY


def _run_with_crash(h: Harness, runbook: str, params: dict[str, Any], nth: int) -> list[tuple[str, str | None]]:
    hook, seen = crash_at(nth)

    async def body(engine: Engine) -> J.Execution:
        ex = await engine.start(runbook, params, "tester")
        return await engine.wait(ex.id, 30)

    h.session(body, crash_hook=hook)
    return seen


@pytest.mark.parametrize("mode", ["ungraceful", "graceful"])
def test_region_failover_killed_at_every_boundary_promotes_each_database_once(tmp_path: Path, mode: str) -> None:
    params = {"region": PRIMARY, "mode": mode}
    clean = _h(tmp_path / "clean")
    boundaries = _run_with_crash(clean, "RegionFailover", params, -1)
    promotion_steps = {"FailoverOrders", "FailoverCatalog", "SwitchoverOrders", "SwitchoverCatalog"}
    # every boundary around a promotion, plus every other kind of boundary once
    chosen = [i for i, (p, s) in enumerate(boundaries) if s in promotion_steps]
    kinds_seen: set[str] = set()
    for i, (p, _s) in enumerate(boundaries):
        if p not in kinds_seen:
            kinds_seen.add(p)
            chosen.append(i)
    for nth in sorted(set(chosen)):
        h = _h(tmp_path / f"crash{nth}")
        if mode == "ungraceful":
            _dbs(h).lose_region(PRIMARY)
        _run_with_crash(h, "RegionFailover", params, nth)
        resumed = h.resume()
        where = f"{mode}, crash at {boundaries[nth]}"
        assert all(e.status == J.SUCCEEDED for e in resumed), where
        dbs = _dbs(h)
        assert {d: dbs.promotions(d) for d in dbs.state} == {"orders": 1, "catalog": 1}, where
        assert {d: dbs.state[d].writer for d in dbs.state} == {"orders": STANDBY, "catalog": STANDBY}, where


def test_failback_killed_at_every_promotion_boundary_switches_each_database_once(tmp_path: Path) -> None:
    def prepared(root: Path) -> Harness:
        h = _h(root)
        _dbs(h).lose_region(PRIMARY)
        assert h.run("RegionFailover", {"region": PRIMARY}).status == J.SUCCEEDED
        return h

    clean = prepared(tmp_path / "clean")
    boundaries = _run_with_crash(clean, "Failback", {"region": PRIMARY}, -1)
    interesting = {"SwitchoverOrders", "SwitchoverCatalog", "RebuildOrders", "PreserveOrders"}
    in_flight = {"step.running", "step.acted"}  # where a re-run happens; finished steps are covered above
    for nth in [i for i, (p, s) in enumerate(boundaries) if s in interesting and p in in_flight]:
        h = prepared(tmp_path / f"crash{nth}")
        _run_with_crash(h, "Failback", {"region": PRIMARY}, nth)
        resumed = h.resume()
        where = f"crash at {boundaries[nth]}"
        assert all(e.status == J.SUCCEEDED for e in resumed), where
        dbs = _dbs(h)
        assert {d: dbs.promotions(d) for d in dbs.state} == {"orders": 2, "catalog": 2}, where
        assert [op for op in dbs.log if op[0] == "rebuild"].count(("rebuild", "orders", PRIMARY)) <= 2, where
        assert {d: dbs.state[d].writer for d in dbs.state} == {"orders": PRIMARY, "catalog": PRIMARY}, where


def test_recovery_counts_only_a_write_on_the_new_writer_served_by_a_region_staying_in_service(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A partition: the old writer still answers and still takes the probe's order until the failover. That order
    is about to be lost, so the recovery figure starts only once the new writer takes one."""
    h = _h(tmp_path)
    dbs = _dbs(h)
    promote = dbs.failover
    promoting: dict[str, float] = {}

    def slow_failover(database: str, to_region: str) -> Any:
        time.sleep(0.5)  # a promotion that waits for the old writer's lease
        promoting[database] = time.time()  # the new writer takes writes from within the next call
        return promote(database, to_region)

    monkeypatch.setattr(dbs, "failover", slow_failover)
    ex = h.run("RegionFailover", {"region": PRIMARY})
    assert ex.status == J.SUCCEEDED, ex.error
    journal = h.journal()
    assert ex.recovered_at is not None and ex.started_at is not None
    # Never before the promotion; it may come before the step has recorded its end (the probe runs alongside).
    assert ex.recovered_at >= promoting["orders"] >= ex.started_at + 0.5
    notes = [e.message for e in journal.events(ex.id) if e.kind == "recovery"]
    assert any(f"does not count yet: written on {PRIMARY}, not on {STANDBY}" in n for n in notes), notes
    assert any(f"passed (served by {STANDBY}, written on {STANDBY})" in n for n in notes), notes


def test_a_probe_result_names_why_it_does_not_count() -> None:
    ok = ProbeResult(True, served_by=PRIMARY, writer=STANDBY)
    assert ok.misses() is None and ok.misses(writer=STANDBY) is None
    assert ok.misses(writer=PRIMARY) == f"written on {STANDBY}, not on {PRIMARY}"
    assert ok.misses(not_served_by=PRIMARY) == f"served by {PRIMARY}, the region being left"
    assert ProbeResult(False, detail="HTTP 503").misses() == "failed: HTTP 503"
    assert ProbeResult.of(True).misses() is None and ProbeResult.of(True).misses(writer=STANDBY) is not None


def test_a_recovery_override_keeps_the_runbooks_target_writer(tmp_path: Path) -> None:
    from regionctl.runbooks.model import Recovery

    h = _h(tmp_path)
    _dbs(h).lose_region(PRIMARY)
    ex = h.run("RegionFailover", {"region": PRIMARY},
               recovery=Recovery.model_validate({"probe": "global_write", "after": "WaitWritable"}))
    assert ex.status == J.SUCCEEDED, ex.error
    assert ex.recovery is not None and (ex.recovery["writer"], ex.recovery["notServedBy"]) == (STANDBY, PRIMARY)
    assert ex.recovery["after"] == "WaitWritable"
