"""Purchases per second and latency through one region's ui, the CPU each shop service spends per acknowledged
purchase, the saturation point, and the carts replication lag under that load.

Starts a throwaway deployment (what `regionctl up` runs: link emulator, global databases, regional store with
its replicators through the link, the shop in both regions, the global plane), buys watches through one region's
ui (or the global entry) at a fixed rate, then tears it all down. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/shop.py [--region us-east-1] [--via ui|entry] [--rate 10] [--duration 20]
        [--latency-ms 30] [--saturate 10,15,20,30,40] [--workers 2|ui=2,...] [--against HEAD~3]

CPU per purchase comes from each service process's own CPU counters (user + system) over the load window,
divided by the purchases acknowledged in it. ``--saturate`` offers each rate for ``--step-s`` seconds and
reports the highest one acknowledged at >= 95% with p99 under 1 s. ``--workers 2`` runs every shop service as two
processes sharing its address (``workload.workers``), ``--workers ui=2`` only the ui; CPU is then summed over a
service's workers. ``--against REV`` first runs the same measurement on REV's code (a throwaway worktree, this
script copied in), so a change is judged against its base on the same machine in the same run.

The lag is measured end to end, as a user would see it: a probe writes a cart line through one region's carts
service and polls the other region's carts service until the line is there (so it includes the link latency, the
replicator's batching and both services). Next to it, the store's own measure over its recent applies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.deploy import RunningDeployment, running_deployment  # noqa: E402

from regionctl.regionalstore import endpoints, replication_status  # noqa: E402
from regionctl.shop import SERVICES  # noqa: E402
from regionctl.shop.loadgen import LoadReport, latency_summary, run_load  # noqa: E402

PROBE_GIVE_UP_S = 10.0
IDLE_S = 10.0


async def lag_probe(source: str, target: str, stop: asyncio.Event, lags_ms: list[float], misses: list[int]) -> None:
    """Write a fresh cart line in ``source``; time until ``target`` shows it (give up after 10 s)."""
    customer = f"lagprobe-{uuid.uuid4().hex[:12]}"
    async with httpx.AsyncClient(timeout=5) as client:
        n = 0
        while not stop.is_set():
            n += 1
            item = f"probe-{n}"
            await client.post(f"{source}/carts/{customer}/items", json={"itemId": item, "quantity": 1})
            written = time.monotonic()
            while time.monotonic() - written < PROBE_GIVE_UP_S:
                response = await client.get(f"{target}/carts/{customer}/items/{item}")
                if response.status_code == 200:
                    lags_ms.append((time.monotonic() - written) * 1000)
                    break
                await asyncio.sleep(0.005)
            else:
                misses.append(n)
            await asyncio.sleep(0.2)
        await client.delete(f"{source}/carts/{customer}")


def service_cpu(dep: RunningDeployment, region: str) -> dict[str, float]:
    """CPU seconds (user + system) each of the region's shop services has used so far, over all its workers
    (``ui``, ``ui-2``, ...: read from the names, so this also runs against commits from before workers)."""
    used = dict.fromkeys(SERVICES, 0.0)
    for key, pid in dep.pids().items():
        where, _, name = key.partition("/")
        head, _, tail = name.rpartition("-")
        service = head if tail.isdigit() else name
        if where == region and service in used:
            used[service] += sum(psutil.Process(pid).cpu_times()[:2])
    return used


def print_cpu(before: dict[str, float], after: dict[str, float], acknowledged: int) -> None:
    per = {s: (after[s] - before[s]) / max(acknowledged, 1) * 1000 for s in before}
    print("  CPU per acknowledged purchase, ms: " + ", ".join(f"{s} {v:.1f}" for s, v in per.items())
          + f"; all shop services {sum(per.values()):.1f}")


def saturated(report: LoadReport) -> bool:
    return report.acknowledged < 0.95 * report.attempted or report.latency_ms["p99"] >= 1000


async def saturation(endpoint: str, rates: list[float], step_s: float, ack_log: Path) -> None:
    """The highest offered rate acknowledged at >= 95% with p99 under 1 s."""
    best = None
    for rate in rates:
        report = await run_load(endpoint, rate=rate, duration_s=step_s, ack_log=ack_log)
        print(f"  offered {rate:g}/s: acknowledged {report.acknowledged}/{report.attempted}, "
              f"p99 {report.latency_ms['p99']:.0f} ms{' (saturated)' if saturated(report) else ''}")
        if saturated(report):
            break
        best = rate
    print(f"  saturation point: {best if best is not None else 'below ' + str(rates[0])}/s")


async def measure(dep: RunningDeployment, args: argparse.Namespace) -> None:
    region = args.region or dep.settings.primary_region
    other = dep.settings.other_region(region)
    endpoint = dep.entry if args.via == "entry" else dep.ui(region)
    ack_log = Path(tempfile.mkdtemp(prefix="shop-bench-")) / "acks.jsonl"

    await run_load(endpoint, rate=2, duration_s=2, ack_log=ack_log.with_name("warmup.jsonl"))  # caches, pools
    idle_before, idle_started = service_cpu(dep, region), time.monotonic()
    await asyncio.sleep(IDLE_S)  # the floor: health checks, canaries, relays, scrapes with nobody buying
    idle = {s: (v - idle_before[s]) / (time.monotonic() - idle_started) for s, v in service_cpu(dep, region).items()}
    stop = asyncio.Event()
    lags: list[float] = []
    misses: list[int] = []
    probe = asyncio.create_task(lag_probe(dep.service(region, "carts"), dep.service(other, "carts"), stop, lags,
                                          misses))
    cpu_before = service_cpu(dep, region)
    report = await run_load(endpoint, rate=args.rate, duration_s=args.duration, ack_log=ack_log)
    cpu_after = service_cpu(dep, region)
    stop.set()
    await probe

    where = "the global entry" if args.via == "entry" else f"{region}'s ui"
    workers = ", ".join(f"{s} {n}" for s, n in args.workers.items() if n > 1) or "1 each"
    print(f"shop on a throwaway deployment, link latency {args.latency_ms} ms one way; workers: {workers}")
    print(f"purchases through {where} ({endpoint}), offered {args.rate}/s for {args.duration}s:")
    print(f"  acknowledged {report.acknowledged}/{report.attempted}, {report.purchases_per_s} purchases/s, "
          f"served by {report.regions}")
    print(f"  purchase latency ms (6 requests each): {report.latency_ms}")
    if report.errors:
        print(f"  errors: {report.errors}")
    if args.via == "ui":  # through the entry both regions serve: the region's counters would not be the load's
        print_cpu(cpu_before, cpu_after, report.acknowledged)
        print("  of which idle (the floor, measured for "
              f"{IDLE_S:g} s before the load): " + ", ".join(f"{s} {v * 1000 / max(report.purchases_per_s, 0.1):.1f}"
                                                           for s, v in idle.items())
              + f"; all {sum(idle.values()) * 1000 / max(report.purchases_per_s, 0.1):.1f} ms per purchase "
              f"({sum(idle.values()) * 100:.1f}% of a core)")
    print(f"  carts replication lag {region} -> {other}, end to end through the carts services, ms over "
          f"{len(lags)} probes: {latency_summary(lags)}"
          f"{f', {len(misses)} not seen within {PROBE_GIVE_UP_S:.0f} s' if misses else ''}")
    dsns = endpoints.dsns(dep.settings)
    for d in replication_status(dsns[region], dsns[other], recent=2000).directions:
        print(f"  regional store's own lag {d.direction} over its last {d.lag_samples} applies: "
              f"p50={d.lag_p50_ms} p99={d.lag_p99_ms} max={d.lag_max_ms} ms, conflicts {d.conflicts_total}")
    print(f"  ack log: {ack_log}")
    if args.saturate:
        print(f"saturation through {where}, {args.step_s:g} s per rate:")
        await saturation(endpoint, [float(r) for r in args.saturate.split(",")], args.step_s,
                         ack_log.with_name("saturation.jsonl"))


def worker_counts(text: str) -> dict[str, int]:
    """``2`` (every service) or ``ui=2,checkout=2``."""
    if text.isdigit():
        return dict.fromkeys(SERVICES, int(text))
    counts = {}
    for part in text.split(","):
        service, _, count = part.partition("=")
        if service not in SERVICES or not count.isdigit():
            raise argparse.ArgumentTypeError(f"{part!r}: expected SERVICE=N with SERVICE one of {', '.join(SERVICES)}")
        counts[service] = int(count)
    return counts


def without_against(argv: list[str]) -> list[str]:
    """The command line minus ``--against REV`` (or ``--against=REV``)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--against":
            skip = True
        elif not arg.startswith("--against="):
            kept.append(arg)
    return kept


def measure_commit(rev: str, argv: list[str]) -> None:
    """This benchmark, as it is here, run on ``rev``'s code (a throwaway git worktree): the figure to compare with."""
    repo = Path(__file__).resolve().parents[1]
    tree = Path(tempfile.mkdtemp(prefix="shop-bench-rev-"))
    subprocess.run(["git", "worktree", "add", "--detach", "--force", str(tree), rev], cwd=repo, check=True,
                   capture_output=True)
    try:
        shutil.copy(__file__, tree / "benchmarks" / "shop.py")
        subject = subprocess.run(["git", "log", "-1", "--format=%h %s", rev], cwd=repo, text=True,
                                 capture_output=True).stdout.strip()
        print(f"=== {rev}: {subject[:90]}", flush=True)
        subprocess.run([sys.executable, str(tree / "benchmarks" / "shop.py"), *argv], check=False, cwd=tree,
                       env={**os.environ, "PYTHONPATH": f"{tree / 'src'}:{tree}"})
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=repo, check=False)
    print("=== this tree", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--region", help="whose ui takes the purchases and whose carts the probe writes")
    parser.add_argument("--via", choices=("ui", "entry"), default="ui", help="the region's ui or the global entry")
    parser.add_argument("--rate", type=float, default=10.0, help="purchases started per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--latency-ms", type=float, default=30.0, help="the link's one-way latency")
    parser.add_argument("--saturate", default="", help="offered rates to step through, e.g. 10,15,20,30,40")
    parser.add_argument("--step-s", type=float, default=15.0, help="seconds per rate when saturating")
    parser.add_argument("--workers", type=worker_counts, default={},
                        help="processes per shop service (workload.workers): 2 for every service, or ui=2,checkout=2")
    parser.add_argument("--against", metavar="REV", help="first run the same on REV's code (e.g. HEAD~3), to compare")
    args = parser.parse_args()
    if args.against:
        measure_commit(args.against, without_against(sys.argv[1:]))
    started = time.monotonic()
    overrides = {"workload": {"workers": args.workers}} if args.workers else {}  # a tree from before workers
    with running_deployment(latency_ms=args.latency_ms, **overrides) as dep:
        print(f"(deployment up in {time.monotonic() - started:.0f} s)")
        asyncio.run(measure(dep, args))


if __name__ == "__main__":
    main()
