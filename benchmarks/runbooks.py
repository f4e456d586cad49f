"""Runbook recovery times, printed (never asserted).

Default: the bundled runbooks on the in-memory fakes, where a recovery is pure engine overhead (journal commits,
scheduling, probe interval): promotions, routing changes and probes cost nothing.

``--real``: a throwaway deployment (what ``regionctl up`` starts, link latency 10 ms), shoppers buying through
the global entry at 2 purchases/s, and per run, each runbook started through the engine's API as an operator
would:

1. us-east-1 loses its global databases (the orders and catalog writers crash, an immediate shutdown through
   the region's agent, and the region is marked down, so nothing restarts them), then an ungraceful
   RegionFailover to us-west-2 (no approver: it ends with the missing-transaction reports). Floor: the bare
   promote-to-first-write of that very failover
   (``promote_to_first_write_ms``, the slower of the two databases).
2. The region comes back (mark cleared; its databases stay fenced until rebuilt), then Failback: rebuild,
   catch up, switch over (RPO 0), re-enable. Lost orders: acknowledged during the Failback but not on the
   writer afterwards. Floor: the switchover's write outage (stop the writer to first write on the new one).
3. A graceful RegionFailover (switchover, recovery measured once the switchover step succeeded, since the
   region still takes orders before it) and the Failback after it (nothing to rebuild).
4. us-east-1 is killed as a whole (every process, its agent and databases included, kept down), then an
   ungraceful RegionFailover; the region is started again and failed back. Same floor as 1, and the lease wait
   printed next to it: with the agent dead nobody can confirm the old writer stopped, so the promotion waits
   for its lease to expire (invariant 7). The summary prints its recovery next to the database kill's.

The recovery time is the engine's own measure: from the execution's start (or its ``after`` step) to the first
order accepted through the global entry (probe ``global_write`` every 0.1 s).

    .venv/bin/python benchmarks/runbooks.py [--runs 5]            # fakes
    .venv/bin/python benchmarks/runbooks.py --real [--runs 5]     # a real deployment, ~3 min per run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.deploy import RunningDeployment, running_deployment  # noqa: E402
from tests.support.drills import (  # noqa: E402
    Shoppers,
    engine,
    leave_healthy,
    orders_held_in,
    started,
    wait_for,
    wait_settled,
)

from regionctl.deploy.regions import kill_region, start_region  # noqa: E402
from regionctl.runbooks.actions import default_registry  # noqa: E402
from regionctl.runbooks.engine import Engine  # noqa: E402
from regionctl.runbooks.fakes import FakeDatabases, fake_ports  # noqa: E402
from regionctl.runbooks.journal import Journal  # noqa: E402
from regionctl.runbooks.loader import LIBRARY, RunbookCatalog  # noqa: E402
from regionctl.runtime.supervisor import RegionMarks  # noqa: E402

REGIONS = ("us-east-1", "us-west-2")
EAST, WEST = REGIONS
DATABASES = ("orders", "catalog")


# --- fakes: engine overhead -------------------------------------------------------------------------------------


async def _fake_scenario(root: Path, mode: str) -> dict[str, float]:
    ports = fake_ports(REGIONS)
    databases = ports.databases
    assert isinstance(databases, FakeDatabases)
    journal = Journal(root / "journal.sqlite")
    registry = default_registry()
    eng = Engine(journal, RunbookCatalog(registry, [LIBRARY]), ports, REGIONS, registry)
    figures: dict[str, float] = {}
    try:
        if mode != "graceful":
            databases.lose_region(REGIONS[0])
        ex = await eng.start("RegionFailover", {"region": REGIONS[0], "mode": mode}, "bench")
        ex = await eng.wait(ex.id, 60)
        figures["failover_recovery_s"] = ex.recovery_seconds or float("nan")
        figures["failover_total_s"] = (ex.ended_at or 0) - (ex.started_at or 0)
        figures["transitions"] = len(journal.events(ex.id))
        back = await eng.start("Failback", {"region": REGIONS[0]}, "bench")
        back = await eng.wait(back.id, 60)
        figures["failback_recovery_s"] = back.recovery_seconds or float("nan")
        figures["failback_total_s"] = (back.ended_at or 0) - (back.started_at or 0)
    finally:
        await eng.close()
        journal.close()
    return figures


def _commit_cost(root: Path, n: int = 500) -> float:
    journal = Journal(root / "commits.sqlite")
    ex = journal.create_execution("x", "", {}, "bench")
    began = time.perf_counter()
    for i in range(n):
        journal.note(ex.id, f"note {i}")
    journal.close()
    return (time.perf_counter() - began) / n


def fakes(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"journal commit (one transition): {_commit_cost(Path(tmp)) * 1000:.2f} ms")
        for mode in ("ungraceful", "graceful"):
            rows = [asyncio.run(_fake_scenario(Path(tmp) / f"{mode}{i}", mode)) for i in range(runs)]
            for key in ("failover_recovery_s", "failover_total_s", "failback_recovery_s", "failback_total_s"):
                values = [r[key] for r in rows]
                print(f"{mode:>10} {key:<20} " + " ".join(f"{v:6.3f}" for v in values)
                      + f"   median {statistics.median(values):.3f} s")
            print(f"{mode:>10} {'journal events':<20} {int(rows[0]['transitions'])} per RegionFailover")
    print("floor on fakes: 0 (promotion and probes are free); recovery = engine overhead + probe interval 0.1 s")


# --- real: a deployment -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    run: int
    what: str
    recovery_s: float | None
    floor_ms: float | None
    floor_kind: str
    total_s: float | None
    lost_orders: int | None = None
    status: str = "succeeded"
    lease_wait_s: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.recovery_s is None or not self.floor_ms:
            return None
        return self.recovery_s * 1000 / self.floor_ms


def _execute(deployment: RunningDeployment, runbook: str, params: dict[str, str],
             recovery_after: str | None = None) -> dict[str, Any]:
    client = engine(deployment)
    try:
        started_view = client.start(runbook, params, "global_write" if recovery_after else None,
                                    recovery_after)
    finally:
        client.close()
    return wait_settled(deployment, started_view["id"], timeout=900)


def _new_records(deployment: RunningDeployment, before: dict[str, int]) -> list[dict[str, Any]]:
    found = []
    for name in DATABASES:
        history = deployment.gdbs.state(name).history
        found += [r.details for r in history[before[name]:]]
    return found


def _floor(records: list[dict[str, Any]], key: str) -> float | None:
    values = [float(r[key]) for r in records if r.get(key) is not None]
    return max(values) if values else None


def _counts(deployment: RunningDeployment) -> dict[str, int]:
    return {name: len(deployment.gdbs.state(name).history) for name in DATABASES}


def _row(run: int, what: str, view: dict[str, Any], floor: float | None, floor_kind: str,
         lost: int | None = None) -> Row:
    return Row(run, what, view.get("recovery_s"), floor, floor_kind, view.get("duration_s"), lost, view["status"])


def lose_databases(deployment: RunningDeployment, region: str) -> None:
    """The region's global database writers crash (an immediate shutdown, through the region's agent) and stay
    down (the region is marked down)."""
    RegionMarks(deployment.topo.paths.state).mark_down(region)
    for name in DATABASES:
        deployment.gdbs.cluster(name).member(region).stop("immediate")


def failback(deployment: RunningDeployment, run: int, shoppers: Shoppers, what: str) -> Row:
    """Failback to us-east-1; lost = orders acknowledged since it started that the writer does not hold."""
    before, since = _counts(deployment), time.time()
    view = _execute(deployment, "Failback", {"region": EAST})
    shoppers.wait_for_orders(2, after=time.time(), timeout=120)
    during = [a for a in shoppers.acks() if started(a) >= since]
    lost = len({a.order_id for a in during} - orders_held_in(deployment, EAST))
    return _row(run, what, view, _floor(_new_records(deployment, before), "write_outage_ms"), "switch outage", lost)


def one_run(deployment: RunningDeployment, run: int, shoppers: Shoppers) -> list[Row]:
    rows = []
    # The region is lost while routing is settled: a failover within a safety rule's wait period of the last
    # routing change (the previous run's Failback) first waits the rest of that period out, by design.
    time.sleep(deployment.settings.routing.wait_period_s)
    before = _counts(deployment)
    lose_databases(deployment, EAST)
    view = _execute(deployment, "RegionFailover", {"region": EAST, "mode": "ungraceful"})
    rows.append(_row(run, "RegionFailover ungraceful", view,
                     _floor(_new_records(deployment, before), "promote_to_first_write_ms"), "promote->write"))
    RegionMarks(deployment.topo.paths.state).clear(EAST)

    rows.append(failback(deployment, run, shoppers, "Failback (after ungraceful)"))

    before = _counts(deployment)
    view = _execute(deployment, "RegionFailover", {"region": EAST, "mode": "graceful"}, "SwitchoverDatabases")
    rows.append(_row(run, "RegionFailover graceful", view,
                     _floor(_new_records(deployment, before), "write_outage_ms"), "switch outage"))
    rows.append(failback(deployment, run, shoppers, "Failback (after graceful)"))

    time.sleep(deployment.settings.routing.wait_period_s)
    before = _counts(deployment)
    kill_region(deployment.topo, EAST)
    view = _execute(deployment, "RegionFailover", {"region": EAST, "mode": "ungraceful"})
    records = _new_records(deployment, before)
    rows.append(replace(_row(run, "RegionFailover region killed", view,
                             _floor(records, "promote_to_first_write_ms"), "promote->write"),
                        lease_wait_s=_floor(records, "lease_wait_s")))
    start_region(deployment.topo, EAST)
    wait_for(lambda: all(deployment.gdbs.status(n).member(EAST).role != "unreachable" for n in DATABASES), 180,
             "us-east-1's agent to answer again", interval=1.0)
    rows.append(failback(deployment, run, shoppers, "Failback (after region kill)"))
    leave_healthy(deployment, EAST)
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[Row]) -> None:
    print(f"{'run':>3}  {'runbook':<28} {'status':<9} {'recovery s':>10} {'floor ms':>9} {'floor':<14} "
          f"{'ratio':>6} {'total s':>8} {'lost':>5} {'lease wait s':>12}")
    for r in rows:
        print(f"{r.run:>3}  {r.what:<28} {r.status:<9} {_fmt(r.recovery_s, '10.3f')} {_fmt(r.floor_ms, '9.1f')} "
              f"{r.floor_kind:<14} {_fmt(r.ratio, '6.1f')} {_fmt(r.total_s, '8.1f')} "
              f"{'-' if r.lost_orders is None else r.lost_orders:>5} {_fmt(r.lease_wait_s, '12.2f')}")
    print()
    for what in dict.fromkeys(r.what for r in rows):
        mine = [r for r in rows if r.what == what]
        rec = [r.recovery_s for r in mine if r.recovery_s is not None]
        ratios = [r.ratio for r in mine if r.ratio is not None]
        lost = [r.lost_orders for r in mine if r.lost_orders is not None]
        print(f"{what:<28} recovery median {_fmt(statistics.median(rec) if rec else None, '.3f')} s"
              f"  ratio to floor median {_fmt(statistics.median(ratios) if ratios else None, '.1f')}x"
              + (f"  lost orders total {sum(lost)}" if lost else ""))
    killed = [r.recovery_s for r in rows if r.what == "RegionFailover region killed" and r.recovery_s is not None]
    databases = [r.recovery_s for r in rows if r.what == "RegionFailover ungraceful" and r.recovery_s is not None]
    waits = [r.lease_wait_s for r in rows if r.what == "RegionFailover region killed" and r.lease_wait_s is not None]
    if killed and databases:
        print(f"whole region killed / databases killed, recovery medians: {statistics.median(killed):.3f} / "
              f"{statistics.median(databases):.3f} s = {statistics.median(killed) / statistics.median(databases):.1f}x"
              f" (lease wait median {statistics.median(waits) if waits else float('nan'):.2f} s of it)")


def real(runs: int) -> None:
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    began = time.monotonic()
    with running_deployment(latency_ms=10.0) as deployment, tempfile.TemporaryDirectory() as tmp:
        print(f"deployment up in {time.monotonic() - began:.0f} s")
        shoppers = Shoppers.through_the_global_entry(deployment, Path(tmp) / "acks.jsonl").start()
        shoppers.wait_for_orders(3, timeout=120)
        rows: list[Row] = []
        try:
            for run in range(1, runs + 1):
                rows += one_run(deployment, run, shoppers)
                print(f"run {run} done; load average {os.getloadavg()[0]:.2f}", flush=True)
        finally:
            shoppers.stop()
            print()
            print_table(rows)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("targets: ungraceful RegionFailover within 10x the floor; Failback with 0 lost orders")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--real", action="store_true", help="measure on a throwaway real deployment")
    args = parser.parse_args()
    if args.real:
        real(args.runs)
    else:
        fakes(args.runs)


if __name__ == "__main__":
    main()
