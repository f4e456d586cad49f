"""What watching costs, on a real deployment with the shop: the console's overview read, canary rounds, and the
memory and CPU of the canary and console processes; and what a credential rotation takes.

1. overview: N reads of the console's `/api/overview` spaced past its 1 s cache (each one reads every part:
   routing, both global databases, the regional store, runbooks, both regions' canaries), then N reads within the
   cache; p50/p95 of each;
2. canaries: rounds completed over a window and each canary's p50/p90 page time, from the runners' own reports;
3. processes: RSS and CPU seconds per minute of the canary runners, the console and Prometheus while the page
   is polled every 2 s (what one open console costs), then again with its charts open (the history read every
   10 s, as the page does);
4. rotation: `credentials.rotate_database` for each global database, R times.

    .venv/bin/python benchmarks/observe.py [--reads 20] [--window 30] [--rotations 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.deploy import RunningDeployment, running_deployment  # noqa: E402
from tests.support.poll import eventually  # noqa: E402

from regionctl.credentials import service as credentials  # noqa: E402
from regionctl.observe.history import CHARTS  # noqa: E402
from regionctl.observe.launch import canary_url, console_url  # noqa: E402


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def timed_get(url: str) -> float:
    started = time.perf_counter()
    response = httpx.get(url, timeout=30, trust_env=False)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def overview_reads(console: str, reads: int) -> None:
    cold = []
    for _ in range(reads):
        time.sleep(1.1)  # past the cache
        cold.append(timed_get(f"{console}/api/overview"))
    warm = [timed_get(f"{console}/api/overview") for _ in range(reads)]
    print(f"overview read (every part):   p50 {pct(cold, 0.5):7.1f} ms   p95 {pct(cold, 0.95):7.1f} ms   n={reads}")
    print(f"overview read (cached):       p50 {pct(warm, 0.5):7.1f} ms   p95 {pct(warm, 0.95):7.1f} ms   n={reads}")


def processes(deployment: RunningDeployment) -> dict[str, psutil.Process]:
    pids = deployment.pids()
    wanted = {f"{r}/canaries" for r in deployment.settings.regions} | {"global/console", "global/prometheus"}
    return {key: psutil.Process(pid) for key, pid in pids.items() if key in wanted}


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def watching_cost(deployment: RunningDeployment, console: str, window_s: float, charts: bool) -> None:
    """One console open in a browser: the overview every 2 s, and with ``charts`` the history every 10 s (what
    the page polls)."""
    procs = processes(deployment)
    before = {k: cpu_seconds(p) for k, p in procs.items()}
    reports_before = {r: _report(deployment, r)["rounds"] for r in deployment.settings.regions}
    history_ms: list[float] = []
    started = time.monotonic()
    last_history = -math.inf
    while time.monotonic() - started < window_s:
        timed_get(f"{console}/api/overview")
        if charts and time.monotonic() - last_history >= 10:
            last_history = time.monotonic()
            history_ms.append(timed_get(f"{console}/api/history?range=5m"))
        time.sleep(2)
    elapsed = time.monotonic() - started
    print(f"-- console open {'with' if charts else 'without'} charts, {elapsed:.0f} s" +
          (f"; history read ({len(CHARTS)} charts) p50 {pct(history_ms, 0.5):.0f} ms, n={len(history_ms)}"
           if history_ms else ""))
    for key, proc in sorted(procs.items()):
        cpu = (cpu_seconds(proc) - before[key]) / elapsed * 60
        print(f"{key:22s} RSS {proc.memory_info().rss / 2**20:6.1f} MB   CPU {cpu:5.2f} s per minute")
    for region in deployment.settings.regions:
        report = _report(deployment, region)
        rounds = report["rounds"] - reports_before[region]
        p50 = [c["duration_p50_s"] * 1000 for c in report["canaries"] if c["duration_p50_s"] is not None]
        p90 = [c["duration_p90_s"] * 1000 for c in report["canaries"] if c["duration_p90_s"] is not None]
        by_kind = {k: [c for c in report["canaries"] if c["kind"] == k] for k in ("local", "remote", "global")}
        kinds = "   ".join(f"{k} p50 {statistics.median(c['duration_p50_s'] * 1000 for c in v):5.1f} ms"
                           for k, v in by_kind.items())
        print(f"{region} canaries: {rounds} rounds in {elapsed:.0f} s; page p50 {statistics.median(p50):.1f} ms, "
              f"worst p90 {max(p90):.1f} ms; {kinds}")


def _report(deployment: RunningDeployment, region: str) -> dict[str, Any]:
    url = canary_url(deployment.topo.ports, region)
    return dict(httpx.get(f"{url}/canaries", timeout=10, trust_env=False).json())


def rotations(deployment: RunningDeployment, count: int) -> None:
    gdbs = deployment.gdbs
    for name in gdbs.names:
        seconds = [credentials.rotate_database(gdbs, name).seconds * 1000 for _ in range(count)]
        print(f"rotation of {name:8s} (set, test on both members, publish): p50 {pct(seconds, 0.5):6.1f} ms   "
              f"max {max(seconds):6.1f} ms   n={count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=20)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--rotations", type=int, default=5)
    args = parser.parse_args()
    with running_deployment() as deployment:
        console = console_url(deployment.topo.ports)
        assert console is not None

        def all_pass() -> None:
            for region in deployment.settings.regions:
                assert _report(deployment, region)["counts"]["pass"] == 12

        eventually(all_pass, timeout_s=120, interval_s=1)
        print(f"load average {psutil.getloadavg()[0]:.2f}")
        overview_reads(console, args.reads)
        watching_cost(deployment, console, args.window, charts=False)  # the figure before history existed
        watching_cost(deployment, console, args.window, charts=True)
        rotations(deployment, args.rotations)


if __name__ == "__main__":
    main()
