"""Throughput and added latency through the link emulator, against a direct connection, in one run.

    .venv/bin/python benchmarks/link.py [--mib 128] [--rounds 1000]

Starts the emulator (``python -m regionctl.runtime.link serve``) and a target server (echo for round trips, sink
for throughput) as separate processes, routes us-east-1 (127.0.1.1) -> us-west-2 (127.0.2.1), and measures:
- throughput: one connection sends N MiB one way; the target answers one byte when all arrived (so the figure
  includes one round trip, which matters little at these sizes);
- round trip of a 64-byte ping-pong, p50/p99, and what the link adds over the direct path.
Figures only, no assertions: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from regionctl.runtime.link import LinkClient, Route

EAST, WEST = "us-east-1", "us-west-2"
TARGET_HOST, LISTEN_HOST = "127.0.2.1", "127.0.1.1"

TARGET = r'''
import asyncio, struct, sys
async def handle(reader, writer):
    mode = await reader.readexactly(1)
    if mode == b"E":
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    else:
        (left,) = struct.unpack("!Q", await reader.readexactly(8))
        while left:
            data = await reader.read(min(left, 1 << 20))
            if not data:
                break
            left -= len(data)
        writer.write(b"k")
        await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(handle, sys.argv[1], int(sys.argv[2]))
    print("ready", flush=True)
    await server.serve_forever()
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
'''


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def throughput_mb_s(host: str, port: int, mib: int) -> float:
    chunk = b"\x5a" * (1 << 20)
    with connect(host, port) as sock:
        start = time.perf_counter()
        sock.sendall(b"S" + struct.pack("!Q", mib * len(chunk)))
        for _ in range(mib):
            sock.sendall(chunk)
        if sock.recv(1) != b"k":
            raise RuntimeError("target did not confirm")
        elapsed = time.perf_counter() - start
    return mib * len(chunk) / 1e6 / elapsed


def round_trips_ms(host: str, port: int, rounds: int) -> list[float]:
    ping = b"p" * 64
    out = []
    with connect(host, port) as sock:
        sock.sendall(b"E")
        for _ in range(rounds):
            start = time.perf_counter()
            sock.sendall(ping)
            got = 0
            while got < len(ping):
                got += len(sock.recv(len(ping) - got))
            out.append((time.perf_counter() - start) * 1000)
    return out


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def wait_healthy(client: LinkClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while not client.healthy():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the link emulator did not start")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=128, help="MiB sent per throughput run")
    parser.add_argument("--rounds", type=int, default=1000, help="ping-pongs per latency run (at 0 ms)")
    parser.add_argument("--latency-ms", type=float, default=30.0)
    args = parser.parse_args()

    target_port, control_port, listen_port = free_port(TARGET_HOST), free_port("127.0.0.1"), free_port(LISTEN_HOST)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as state_dir:
        try:
            target = subprocess.Popen([sys.executable, "-c", TARGET, TARGET_HOST, str(target_port)],
                                      stdout=subprocess.PIPE)
            procs.append(target)
            assert target.stdout is not None and target.stdout.readline().strip() == b"ready"
            link = subprocess.Popen(
                [sys.executable, "-m", "regionctl.runtime.link", "serve", "--state-dir", state_dir,
                 "--control", f"127.0.0.1:{control_port}", "--latency-ms", "0", "--log-level", "WARNING"],
                stderr=open(Path(state_dir) / "link.log", "wb"),  # noqa: SIM115
            )
            procs.append(link)
            client = LinkClient(f"http://127.0.0.1:{control_port}")
            wait_healthy(client, link)
            client.ensure_route(Route("bench", EAST, WEST, LISTEN_HOST, listen_port, TARGET_HOST, target_port))
            run(client, args, target_port, listen_port)
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(10)


def run(client: LinkClient, args: argparse.Namespace, target_port: int, listen_port: int) -> None:
    print(f"{'path':<22} {'MB/s':>8} {'rtt p50 ms':>11} {'rtt p99 ms':>11} {'added p50':>10} {'added p99':>10}")
    cases = [("direct", None), ("link, 0 ms", 0.0), (f"link, {args.latency_ms:g} ms one way", args.latency_ms)]
    base: tuple[float, float] | None = None
    for label, latency in cases:
        host, port = (TARGET_HOST, target_port) if latency is None else (LISTEN_HOST, listen_port)
        if latency is not None:
            client.set("both", latency_ms=latency, jitter_ms=0)
        slow = bool(latency)
        rounds = max(50, args.rounds // 10) if slow else args.rounds
        mb_s = throughput_mb_s(host, port, args.mib // 2 if slow else args.mib)
        rtts = round_trips_ms(host, port, rounds)
        p50, p99 = pct(rtts, 50), pct(rtts, 99)
        base = base or (p50, p99)
        print(f"{label:<22} {mb_s:>8.0f} {p50:>11.3f} {p99:>11.3f} {p50 - base[0]:>10.3f} {p99 - base[1]:>10.3f}")
    print("(added = round trip through the link minus direct; at N ms one way expect about 2N.)")


if __name__ == "__main__":
    main()
