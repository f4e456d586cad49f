"""Purchases per second and latency through one region's ui, and the carts replication lag under that load.

Needs a running shop (``regionctl up``), or explicit URLs:

    .venv/bin/python benchmarks/shop.py [--region us-east-1] [--rate 10] [--duration 20]
        [--ui URL] [--carts-from URL --carts-to URL]

The lag is measured end to end, whatever the regional store does inside: a probe writes a cart line in one
region's carts service and polls the other region's carts service until the line is there. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from regionctl.config import Paths, load_settings
from regionctl.runtime.ports import PortRegistry
from regionctl.shop.launch import port_key
from regionctl.shop.loadgen import latency_summary, run_load


def registered(region: str, service: str) -> str | None:
    settings = load_settings()
    known = PortRegistry(Paths(settings.root).state / "ports.json", settings.base_port).all()
    if port_key(region, service) not in known:
        return None
    host, port = known[port_key(region, service)]
    return f"http://{host}:{port}"


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
            while time.monotonic() - written < 10:
                response = await client.get(f"{target}/carts/{customer}/items/{item}")
                if response.status_code == 200:
                    lags_ms.append((time.monotonic() - written) * 1000)
                    break
                await asyncio.sleep(0.005)
            else:
                misses.append(n)
            await asyncio.sleep(0.2)
        await client.delete(f"{source}/carts/{customer}")


async def main(args: argparse.Namespace) -> None:
    settings = load_settings()
    region = args.region or settings.primary_region
    other = settings.other_region(region)
    ui = args.ui or registered(region, "ui")
    if ui is None:
        raise SystemExit(f"no ui registered for {region}: run `regionctl up` or pass --ui")
    carts_from = args.carts_from or registered(region, "carts")
    carts_to = args.carts_to or registered(other, "carts")
    ack_log = Path(tempfile.mkdtemp(prefix="shop-bench-")) / "acks.jsonl"

    await run_load(ui, rate=2, duration_s=2, ack_log=ack_log.with_name("warmup.jsonl"))  # warm caches, pools
    stop = asyncio.Event()
    lags: list[float] = []
    misses: list[int] = []
    probe = (asyncio.create_task(lag_probe(carts_from, carts_to, stop, lags, misses))
             if carts_from and carts_to else None)
    report = await run_load(ui, rate=args.rate, duration_s=args.duration, ack_log=ack_log)
    stop.set()
    if probe is not None:
        await probe

    print(f"purchases through {ui} ({region}), offered {args.rate}/s for {args.duration}s:")
    print(f"  acknowledged {report.acknowledged}/{report.attempted}, {report.purchases_per_s} purchases/s")
    print(f"  purchase latency ms (6 requests each): {report.latency_ms}")
    if report.errors:
        print(f"  errors: {report.errors}")
    if probe is None:
        print("  carts replication lag: not measured (no carts URLs; pass --carts-from/--carts-to)")
    else:
        print(f"  carts replication lag {region} -> {other} ms over {len(lags)} probes: {latency_summary(lags)}"
              f"{f', {len(misses)} not seen within 10 s' if misses else ''}")
    print(f"  ack log: {ack_log}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--region")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--ui")
    parser.add_argument("--carts-from")
    parser.add_argument("--carts-to")
    asyncio.run(main(parser.parse_args()))
