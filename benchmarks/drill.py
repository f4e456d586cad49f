"""Failover drills of every fault kind on a throwaway deployment, printed (never asserted).

Per fault kind, ``--runs`` drills (``regionctl drill run``'s own sequence: shoppers and the ledger clients on,
the fault at a seeded moment, an ungraceful RegionFailover, the fault reverted, the reports, Failback), each
with its own seed. Printed per kind: runs, PASS, acknowledged and lost writes, lost without a trace (must be 0),
recovery p50/max (the runbook's own figure: first order the new writer committed, served by the surviving
region) next to the promote floor of the same runs (the bare promotion to first write), and the clients'
longest write outage.

    .venv/bin/python benchmarks/drill.py [--runs 5] [--faults partition,isolate,...] [--duration 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.deploy import running_deployment  # noqa: E402
from tests.support.drills import leave_healthy  # noqa: E402

from regionctl.drill import records  # noqa: E402
from regionctl.drill.faults import FAULTS  # noqa: E402
from regionctl.drill.run import Drill, DrillSpec  # noqa: E402

HOME = "us-east-1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--load-rate", type=float, default=3.0)
    args = parser.parse_args()
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    results: dict[str, list[dict[str, Any]]] = {f: [] for f in faults}
    with running_deployment() as deployment:
        gdbs = deployment.gdbs
        for fault in faults:
            for n in range(args.runs):
                spec = DrillSpec(fault=fault, duration_s=args.duration, load_rate=args.load_rate, seed=1000 + n)
                drill_id = records.new_drill_id()
                drill = Drill(deployment.topo, gdbs, spec, records.drills_dir(deployment.topo) / drill_id, drill_id,
                              progress=_printer(f"  [{fault} {n + 1}]"))
                try:
                    record = drill.run()
                except Exception as exc:  # noqa: BLE001 - a drill that could not finish is a result too
                    record = {"verdict": "ERROR", "reason": str(exc), "figures": {}, "check": {"counts": {}}}
                if "id" in record:
                    records.save(deployment.topo, record)
                print(f"{fault} {n + 1}: {record['verdict']}: {record['reason']}", flush=True)
                results[fault].append(record)
                leave_healthy(deployment, HOME)
    print()
    print(f"{'fault':12} {'runs':>4} {'PASS':>4} {'acked':>6} {'lost':>5} {'untraced':>8} "
          f"{'recovery p50/max s':>19} {'promote floor p50/max s':>24} {'outage p50 s':>12}")
    for fault, rows in results.items():
        figures = [r["figures"] for r in rows]
        recovery = [f["recovery_s"] for f in figures if f.get("recovery_s") is not None]
        floor = [f["promote_floor_s"] for f in figures if f.get("promote_floor_s") is not None]
        outage = [f["write_outage_s"] for f in figures if f.get("write_outage_s") is not None]
        print(f"{fault:12} {len(rows):4} {sum(r['verdict'] == 'PASS' for r in rows):4} "
              f"{sum(f.get('acknowledged', 0) for f in figures):6} {sum(f.get('lost', 0) for f in figures):5} "
              f"{sum(r['check']['counts'].get('unreported', 0) for r in rows):8} {_pair(recovery):>19} "
              f"{_pair(floor):>24} {_median(outage):>12}")


def _printer(prefix: str) -> Callable[[str], None]:
    def progress(line: str) -> None:
        print(f"{prefix} {line}", flush=True)
    return progress


def _pair(values: list[float]) -> str:
    return "-" if not values else f"{statistics.median(values):.2f}/{max(values):.2f}"


def _median(values: list[float]) -> str:
    return "-" if not values else f"{statistics.median(values):.2f}"


if __name__ == "__main__":
    main()
