"""The entry's side towards a region: pooled keep-alive HTTP/1.1 connections as plain asyncio protocols.

A response is parsed with httptools as its bytes arrive and handed on at once to a ``Sink`` (the client's
connection): no task, no coroutine and no copy of the whole body per request. A general-purpose client (httpx)
costs several times the proxying itself, and the entry must add little to what a region costs.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httptools

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer", b"trailers",
    b"transfer-encoding", b"upgrade", b"proxy-connection",
})
NO_BODY_STATUS = frozenset({204, 304})
Headers = list[tuple[bytes, bytes]]


class BodyMode:
    NONE = "none"  # HEAD, 204, 304: the head is the whole answer
    LENGTH = "length"  # Content-Length: body bytes pass through as they are
    OPEN = "open"  # chunked or ended by close upstream: the client side frames it again


class UpstreamError(Exception):
    """The region gave no complete answer. ``sent``: the head already went to the client. ``retryable``: a reused
    idle connection failed before any byte came back, so the region never saw the request."""

    def __init__(self, message: str, sent: bool = False, retryable: bool = False) -> None:
        super().__init__(message)
        self.sent = sent
        self.retryable = retryable


class Sink(Protocol):
    """Where an upstream connection delivers one response."""

    def upstream_head(self, status: int, reason: bytes, headers: Headers, mode: str) -> None: ...

    def upstream_body(self, chunk: bytes) -> None: ...

    def upstream_done(self) -> None: ...

    def upstream_failed(self, error: UpstreamError) -> None: ...

    def flush(self) -> None:
        """Write what the last read delivered, as one write (one syscall instead of one per piece)."""
        ...


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to a region; carries one exchange at a time."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.sink: Sink | None = None
        self.closed = False
        self.uses = 0
        self._timer: asyncio.TimerHandle | None = None
        self._reset(False)

    def _reset(self, head_only: bool) -> None:
        self.head_only = head_only
        self.received = False
        self.head_sent = False
        self.mode = BodyMode.NONE
        self.reason = b""
        self.headers: Headers = []
        self.keep_alive = False
        self.last_data = 0.0
        self.parser = httptools.HttpResponseParser(self)

    # driving ---------------------------------------------------------------------------------------------------
    def start(self, request: bytes, sink: Sink, head_only: bool) -> None:
        assert self.transport is not None
        self._reset(head_only)
        self.sink = sink
        loop = asyncio.get_running_loop()
        self.last_data = loop.time()
        self._timer = loop.call_later(self.pool.read_timeout_s, self._check_timeout)
        self.transport.write(request)

    def abandon(self) -> None:
        """The client went away mid-answer: this connection is out of step, close it."""
        self.sink = None
        self._close()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def _check_timeout(self) -> None:
        loop = asyncio.get_running_loop()
        idle = loop.time() - self.last_data
        if self.sink is None:
            return
        if idle < self.pool.read_timeout_s:
            self._timer = loop.call_later(self.pool.read_timeout_s - idle, self._check_timeout)
            return
        self._fail(UpstreamError(f"no answer from {self.pool.address} within {self.pool.read_timeout_s:g} s",
                                 sent=self.head_sent))

    def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: UpstreamError) -> None:
        sink, self.sink = self.sink, None
        self._close()
        if sink is not None:
            sink.upstream_failed(error)

    def _finish(self) -> None:
        sink, self.sink = self.sink, None
        if sink is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self.uses += 1
        reusable = self.keep_alive and not self.closed
        sink.upstream_done()
        if reusable:
            self.pool.release(self)
        else:
            self._close()

    # asyncio.Protocol --------------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.sink is None:  # bytes nobody asked for: the connection is out of step
            self._close()
            return
        self.received = True
        self.last_data = asyncio.get_running_loop().time()
        sink = self.sink
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"malformed answer from {self.pool.address}: {exc}", sent=self.head_sent))
        if self.sink is sink:  # still mid-answer (a finished or failed answer was flushed by its sink)
            sink.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.sink is None:
            return
        if self.head_sent and self.mode == BodyMode.OPEN and not self._framed():
            self._finish()  # a body delimited by the end of the connection
            return
        what = "closed the connection before answering" if not self.head_sent else "cut the answer short"
        self._fail(UpstreamError(f"{self.pool.address} {what}", sent=self.head_sent,
                                 retryable=self.uses > 0 and not self.received))

    # httptools callbacks -----------------------------------------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # read now: after completion the parser says False
        if status < 200 and status != 101:  # an interim answer: wait for the real one
            self.reason, self.headers = b"", []
            return
        lowered = [(k.lower(), v) for k, v in self.headers]
        if self.head_only or status in NO_BODY_STATUS:
            self.mode = BodyMode.NONE
        elif any(k == b"content-length" for k, _ in lowered):
            self.mode = BodyMode.LENGTH
        else:
            self.mode = BodyMode.OPEN
        headers = [(k, v) for (k, v), (low, _) in zip(self.headers, lowered, strict=True) if low not in HOP_BY_HOP]
        self.head_sent = True
        if self.sink is not None:
            self.sink.upstream_head(status, self.reason, headers, self.mode)
        if self.mode == BodyMode.NONE:
            self._finish()

    def on_body(self, body: bytes) -> None:
        if self.sink is not None and self.mode != BodyMode.NONE:
            self.sink.upstream_body(body)

    def on_message_complete(self) -> None:
        if self.head_sent:
            self._finish()

    def _framed(self) -> bool:
        return any(k.lower() == b"transfer-encoding" for k, _ in self.headers)


class UpstreamPool:
    """Idle keep-alive connections to one region's endpoint."""

    def __init__(self, host: str, port: int, max_idle: int = 256, connect_timeout_s: float = 2.0,
                 read_timeout_s: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.address = f"{host}:{port}"
        self.max_idle = max_idle
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._idle: list[UpstreamConnection] = []

    def take_idle(self) -> UpstreamConnection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        return None

    async def connect(self) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to {self.address} ({type(exc).__name__})") from None
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.abandon()

    def forget(self, conn: UpstreamConnection) -> None:
        if conn in self._idle:
            self._idle.remove(conn)

    def close(self) -> None:
        for conn in self._idle:
            conn.abandon()
        self._idle.clear()
