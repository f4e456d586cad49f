"""One direction of a proxied connection, driven with in-memory transports: order, holding, backpressure, EOF."""

from __future__ import annotations

import asyncio

from regionctl.runtime import link_proxy
from regionctl.runtime.link_proxy import Direction, Pipe


class FakeTransport:
    """Records what is written and whether reading is paused; enough of asyncio.Transport for a Pipe."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.eof = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def write_eof(self) -> None:
        self.eof = True

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def make_pipe(direction: Direction) -> tuple[Pipe, FakeTransport, FakeTransport, list[int]]:
    delivered: list[int] = []
    pipe = Pipe(asyncio.get_running_loop(), direction, delivered.append, lambda: None)
    source, sink = FakeTransport(), FakeTransport()
    pipe.source = source  # type: ignore[assignment]
    pipe.attach_sink(sink)  # type: ignore[arg-type]
    return pipe, source, sink, delivered


def test_chunks_arrive_in_order_despite_jitter() -> None:
    async def scenario() -> list[bytes]:
        pipe, _, sink, _ = make_pipe(Direction("a", "b", latency_ms=5, jitter_ms=20, partitioned=False))
        for i in range(50):
            pipe.push(b"%d," % i)
        await asyncio.sleep(0.08)
        return sink.written

    assert b"".join(asyncio.run(scenario())) == b"".join(b"%d," % i for i in range(50))


def test_nothing_is_written_before_it_is_due() -> None:
    async def scenario() -> tuple[int, int]:
        pipe, _, sink, _ = make_pipe(Direction("a", "b", latency_ms=200, jitter_ms=0, partitioned=False))
        pipe.push(b"x")
        await asyncio.sleep(0.02)
        early = len(sink.written)
        await asyncio.sleep(0.25)
        return early, len(sink.written)

    assert asyncio.run(scenario()) == (0, 1)


def test_a_partition_holds_bytes_and_eof_and_heal_releases_them() -> None:
    async def scenario() -> None:
        direction = Direction("a", "b", latency_ms=0, jitter_ms=0, partitioned=True)
        pipe, _, sink, delivered = make_pipe(direction)
        pipe.push(b"one")
        pipe.push(b"two")
        pipe.source_eof()
        await asyncio.sleep(0.02)
        assert sink.written == [] and not sink.eof
        assert pipe.held == 6
        direction.heal()
        assert sink.written == [b"one", b"two"] and sink.eof
        assert delivered == [3, 3] and pipe.finished and pipe.held == 0

    asyncio.run(scenario())


def test_a_full_pipe_stops_reading_its_source_until_it_drains() -> None:
    async def scenario() -> None:
        direction = Direction("a", "b", latency_ms=0, jitter_ms=0, partitioned=True)
        pipe, source, sink, _ = make_pipe(direction)
        chunk = b"z" * 65536
        while source.reading:
            pipe.push(chunk)
        assert pipe.queued >= link_proxy.HIGH_WATER
        direction.heal()
        assert source.reading and pipe.queued == 0
        assert sum(map(len, sink.written)) == (link_proxy.HIGH_WATER // len(chunk)) * len(chunk)

    asyncio.run(scenario())


def test_a_blocked_sink_holds_chunks_until_it_resumes() -> None:
    async def scenario() -> None:
        pipe, _, sink, _ = make_pipe(Direction("a", "b", latency_ms=0, jitter_ms=0, partitioned=False))
        pipe.set_sink_blocked(True)
        pipe.push(b"later")
        assert sink.written == []
        pipe.set_sink_blocked(False)
        assert sink.written == [b"later"]

    asyncio.run(scenario())
