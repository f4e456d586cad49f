"""Throughput and added latency of the global entry point against calling a region directly, in one run.

Starts a stand-in region ui, the control API and the entry as real processes (as `regionctl up` would), then:
1. throughput: C keep-alive connections send `GET /` for D seconds, directly to the region, then through the
   entry (pinned to the same region by its session cookie, so both runs reach the same single backend), in R
   alternating rounds; medians are reported, with CPU time per request of each process;
2. latency: one connection, sequential requests (no queueing), p50/p99 each way; added = entry - direct.
The target from issue 4: entry throughput >= 80% of direct.

    .venv/bin/python benchmarks/routing.py [--connections 32] [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from regionctl.config import Paths, load_settings
from regionctl.routing.entry import COOKIE
from regionctl.routing.launch import process_specs
from regionctl.routing.plane import load_plane
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.process import python_module


def _wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"process for {url} died")
        try:
            if httpx.get(url, timeout=1, trust_env=False).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} did not come up")


async def _client(host: str, port: int, request: bytes, stop_at: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            done += 1
    finally:
        writer.close()
    return done


async def _load(host: str, port: int, request: bytes, connections: int, seconds: float) -> tuple[float, list[float]]:
    latencies: list[float] = []
    await asyncio.gather(*(_client(host, port, request, time.perf_counter() + 0.5, []) for _ in range(4)))  # warm
    started = time.perf_counter()
    counts = await asyncio.gather(*(_client(host, port, request, started + seconds, latencies)
                                    for _ in range(connections)))
    return sum(counts) / (time.perf_counter() - started), latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-requests", type=int, default=2000)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    root = Path(tempfile.mkdtemp(prefix="regionctl-bench-"))
    settings = load_settings(data_dir=root, base_port=26000 + os.getpid() % 1000,
                             routing={"health_interval_s": 2.0, "failure_threshold": 1})
    paths = Paths(settings.root)
    ports = PortRegistry(paths.state / "ports.json", settings.base_port)
    region = settings.primary_region
    host, port = settings.region_address(region), ports.get(f"{region}/ui", settings.region_address(region))
    specs = {s.name: s for s in process_specs(settings, ports, paths)}
    plane = load_plane(paths.state / "routing" / "plane.json")
    procs = []
    try:
        ui = subprocess.Popen(python_module("regionctl.routing.standin", "--region", region, "--host", host,
                                            "--port", str(port)))
        procs.append(ui)
        _wait_http(f"http://{host}:{port}/", ui)
        for name in ("routing-api", "entry"):
            proc = subprocess.Popen(specs[name].argv)
            procs.append(proc)
            _wait_http(specs[name].health_url or "", proc)
        while region not in httpx.get(plane.entry.url + "/_entry/status", trust_env=False).json()["healthy"]:
            time.sleep(0.2)

        base = f"GET / HTTP/1.1\r\nhost: shop\r\ncookie: {COOKIE}={region}\r\n\r\n".encode()
        targets = {"direct": (host, port), "entry": (plane.entry.host, plane.entry.port)}
        rounds: dict[str, list[float]] = {label: [] for label in targets}
        cpu: dict[str, dict[str, list[float]]] = {label: {} for label in targets}
        watched = {"region": psutil.Process(ui.pid), "entry": psutil.Process(procs[-1].pid),
                   "client": psutil.Process()}
        for _ in range(args.rounds):  # alternate, so a noisy neighbour hurts both sides alike
            for label, (h, p) in targets.items():
                before = {k: sum(proc.cpu_times()[:2]) for k, proc in watched.items()}
                started = time.perf_counter()
                rate, _ = asyncio.run(_load(h, p, base, args.connections, args.seconds))
                rounds[label].append(rate)
                requests = rate * (time.perf_counter() - started - 0.5)
                for k, proc in watched.items():
                    used = (sum(proc.cpu_times()[:2]) - before[k]) / requests * 1e6
                    cpu[label].setdefault(k, []).append(used)
        throughput = {label: statistics.median(values) for label, values in rounds.items()}
        latency = {}
        for label, (h, p) in targets.items():
            samples: list[float] = []
            asyncio.run(_sequential(h, p, base, args.latency_requests, samples))
            latency[label] = samples
        _report(args, throughput, latency)
        ratios = [e / d for e, d in zip(rounds["entry"], rounds["direct"], strict=True)]
        print("  entry/direct per round: " + ", ".join(f"{r:.0%}" for r in ratios))
        for label in targets:
            print(f"  CPU per request ({label}, median): "
                  + ", ".join(f"{k} {statistics.median(v):.0f} us" for k, v in cpu[label].items()))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


async def _sequential(host: str, port: int, request: bytes, count: int, samples: list[float]) -> None:
    await _client_n(host, port, request, 200, [])  # warm
    await _client_n(host, port, request, count, samples)


async def _client_n(host: str, port: int, request: bytes, n: int, samples: list[float]) -> None:
    """One connection, ``n`` requests one after another."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(n):
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line[15:]) for line in head.split(b"\r\n") if line[:15].lower() == b"content-length:"),
                          0)
            await reader.readexactly(length)
            samples.append(time.perf_counter() - started)
    finally:
        writer.close()


def _report(args: argparse.Namespace, throughput: dict[str, float], latency: dict[str, list[float]]) -> None:
    ratio = throughput["entry"] / throughput["direct"]
    print(f"global entry benchmark: GET / of a stand-in region ui, {args.connections} keep-alive connections, "
          f"{args.rounds} alternating rounds of {args.seconds:g} s, {os.cpu_count()} CPUs shared by client, entry "
          "and region")
    print(f"  throughput direct : {throughput['direct']:8.0f} req/s (median)")
    print(f"  throughput entry  : {throughput['entry']:8.0f} req/s  ({ratio:.0%} of direct; target >= 80%)")
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        direct, entry = _pct(latency["direct"], q), _pct(latency["entry"], q)
        print(f"  latency {name} (1 connection, sequential): direct {direct:6.3f} ms, entry {entry:6.3f} ms, "
              f"added {entry - direct:6.3f} ms")
    print(f"  mean added latency: {(statistics.mean(latency['entry']) - statistics.mean(latency['direct'])) * 1000:.3f}"
          " ms")


if __name__ == "__main__":
    main()
