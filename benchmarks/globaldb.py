"""Measured timings of the global database operations on this machine (figures, never assertions).

Runs a throwaway deployment and, for N rounds: a switchover under a running writer (write outage), an unplanned
failover during a partition (promote to first write, rows lost), the rebuild of the old writer, a snapshot and
a point-in-time restore. Usage: .venv/bin/python benchmarks/globaldb.py [--rounds 5] [--latency-ms 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.deploy import running_deployment  # noqa: E402
from tests.support.workload import AckingWriter  # noqa: E402

from regionctl.globaldb.endpoints import writer_dsn  # noqa: E402

EAST, WEST = "us-east-1", "us-west-2"


def summary(name: str, values: list[float], unit: str) -> str:
    if not values:
        return f"{name:<42} (no samples)"
    return (f"{name:<42} n={len(values)}  p50={statistics.median(values):8.1f} {unit}  "
            f"min={min(values):8.1f}  max={max(values):8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {k: [] for k in (
        "switchover write outage", "switchover lost rows", "failover promote->first write", "failover lost rows",
        "preserve copy", "rebuild (pg_rewind)", "snapshot", "restore to time")}
    with running_deployment(latency_ms=args.latency_ms) as dep:
        gdbs = dep.gdbs
        cluster = gdbs.cluster("orders")
        for round_no in range(args.rounds):
            table = f"bench_r{round_no}"
            writer = AckingWriter(writer_dsn(cluster, EAST), table)
            writer.create_table()
            writer.start()
            writer.wait_for(100)
            result = gdbs.switchover("orders", WEST)
            writer.wait_for(50)
            acked = set(writer.stop())
            figures["switchover write outage"].append(result.write_outage_ms)
            with cluster.member(WEST).connect("orders") as conn:
                have = {r["id"] for r in conn.execute(f"select id from {table}")}
            figures["switchover lost rows"].append(len(acked - have))
            gdbs.switchover("orders", EAST)

            writer = AckingWriter(cluster.member(EAST).conninfo("orders"), table, stop_on_error=True)
            writer.next_id = 10_000_000
            writer.start()
            writer.wait_for(50)
            dep.link.partition("both")
            writer.wait_for(100)
            failed = gdbs.failover("orders", WEST)
            dep.link.heal("both")
            acked = set(writer.stop())
            with cluster.member(WEST).connect("orders") as conn:
                have = {r["id"] for r in conn.execute(f"select id from {table}")}
            figures["failover promote->first write"].append(failed.promote_to_first_write_ms)
            figures["failover lost rows"].append(len(acked - have))
            copy = gdbs.preserve("orders", EAST)
            figures["preserve copy"].append(copy.seconds * 1000)
            rebuilt = gdbs.rebuild("orders", EAST)
            figures["rebuild (pg_rewind)"].append(rebuilt.seconds * 1000)
            gdbs.switchover("orders", EAST)

            started = time.monotonic()
            gdbs.snapshot("orders")
            figures["snapshot"].append((time.monotonic() - started) * 1000)
            from datetime import UTC, datetime

            time.sleep(0.2)
            restored = gdbs.restore("orders", target_time=datetime.now(UTC))
            figures["restore to time"].append(restored.seconds * 1000)
            from regionctl.globaldb.restore import drop_restore

            drop_restore(cluster, restored.id)
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)
    print(f"global database operations, link latency {args.latency_ms} ms one way, {args.rounds} rounds")
    for name, values in figures.items():
        unit = "rows" if "rows" in name else "ms"
        print(summary(name, values, unit))


if __name__ == "__main__":
    main()
