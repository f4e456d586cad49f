"""What reaching regions only over the network costs, printed (never asserted).

A throwaway deployment without the shop (link latency 10 ms between regions, 0 on the control path). From the
global plane, through the link, as every operation now goes:

- floor: a SQL round trip to the orders writer (``select 1`` on a kept connection) and a new connection each
  time (what ``wait_writable`` and status do);
- an agent status call (``GET /v1/members/orders``) and a no-op (``init`` of an existing member: the same path as
  a real operation, lock included, nothing done);
- failovers of the orders database over agents: the whole operation next to its own promote-to-first-write;
- a failover while the old writer's region is isolated: from the isolation to the fence (the old writer's last
  acknowledged commit, seen by a client in its region) and to the new writer's first write, next to the
  floor TTL + promote-to-first-write (a lower bound only: when the isolated region's etcd member led, the
  majority's new leader restarts every lease's TTL on election, so expiry comes later).

``benchmarks/runbooks.py --real`` measures RegionFailover's recovery against the same floor with shoppers.

    .venv/bin/python benchmarks/agents.py [--calls 300] [--failovers 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.deploy import RunningDeployment, running_deployment  # noqa: E402
from tests.support.workload import AckingWriter  # noqa: E402

EAST, WEST = "us-east-1", "us-west-2"


def timings(fn: Callable[[], object], n: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def line(what: str, ms: list[float]) -> str:
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{what:<44} p50 {statistics.median(ms):7.2f} ms   p99 {p99:7.2f} ms   (n={len(ms)})"


def isolated_failover(dep: RunningDeployment) -> None:
    """Isolate us-east-1 while a client in it commits to its writer; fail over; time the fence and the promotion."""
    gdbs = dep.gdbs
    host, port = dep.topo.pg_address(EAST, "orders")
    writer = AckingWriter(f"host={host} port={port} user=postgres dbname=orders passfile={dep.topo.login.passfile}",
                          "bench_isolation")
    writer.create_table()
    writer.start().wait_for(50)
    dep.link.isolate(EAST)
    isolated = time.time()
    try:
        result = gdbs.failover("orders", WEST)
        promoted = time.time()
    finally:
        dep.link.heal()
    writer.stop()
    ttl = dep.settings.leases.ttl_s
    fence_s = max(writer.acked_at) - isolated
    print(f"isolated failover: isolation -> old writer's last ack {fence_s:.2f} s "
          f"(bound: TTL - margin = {ttl - dep.settings.leases.fence_margin_s:g} s)")
    print(f"isolated failover: isolation -> new writer writable {promoted - isolated:.2f} s; lower bound TTL + "
          f"promote->first write = {ttl + result.promote_to_first_write_ms / 1000:.2f} s; lease wait "
          f"{result.lease_wait_s:.2f} s; {result.fence}")
    gdbs.rebuild("orders", EAST)
    gdbs.switchover("orders", EAST)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--failovers", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    with running_deployment(shop=False) as dep:
        gdbs = dep.gdbs
        cluster = gdbs.cluster("orders")
        writer = cluster.member(EAST)
        agent = gdbs.agents.client(EAST)
        with writer.connect() as conn:
            print(line("floor: SQL select 1, kept connection", timings(lambda: conn.execute("select 1"), args.calls)))
        print(line("floor: SQL connect + select 1", timings(lambda: writer.scalar("select 1"), args.calls // 3)))
        print(line("agent: member status", timings(lambda: agent.call("GET", "/v1/members/orders"), args.calls)))
        print(line("agent: no-op operation (init of an existing)",
                   timings(lambda: agent.call("POST", "/v1/members/orders/init"), args.calls)))
        print()
        print(f"{'failover':<10} {'whole s':>8} {'promote->first write ms':>24} {'ratio':>6}  fence")
        here, there = EAST, WEST
        for n in range(args.failovers):
            started = time.perf_counter()
            result = gdbs.failover("orders", there)
            whole = time.perf_counter() - started
            print(f"{n + 1:<10} {whole:8.3f} {result.promote_to_first_write_ms:24.1f} "
                  f"{whole * 1000 / max(result.promote_to_first_write_ms, 0.1):6.1f}  {result.fence}")
            gdbs.rebuild("orders", here)
            here, there = there, here
        if here != EAST:
            gdbs.switchover("orders", EAST)
        print()
        isolated_failover(dep)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
