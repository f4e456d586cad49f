"""The data path of the link emulator: asyncio protocols that forward TCP between regions, late and in order.

Either end of a route may be a unix-domain socket instead (``Route.listen_path``, ``Route.target_path``): the
pipes are the same, only the transports differ; a reset closes a unix socket at once (unix sockets have no RST).

Each proxied connection has two ``Pipe``s, one per direction. A pipe keeps the chunks it has read with the time
each is due (read time + latency + jitter, monotonic), writes them when due, holds them while its direction is
partitioned, and stops reading from its source when it holds too much (backpressure, as a full TCP window).
Callbacks only, no task per connection: per chunk the cost is one deque append/pop and at most one timer.

Time is ``time.monotonic()``, not ``loop.time()``: uvloop's loop clock is cached per iteration with 1 ms
resolution and its timers may fire up to a millisecond early, so a timer that fires early is re-armed and no
chunk is ever delivered before its due time (at most about a millisecond after it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from regionctl.runtime.link_model import Pair, Route, delivery_time

log = logging.getLogger(__name__)

HIGH_WATER = 8 * 1024 * 1024  # bytes a pipe holds before it stops reading its source
LOW_WATER = HIGH_WATER // 4
WRITE_HIGH_WATER = 256 * 1024  # transport write buffer before the sink counts as blocked
CONNECT_TIMEOUT_S = 10.0
MIN_TIMER_S = 0.001  # uvloop's timers have 1 ms resolution; shorter ones would spin
_LINGER_RST = struct.pack("ii", 1, 0)


class Direction:
    """The live state of one direction, shared by every pipe crossing it."""

    def __init__(self, src: str, dst: str, latency_ms: float, jitter_ms: float, partitioned: bool) -> None:
        self.pair: Pair = (src, dst)
        self.latency_s = latency_ms / 1000.0
        self.jitter_s = jitter_ms / 1000.0
        self.partitioned = partitioned
        self.pipes: set[Pipe] = set()

    def heal(self) -> None:
        self.partitioned = False
        for pipe in list(self.pipes):
            pipe.pump()


@dataclass
class RouteCounters:
    connections_total: int = 0
    connect_errors: int = 0
    bytes_forward: int = 0  # delivered src->dst
    bytes_backward: int = 0  # delivered dst->src
    connections: set[Connection] = field(default_factory=set)


class Pipe:
    """One direction of one connection: source transport -> held chunks -> sink transport."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        direction: Direction,
        count: Callable[[int], None],
        on_finished: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.direction = direction
        self.count = count
        self.on_finished = on_finished
        self.chunks: deque[tuple[float, bytes]] = deque()
        self.queued = 0
        self.last_due = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.source: asyncio.Transport | None = None
        self.sink: asyncio.Transport | None = None
        self.sink_blocked = False
        self.source_paused = False
        self.eof = False  # the source will send nothing more
        self.finished = False  # eof passed on, or the pipe was discarded
        direction.pipes.add(self)

    def push(self, data: bytes) -> None:
        if self.finished:
            return  # the other end is gone; a real network would answer with a RST
        d = self.direction
        due = delivery_time(time.monotonic(), d.latency_s, d.jitter_s, self.last_due, random.random)
        self.last_due = due
        self.chunks.append((due, data))
        self.queued += len(data)
        if self.queued >= HIGH_WATER and not self.source_paused and self.source is not None:
            self.source_paused = True
            self.source.pause_reading()
        if self.timer is None:
            self.pump()

    def source_eof(self) -> None:
        self.eof = True
        if self.timer is None:
            self.pump()

    def set_sink_blocked(self, blocked: bool) -> None:
        self.sink_blocked = blocked
        if not blocked:
            self.pump()

    def attach_sink(self, sink: asyncio.Transport) -> None:
        self.sink = sink
        self.pump()

    def _on_timer(self) -> None:
        self.timer = None
        self.pump()

    def pump(self) -> None:
        """Write every chunk that is due, unless held; arm a timer for the next one."""
        while not self.finished:
            if self.sink is None or self.sink_blocked or self.direction.partitioned:
                return
            if not self.chunks:
                if self.eof:
                    self._pass_eof()
                return
            due, data = self.chunks[0]
            wait = due - time.monotonic()
            if wait > 0:
                if self.timer is None:
                    self.timer = self.loop.call_later(max(wait, MIN_TIMER_S), self._on_timer)
                return
            self.chunks.popleft()
            self.queued -= len(data)
            self.count(len(data))
            self.sink.write(data)  # may call pause_writing -> sink_blocked
            if self.source_paused and self.queued <= LOW_WATER and self.source is not None:
                self.source_paused = False
                self.source.resume_reading()

    def _pass_eof(self) -> None:
        assert self.sink is not None
        if self.sink.can_write_eof() and not self.sink.is_closing():
            self.sink.write_eof()
        self.finish()

    def finish(self) -> None:
        """Stop for good: nothing more will be written (eof passed on, or the peer is gone)."""
        if self.finished:
            return
        self.finished = True
        self.chunks.clear()
        self.queued = 0
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.direction.pipes.discard(self)
        self.on_finished()

    @property
    def held(self) -> int:
        return self.queued if self.direction.partitioned else 0


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; ``outgoing`` carries what it reads, ``incoming`` what it is sent."""

    def __init__(self, conn: Connection, outgoing: Pipe, incoming: Pipe) -> None:
        self.conn = conn
        self.outgoing = outgoing
        self.incoming = incoming
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.transport = transport
        set_nodelay(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.outgoing.source = transport
        self.incoming.attach_sink(transport)

    def data_received(self, data: bytes) -> None:
        self.outgoing.push(data)

    def eof_received(self) -> bool:
        self.outgoing.source_eof()
        return True  # keep the socket open for what still travels towards it

    def pause_writing(self) -> None:
        self.incoming.set_sink_blocked(True)

    def resume_writing(self) -> None:
        self.incoming.set_sink_blocked(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.outgoing.source_eof()  # deliver what it sent, then end that direction
        self.incoming.finish()  # nothing can reach it any more
        self.conn.check_done()


class Connection:
    """A client accepted in the source region and its connection to the target in the destination region."""

    def __init__(self, loop: asyncio.AbstractEventLoop, route: Route, dirs: dict[Pair, Direction],
                 counters: RouteCounters) -> None:
        self.loop = loop
        self.route = route
        self.counters = counters
        self.forward = Pipe(loop, dirs[route.forward], self._count_forward, self.check_done)
        self.backward = Pipe(loop, dirs[route.backward], self._count_backward, self.check_done)
        self.client = _Side(self, outgoing=self.forward, incoming=self.backward)
        self.target = _Side(self, outgoing=self.backward, incoming=self.forward)
        self.closed = False
        self.connect_task: asyncio.Task[None] | None = None
        counters.connections.add(self)
        counters.connections_total += 1

    def _count_forward(self, n: int) -> None:
        self.counters.bytes_forward += n

    def _count_backward(self, n: int) -> None:
        self.counters.bytes_backward += n

    def crosses(self, pair: Pair) -> bool:
        return pair in (self.route.forward, self.route.backward)

    def start(self) -> None:
        self.connect_task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        route = self.route
        # A partitioned direction drops the SYN too: the target hears of this connection only after heal, and
        # never when the client gives up first (else every retry would leave a session open at the target).
        while self.forward.direction.partitioned:
            if self.closed or self.forward.eof:
                self.reset()
                return
            await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(self._open_target(), CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            self.counters.connect_errors += 1
            log.warning("route %s: cannot reach %s: %s", route.name, route.target_address, exc)
            self.reset()

    async def _open_target(self) -> None:
        """Connect to the target: its unix socket, or over TCP from the listening address (so the target sees a
        peer in the source site; from any address when the route listens on a wildcard or a unix socket)."""
        route = self.route
        if route.target_path is not None:
            await self.loop.create_unix_connection(lambda: self.target, route.target_path)
            return
        wildcard = route.listen_path is not None or route.listen_host in ("", "0.0.0.0", "::")
        await self.loop.create_connection(lambda: self.target, route.target_host, route.target_port,
                                          local_addr=None if wildcard else (route.listen_host, 0))

    def check_done(self) -> None:
        """Close both sockets once neither direction has anything more to carry."""
        if self.closed or not (self.forward.finished and self.backward.finished):
            return
        self.closed = True
        for side in (self.client, self.target):
            if side.transport is not None:
                side.transport.close()
        self.counters.connections.discard(self)

    def reset(self) -> None:
        """Drop the connection at once with a RST to both ends, as a middlebox would."""
        if self.connect_task is not None and not self.connect_task.done():
            self.connect_task.cancel()
        for side in (self.client, self.target):
            if side.transport is not None:
                abort_with_rst(side.transport)
        self.forward.finish()
        self.backward.finish()
        self.closed = True
        self.counters.connections.discard(self)

    @property
    def is_open(self) -> bool:
        return not self.closed


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def abort_with_rst(transport: asyncio.Transport) -> None:
    """Close so that the peer sees ECONNRESET now (SO_LINGER 0), not a polite FIN after buffered data; a unix
    socket is closed at once (its peer sees the end of the stream, or ECONNRESET with unread data)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()
