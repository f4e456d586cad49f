"""Commit latency and throughput of ``async``, ``bounded`` and ``sync`` replication side by side, printed (never
asserted): one throwaway deployment per mode (no shop), the link at 30 ms one way, one client committing
single-row transactions to the orders writer as fast as it can for ``--seconds``. Floor: the same client on the
same writer with ``synchronous_commit = local`` (no replication wait at all), measured in each run.

    .venv/bin/python benchmarks/replication_modes.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.deploy import running_deployment  # noqa: E402

EAST = "us-east-1"


def commit_loop(dsn: str, seconds: float, local: bool) -> list[float]:
    """Milliseconds per commit of one-row transactions for ``seconds``."""
    out: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table if not exists bench_modes (id bigserial primary key, at timestamptz default now())")
        if local:
            conn.execute("set synchronous_commit = local")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            conn.execute("insert into bench_modes default values")
            out.append((time.perf_counter() - started) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    print(f"{'mode':<9} {'commits/s':>10} {'p50 ms':>8} {'p99 ms':>8}   floor (synchronous_commit=local): "
          f"{'commits/s':>9} {'p50 ms':>7}")
    for mode in ("async", "bounded", "sync"):
        with running_deployment(latency_ms=30.0, shop=False, replication={"mode": mode, "max_lag_s": 2.0}) as dep:
            time.sleep(2)  # the writer's agent applies the mode within a check
            dsn = dep.gdbs.cluster("orders").member(EAST).conninfo("orders")
            floor = commit_loop(dsn, args.seconds / 2, local=True)
            ms = commit_loop(dsn, args.seconds, local=False)
            print(f"{mode:<9} {len(ms) / args.seconds:10.0f} {statistics.median(ms):8.2f} {p(ms, 0.99):8.2f}   "
                  f"{'':>34}{len(floor) / (args.seconds / 2):9.0f} {statistics.median(floor):7.2f}", flush=True)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("sync pays one round trip to the other region per commit (2 x 30 ms); async and bounded do not")


if __name__ == "__main__":
    main()
