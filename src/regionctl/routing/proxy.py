"""A lean HTTP/1.1 upstream client for the entry: pooled keep-alive connections over asyncio streams, responses
parsed with httptools and streamed back as they arrive.

General-purpose clients (httpx) cost several times more per request than the proxying itself; the entry must add
little to a region's latency, so it speaks just enough HTTP/1.1 itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httptools

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer", b"trailers",
    b"transfer-encoding", b"upgrade", b"proxy-connection",
})
NO_BODY_STATUS = frozenset({204, 304})
READ_SIZE = 65536

Headers = list[tuple[bytes, bytes]]
SendHead = Callable[[int, Headers], Awaitable[None]]
SendBody = Callable[[bytes, bool], Awaitable[None]]


class UpstreamError(Exception):
    """The region did not give a complete answer. ``sent``: part of it already reached the client.
    ``retryable``: a reused idle connection failed before the region answered anything (it never saw the request)."""

    def __init__(self, message: str, sent: bool, retryable: bool = False) -> None:
        super().__init__(message)
        self.sent = sent
        self.retryable = retryable


@dataclass
class _Response:
    """Collects httptools callbacks for one response."""

    status: int = 0
    headers: Headers = field(default_factory=list)
    head_done: bool = False
    chunks: list[bytes] = field(default_factory=list)
    done: bool = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.uses = 0

    def close(self) -> None:
        self.writer.close()


class UpstreamPool:
    """Idle keep-alive connections to one region's endpoint."""

    def __init__(self, host: str, port: int, max_idle: int = 256, connect_timeout_s: float = 2.0,
                 read_timeout_s: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._idle: list[Connection] = []

    async def _connect(self) -> Connection:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                    self.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to {self.host}:{self.port} ({type(exc).__name__})", False) from None
        return Connection(reader, writer)

    def _take_idle(self) -> Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            conn.close()
        return None

    def _give_back(self, conn: Connection) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def forward(self, request: bytes, head_only: bool, send_head: SendHead, send_body: SendBody) -> int:
        """Send ``request`` (a complete HTTP/1.1 message) and stream the answer; returns the status.

        Only when a reused idle connection fails before any byte comes back is the request sent once more, on a
        fresh connection: the region closed that connection while idle and never saw the request.
        """
        conn = self._take_idle()
        if conn is not None:
            try:
                return await self._exchange(conn, request, head_only, send_head, send_body)
            except UpstreamError as exc:
                if not exc.retryable:
                    raise
        return await self._exchange(await self._connect(), request, head_only, send_head, send_body)

    async def _exchange(self, conn: Connection, request: bytes, head_only: bool, send_head: SendHead,
                        send_body: SendBody) -> int:
        response = _Response()
        parser = httptools.HttpResponseParser(response)
        received = sent_head = keep = False
        try:
            conn.writer.write(request)
            while True:
                data = await asyncio.wait_for(conn.reader.read(READ_SIZE), self.read_timeout_s)
                if data:
                    received = True
                    parser.feed_data(data)
                elif not response.head_done:
                    raise UpstreamError(f"{self.host}:{self.port} closed the connection before answering", False,
                                        retryable=conn.uses > 0 and not received)
                elif _delimited(response.headers):
                    raise UpstreamError(f"{self.host}:{self.port} cut the response short", sent_head)
                else:
                    response.done = True  # a body delimited by the end of the connection
                if response.head_done and not sent_head:
                    response.status = parser.get_status_code()
                    await send_head(response.status, [(k, v) for k, v in response.headers
                                                      if k.lower() not in HOP_BY_HOP])
                    sent_head = True
                    if head_only or response.status in NO_BODY_STATUS or response.status < 200:
                        response.done = True
                        response.chunks.clear()
                if response.chunks or response.done:
                    body, response.chunks = b"".join(response.chunks), []
                    await send_body(body, not response.done)
                if response.done:
                    keep = bool(data) and parser.should_keep_alive()
                    return response.status
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            raise UpstreamError(f"{type(exc).__name__} talking to {self.host}:{self.port}", sent_head,
                                retryable=conn.uses > 0 and not received and not isinstance(exc, TimeoutError)
                                ) from None
        finally:
            conn.uses += 1
            if keep:
                self._give_back(conn)
            else:
                conn.close()


def _delimited(headers: Headers) -> bool:
    """Whether the body's end is marked (length or chunks), so a closed connection means a cut response."""
    return any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in headers)
