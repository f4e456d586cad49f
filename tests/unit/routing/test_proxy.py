"""The entry's HTTP handling against scripted regions on loopback: reuse and retry, framing, pipelining, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from regionctl.routing.entry import ClientConnection, Entry
from regionctl.routing.metrics import PlaneMetrics
from regionctl.routing.proxy import UpstreamPool

Handler = Callable[[int, int, bytes], bytes | None]  # (connection no, request no on it, head) -> answer or None=close


@dataclass
class FakeView:
    def explain(self) -> str:
        return "no healthy region: r: routing control Off"


@dataclass
class FakePlane:
    healthy: tuple[str, ...] = ("r",)
    view: FakeView = field(default_factory=FakeView)

    def status(self) -> dict[str, object]:
        return {"healthy": list(self.healthy)}


async def with_entry(handler: Handler, scenario: Callable[[int, FakePlane], Awaitable[None]]) -> int:
    """Run ``scenario(entry_port, plane)`` against an entry proxying to a scripted region; returns connections."""
    connections = 0

    async def region(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number, served = connections, 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                head += await reader.readexactly(length)
                served += 1
                answer = handler(number, served, head)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    region_server = await asyncio.start_server(region, "127.0.0.1", 0)
    region_port = region_server.sockets[0].getsockname()[1]
    plane = FakePlane()
    entry = Entry(plane, {"r": UpstreamPool("127.0.0.1", region_port)}, PlaneMetrics("entry"))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    entry_server = await loop.create_server(lambda: ClientConnection(entry), "127.0.0.1", 0)
    try:
        await scenario(entry_server.sockets[0].getsockname()[1], plane)
    finally:
        entry_server.close()
        region_server.close()
    return connections


async def exchange(port: int, raw: bytes, until: bytes = b"", reads: int = 1) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    data = b""
    try:
        async with asyncio.timeout(5):
            while (until and data.count(until) < reads) or not data:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
    finally:
        writer.close()
    return data


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
GET = b"GET /a HTTP/1.1\r\nhost: shop\r\n\r\n"


def test_a_region_closing_a_reused_connection_is_retried_once_on_a_fresh_one() -> None:
    async def scenario(port: int, _: FakePlane) -> None:
        for _ in range(3):
            assert (await exchange(port, GET, b"ok")).startswith(b"HTTP/1.1 200 OK")

    # each region connection answers one request, then silently drops the next one (an idle-timeout race)
    connections = asyncio.run(with_entry(lambda conn, n, head: OK if n == 1 else None, scenario))
    assert connections == 3


def test_chunked_and_close_delimited_bodies_are_framed_again_for_the_client() -> None:
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    closing = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil-the-end"

    async def scenario(port: int, _: FakePlane) -> None:
        first = await exchange(port, GET, b"0\r\n\r\n")
        assert b"transfer-encoding: chunked" in first and first.endswith(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        second = await exchange(port, b"GET /b HTTP/1.1\r\nhost: shop\r\n\r\n", b"0\r\n\r\n")
        assert b"\r\n\r\nd\r\nuntil-the-end\r\n0\r\n\r\n" in second

    answers = iter([chunked, closing])
    asyncio.run(with_entry(lambda conn, n, head: next(answers) if n == 1 else None, scenario))


def test_pipelined_requests_are_answered_in_order_and_headers_are_forwarded() -> None:
    seen: list[bytes] = []

    def handler(conn: int, n: int, head: bytes) -> bytes:
        seen.append(head)
        body = head.split(b" ")[1]
        return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body)

    async def scenario(port: int, _: FakePlane) -> None:
        raw = (b"GET /one HTTP/1.1\r\nhost: s\r\nconnection: keep-alive\r\n\r\n"
               b"POST /two HTTP/1.1\r\nhost: s\r\ncontent-length: 4\r\n\r\nbody")
        data = await exchange(port, raw, b"HTTP/1.1 200", reads=2)
        assert data.index(b"/one") < data.index(b"/two")

    asyncio.run(with_entry(handler, scenario))
    assert seen[1].endswith(b"\r\n\r\nbody") and b"content-length: 4" in seen[1]
    assert b"x-forwarded-for: 127.0.0.1" in seen[0] and b"x-regionctl-region: r" in seen[0]
    assert b"connection:" not in seen[0]


def test_no_healthy_region_and_a_dead_region_are_named() -> None:
    async def scenario(port: int, plane: FakePlane) -> None:
        plane.healthy = ()
        refused = await exchange(port, GET, b"\n", reads=2)
        assert refused.startswith(b"HTTP/1.1 503") and b"no healthy region: r: routing control Off" in refused
        assert b"retry-after: 5" in refused

    asyncio.run(with_entry(lambda conn, n, head: OK, scenario))

    async def dead(port: int, _: FakePlane) -> None:
        answer = await exchange(port, GET, b"\n", reads=2)
        assert answer.startswith(b"HTTP/1.1 502") and b"region r did not answer" in answer

    async def run_dead() -> None:
        plane = FakePlane()
        pool = UpstreamPool("127.0.0.1", 9)  # discard port: nothing listens
        entry = Entry(plane, {"r": pool}, PlaneMetrics("entry"))  # type: ignore[arg-type]
        server = await asyncio.get_running_loop().create_server(lambda: ClientConnection(entry), "127.0.0.1", 0)
        try:
            await dead(server.sockets[0].getsockname()[1], plane)
        finally:
            server.close()

    asyncio.run(run_dead())


def test_malformed_requests_get_400_and_admin_pages_answer_locally() -> None:
    async def scenario(port: int, _: FakePlane) -> None:
        bad = await exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
        assert bad.startswith(b"HTTP/1.1 400") and b"Malformed HTTP request" in bad
        health = await exchange(port, b"GET /_entry/health HTTP/1.1\r\nhost: s\r\n\r\n", b"ok")
        assert health.startswith(b"HTTP/1.1 200") and health.endswith(b'{"status": "ok"}')

    asyncio.run(with_entry(lambda conn, n, head: OK, scenario))
