"""Runbook engine figures on the in-memory fakes: what the engine itself adds to a recovery.

The recovery time of a runbook on fakes is pure engine overhead (journal commits, scheduling, probe interval):
the promotions, routing changes and probes cost nothing. With the real ports bound (ports.bind), the same
runbooks measure the real recovery time; the issue's benchmark (RegionFailover within 10x a bare promote-to-
first-write floor) then needs this overhead to be small next to that floor.

    .venv/bin/python benchmarks/runbooks.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from regionctl.runbooks.actions import default_registry
from regionctl.runbooks.engine import Engine
from regionctl.runbooks.fakes import FakeDatabases, fake_ports
from regionctl.runbooks.journal import Journal
from regionctl.runbooks.loader import LIBRARY, RunbookCatalog

REGIONS = ("us-east-1", "us-west-2")


async def _scenario(root: Path, mode: str) -> dict[str, float]:
    ports = fake_ports(REGIONS)
    databases = ports.databases
    assert isinstance(databases, FakeDatabases)
    journal = Journal(root / "journal.sqlite")
    registry = default_registry()
    engine = Engine(journal, RunbookCatalog(registry, [LIBRARY]), ports, REGIONS, registry)
    figures: dict[str, float] = {}
    try:
        if mode != "graceful":
            databases.lose_region(REGIONS[0])
        ex = await engine.start("RegionFailover", {"region": REGIONS[0], "mode": mode}, "bench")
        ex = await engine.wait(ex.id, 60)
        figures["failover_recovery_s"] = ex.recovery_seconds or float("nan")
        figures["failover_total_s"] = (ex.ended_at or 0) - (ex.started_at or 0)
        figures["transitions"] = len(journal.events(ex.id))
        back = await engine.start("Failback", {"region": REGIONS[0]}, "bench")
        back = await engine.wait(back.id, 60)
        figures["failback_recovery_s"] = back.recovery_seconds or float("nan")
        figures["failback_total_s"] = (back.ended_at or 0) - (back.started_at or 0)
    finally:
        await engine.close()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"journal commit (one transition): {_commit_cost(Path(tmp)) * 1000:.2f} ms")
        for mode in ("ungraceful", "graceful"):
            rows = [asyncio.run(_scenario(Path(tmp) / f"{mode}{i}", mode)) for i in range(args.runs)]
            for key in ("failover_recovery_s", "failover_total_s", "failback_recovery_s", "failback_total_s"):
                values = [r[key] for r in rows]
                print(f"{mode:>10} {key:<20} " + " ".join(f"{v:6.3f}" for v in values)
                      + f"   median {statistics.median(values):.3f} s")
            print(f"{mode:>10} {'journal events':<20} {int(rows[0]['transitions'])} per RegionFailover")
    print("floor on fakes: 0 (promotion and probes are free); recovery = engine overhead + probe interval 0.1 s")


if __name__ == "__main__":
    main()
