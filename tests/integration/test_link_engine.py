"""The link engine in-process on real sockets: however connections end, none lingers in the engine afterwards."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import pytest

from regionctl.errors import ConflictError
from regionctl.runtime.link_engine import LinkEngine
from regionctl.runtime.link_model import Route

pytestmark = pytest.mark.integration

REGIONS = ("us-east-1", "us-west-2")


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            if data.startswith(b"close"):
                break  # the target ends the conversation first
            writer.write(data)
            await writer.drain()
    except ConnectionResetError:
        pass
    writer.close()


async def client(host: str, port: int, how: str) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    if how == "target-closes":
        writer.write(b"close")
        assert await reader.read() == b""
    else:
        writer.write(b"hello")
        assert await reader.readexactly(5) == b"hello"
        if how == "client-resets":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif how == "half-close":
            writer.write_eof()
            assert await reader.read() == b""
    writer.close()


def test_no_connection_or_pipe_outlives_its_sockets(tmp_path: Path) -> None:
    async def scenario() -> None:
        target = await asyncio.start_server(echo, "127.0.2.1", 0)
        target_port = target.sockets[0].getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.1.1", 0))
            listen_port = probe.getsockname()[1]
        engine = LinkEngine(tmp_path, REGIONS, latency_ms=2.0, jitter_ms=1.0)
        await engine.start()
        route = Route("r", "us-east-1", "us-west-2", "127.0.1.1", listen_port, "127.0.2.1", target_port)
        await engine.ensure_route(route)
        hows = ["plain", "client-resets", "half-close", "target-closes"] * 25
        await asyncio.gather(*(client("127.0.1.1", listen_port, how) for how in hows))
        for _ in range(100):
            status = engine.status().route("r")
            if status.connections_open == 0 and not any(d.pipes for d in engine.directions.values()):
                break
            await asyncio.sleep(0.02)
        assert status.connections_total == len(hows)
        assert status.connections_open == 0
        assert all(not d.pipes for d in engine.directions.values())
        await engine.close()
        target.close()

    asyncio.run(scenario())


def test_a_persisted_route_whose_port_is_taken_is_reported_and_bound_once_free(tmp_path: Path) -> None:
    async def scenario() -> None:
        squatter = socket.socket()
        squatter.bind(("127.0.1.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        route = Route("r", "us-east-1", "us-west-2", "127.0.1.1", port, "127.0.2.1", 1)
        first = LinkEngine(tmp_path, REGIONS, latency_ms=0.0, jitter_ms=0.0)
        with pytest.raises(ConflictError, match="listen_port"):
            await first.ensure_route(route)  # a new route that cannot listen is not added
        assert first.status().routes == ()
        squatter.close()
        await first.ensure_route(route)
        await first.close()

        squatter = socket.socket()
        squatter.bind(("127.0.1.1", port))
        squatter.listen()
        again = LinkEngine(tmp_path, REGIONS, latency_ms=0.0, jitter_ms=0.0)
        await again.start()  # comes back with the route even though its port is taken now
        status = again.status().route("r")
        assert not status.listening and status.error is not None and "127.0.1.1" in status.error
        with pytest.raises(ConflictError, match="retried"):
            await again.ensure_route(route)
        squatter.close()
        for _ in range(50):
            if again.status().route("r").listening:
                break
            await asyncio.sleep(0.1)
        assert again.status().route("r").listening and again.status().route("r").error is None
        await again.close()

    asyncio.run(scenario())
