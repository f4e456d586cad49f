"""Regional store under load: writes per second in both regions at once, and replication lag p50/p99.

Starts two PostgreSQL instances (normal durability: fsync on) and the two replicator processes, each reaching the
other region's database through a TCP proxy process that delays every byte by the link's one-way latency (as the link
emulator does; 30 ms by default, the settings' default), runs cart-like writers in both regions (70%
read-modify-write of a quantity, 20% put, 10% delete over customers x items, so some writes collide across
regions), then waits for replication to drain and prints the figures. One run, under a minute:

    .venv/bin/python benchmarks/regional_store.py [--seconds 20] [--threads 4] [--customers 2000] [--link-ms 30]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from regionctl.config import load_settings
from regionctl.regionalstore import RegionalStore, replication_status
from regionctl.runtime.osuser import ensure_runas, make_owned_dir
from regionctl.runtime.pgpass import ensure_login
from regionctl.runtime.postgres import PgBinaries, PgInstance

REGIONS = ("us-east-1", "us-west-2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_instances(root: Path) -> dict[str, PgInstance]:
    settings = load_settings()
    runas = ensure_runas(settings.postgres.os_user)
    bins = PgBinaries.locate(settings.postgres.bin_dir)
    login = ensure_login(root / "pgpass" / "superuser", secrets.token_urlsafe(24), runas)
    instances = {}
    for region in REGIONS:
        pg = PgInstance(f"regional-{region}", make_owned_dir(root / region, runas), "127.0.0.1", free_port(),
                        root / f"{region}.log", bins, runas, login)
        pg.initdb()
        pg.start({"archive_mode": "off"})
        pg.query("create database regional")
        instances[region] = pg
    return instances


def _run_proxy(port: int, target_port: int, one_way_s: float) -> None:
    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    writer.close()
                    return
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(send())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + one_way_s, data))
        finally:
            queue.put_nowait((0.0, b""))
            await sender

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pump(client_r, server_w), pump(server_r, client_w), return_exceptions=True)

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def start_delay_proxy(target_port: int, one_way_s: float) -> tuple[int, multiprocessing.Process]:
    """A TCP proxy process forwarding to ``target_port`` with ``one_way_s`` added each way, bytes kept in order."""
    port = free_port()
    proc = multiprocessing.get_context("fork").Process(target=_run_proxy, args=(port, target_port, one_way_s),
                                                       daemon=True)
    proc.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return port, proc
        time.sleep(0.02)
    raise SystemExit("the delay proxy did not start")


def start_replicators(dsns: dict[str, str], remote: dict[str, str],
                      root: Path) -> tuple[list[subprocess.Popen[bytes]], dict[str, int]]:
    procs, ports = [], {}
    for source in REGIONS:
        target = REGIONS[1 - REGIONS.index(source)]
        ports[source] = free_port()
        env = {**os.environ, "REGIONALSTORE_SOURCE_DSN": dsns[source], "REGIONALSTORE_TARGET_DSN": remote[source]}
        log = open(root / f"replicator-{source}.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "regionctl.regionalstore.replicator", "--source-region", source,
             "--target-region", target, "--metrics-port", str(ports[source]), "--keep-lag-samples", "10000000"],
            env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs, ports


def writer(store: RegionalStore, customers: int, stop: threading.Event, latencies: list[float], seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        key = f"c{rng.randrange(customers)}:w{rng.randrange(5)}"
        roll = rng.random()
        started = time.perf_counter()
        if roll < 0.7:
            store.update("carts", key, lambda v: {"quantity": (v or {"quantity": 0})["quantity"] + 1,
                                                  "unitPrice": 120})
        elif roll < 0.9:
            store.put("carts", key, {"quantity": rng.randrange(1, 5), "unitPrice": 95})
        else:
            store.delete("carts", key)
        latencies.append(time.perf_counter() - started)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else float("nan")


def scrape(port: int) -> dict[str, float]:
    """Sums and counts of the replicator's histograms, from its Prometheus endpoint."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    found: dict[str, float] = {}
    for line in body.splitlines():
        name = line.split("{")[0]
        if name.endswith(("_sum", "_count")) and name.startswith("regionalstore_"):
            found[name] = found.get(name, 0.0) + float(line.split()[-1])
    return found


def mean_ms(metrics: dict[str, float], histogram: str) -> float:
    count = metrics.get(f"regionalstore_replication_{histogram}_count", 0.0)
    return metrics.get(f"regionalstore_replication_{histogram}_sum", 0.0) / count * 1000 if count else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--threads", type=int, default=4, help="writer threads per region")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--link-ms", type=float, default=load_settings().link.latency_ms, help="one-way latency")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="regionalstore-bench-"))
    root.chmod(0o755)
    instances = start_instances(root)
    dsns = {r: pg.conninfo("regional") for r, pg in instances.items()}
    procs: list[subprocess.Popen[bytes]] = []
    proxies: list[multiprocessing.Process] = []
    try:
        remote = {}  # the other region's store as the replicator in ``source`` reaches it: through the slow link
        for source in REGIONS:
            target = instances[REGIONS[1 - REGIONS.index(source)]]
            port, proxy = start_delay_proxy(target.port, args.link_ms / 1000)
            proxies.append(proxy)
            remote[source] = target.conninfo("regional").replace(f"port={target.port}", f"port={port}")
        stores = {r: RegionalStore(dsns[r], r, pool_size=args.threads) for r in REGIONS}
        for store in stores.values():
            store.migrate()
        procs, ports = start_replicators(dsns, remote, root)
        deadline = time.monotonic() + 60
        while not all(d.replicator_seen_at for d in replication_status(dsns[REGIONS[0]], dsns[REGIONS[1]]).directions):
            if time.monotonic() > deadline:
                raise SystemExit(f"replicators did not start; see {root}/replicator-*.log")
            time.sleep(0.1)
        stop = threading.Event()
        latencies: dict[str, list[float]] = {r: [] for r in REGIONS}
        threads = [threading.Thread(target=writer, args=(stores[r], args.customers, stop, latencies[r], i * 7 + j))
                   for j, r in enumerate(REGIONS) for i in range(args.threads)]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        drain_started = time.monotonic()
        while any(d.backlog for d in replication_status(dsns[REGIONS[0]], dsns[REGIONS[1]]).directions):
            time.sleep(0.05)
        drain = time.monotonic() - drain_started
        status = replication_status(dsns[REGIONS[0]], dsns[REGIONS[1]], recent=10_000_000)
        converged = stores[REGIONS[0]].scan("carts", tombstones=True) == stores[REGIONS[1]].scan("carts",
                                                                                                 tombstones=True)
        total = sum(len(v) for v in latencies.values())
        print(f"regional store benchmark: {args.seconds:.0f}s, {args.threads} writer threads per region, "
              f"{args.customers} customers x 5 items, fsync on, link {args.link_ms:.0f} ms one way, "
              f"2 regions on one {os.cpu_count()}-core machine")
        print(f"writes/s total: {total / elapsed:,.0f}")
        for r in REGIONS:
            lat = latencies[r]
            print(f"  {r}: {len(lat) / elapsed:,.0f} writes/s, write latency p50 {pct(lat, .5) * 1000:.2f} ms, "
                  f"p99 {pct(lat, .99) * 1000:.2f} ms")
        for d in status.directions:
            m = scrape(ports[d.source])
            batches = m.get("regionalstore_replication_apply_seconds_count", 0.0)
            print(f"replication {d.direction}: lag p50 {d.lag_p50_ms} ms, p99 {d.lag_p99_ms} ms, max {d.lag_max_ms} "
                  f"ms over {d.lag_samples} applies; received {d.received_total}, conflicts {d.conflicts_total}")
            print(f"  where it goes (means): write->read by replicator {mean_ms(m, 'read_lag_seconds'):.1f} ms, "
                  f"apply {mean_ms(m, 'apply_seconds'):.1f} ms per batch of "
                  f"{(d.received_total or 0) / max(batches, 1):.1f}; prometheus lag samples "
                  f"{m.get('regionalstore_replication_lag_seconds_count', 0):.0f}")
        print(f"backlog drained {drain:.2f}s after the writers stopped; both regions identical: {converged}")
        for store in stores.values():
            store.close()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(10)
        for proxy in proxies:
            proxy.terminate()
        for pg in instances.values():
            pg.stop("fast")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
