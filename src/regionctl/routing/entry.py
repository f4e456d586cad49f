"""The global HTTP entry point: sends each request to a healthy region, keeps a user's session in one region, and
says so plainly when no region is healthy (503), never guessing.

It is a small HTTP/1.1 server written as asyncio protocols (httptools parses both directions): on the hot path a
request costs a parse, a pick and two writes, with no task or coroutine per request. Its own pages live under
``/_entry/`` (health, status, metrics) so they never shadow the shop's paths.

Run as a global-plane process: ``python -m regionctl.routing.entry --plane <plane.json>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import httptools

from regionctl.routing.dataplane import DataPlane
from regionctl.routing.metrics import CONTENT_TYPE_LATEST, PlaneMetrics, render
from regionctl.routing.plane import PlaneConfig, load_plane
from regionctl.routing.proxy import HOP_BY_HOP, BodyMode, Headers, UpstreamConnection, UpstreamError, UpstreamPool

COOKIE = "regionctl-region"
COOKIE_BYTES = COOKIE.encode()
ADMIN = b"/_entry/"
MAX_BODY = 16 * 1024 * 1024
MAX_PIPELINED = 64
STRIPPED = HOP_BY_HOP | {b"expect", b"content-length", b"x-regionctl-region", b"x-forwarded-for"}
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 413: b"Content Too Large", 501: b"Not Implemented",
           502: b"Bad Gateway", 503: b"Service Unavailable"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pick:
    region: str
    set_cookie: bool


def pick_region(healthy: Sequence[str], sticky: str | None, turns: Iterator[int]) -> Pick | None:
    """The region for one request: the session's region while it is healthy, else the next healthy one in turn
    (then the session sticks to it). None when no region is healthy. Only placements take a turn, so new visitors
    alternate between regions however many requests each of them makes."""
    if not healthy:
        return None
    if sticky is not None and sticky in healthy:
        return Pick(sticky, False)
    return Pick(healthy[next(turns) % len(healthy)], True)


def sticky_region(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The region named by the entry's session cookie, if the request carries one (header names lower-case)."""
    for name, value in headers:
        if name == b"cookie" and COOKIE_BYTES in value:
            for part in value.split(b";"):
                key, _, val = part.strip().partition(b"=")
                if key == COOKIE_BYTES:
                    return val.decode("latin-1")
    return None


def request_head(method: bytes, target: bytes, headers: Headers, client_ip: str, length: int, region: str) -> bytes:
    """The request line and headers sent to the region: hop-by-hop headers dropped, forwarding headers added."""
    lines = [method + b" " + target + b" HTTP/1.1"]
    forwarded_for = b""
    for name, value in headers:
        if name == b"x-forwarded-for":
            forwarded_for = value + b", "
        elif name not in STRIPPED:
            lines.append(name + b": " + value)
    lines.append(b"x-forwarded-for: " + forwarded_for + client_ip.encode())
    lines.append(b"x-forwarded-proto: http")
    lines.append(b"x-regionctl-region: " + region.encode())
    if length or method not in (b"GET", b"HEAD", b"DELETE", b"OPTIONS"):
        lines.append(b"content-length: " + str(length).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


@dataclass
class Request:
    method: bytes
    target: bytes
    headers: Headers
    body: bytes
    keep_alive: bool
    http10: bool
    too_big: bool = False


@dataclass
class Entry:
    """What every client connection shares: the routing view, the pools, the metrics."""

    plane: DataPlane
    pools: dict[str, UpstreamPool]
    metrics: PlaneMetrics
    cookie_max_age_s: int = 3600
    turns: itertools.count[int] = field(default_factory=itertools.count)  # new visitors' placements
    counters: dict[tuple[str, int], object] = field(default_factory=dict)

    def count(self, region: str, status: int) -> None:
        key = (region, status // 100)
        counter = self.counters.get(key)
        if counter is None:
            counter = self.counters[key] = self.metrics.entry_requests.labels(region, f"{status // 100}xx")
        counter.inc()  # type: ignore[attr-defined]

    def admin(self, path: bytes) -> tuple[int, bytes, bytes]:
        page = path[len(ADMIN):].split(b"?", 1)[0]
        if page == b"health":
            return 200, b'{"status": "ok"}', b"application/json"
        if page == b"status":
            return 200, json.dumps(self.plane.status(), indent=2).encode(), b"application/json"
        if page == b"metrics":
            return 200, render(self.metrics), CONTENT_TYPE_LATEST.encode()
        return 404, b"no such entry page; try /_entry/status\n", b"text/plain; charset=utf-8"


class ClientConnection(asyncio.Protocol):
    """One client's keep-alive connection: requests are answered one after another, in order."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Request] = deque()
        self.current: Request | None = None
        self.upstream: UpstreamConnection | None = None
        self.gone = False
        self.peer = "unknown"
        self._parts: list[bytes] = []
        self._headers: Headers = []
        self._url = b""
        self._size = 0
        self.region = ""
        self.extra: Headers = []
        self.wire = b""
        self.retried = False
        self.chunked = False
        self.status = 0
        self._out: list[bytes] = []

    # asyncio.Protocol --------------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "unknown"

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._local_and_close(501, b"The entry does not proxy protocol upgrades (websockets).\n")
        except httptools.HttpParserError as exc:
            self._local_and_close(400, f"Malformed HTTP request: {exc}.\n".encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        if self.upstream is not None:
            self.upstream.abandon()
            self.upstream = None

    def pause_writing(self) -> None:  # the client reads slowly: stop reading the region until it catches up
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    # httptools callbacks (request side) --------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url, self._headers, self._parts, self._size = b"", [], [], 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.transport is not None and (b"expect", b"100-continue") in self._headers:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # bodies are read whole before proxying

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size <= MAX_BODY:
            self._parts.append(body)

    def on_message_complete(self) -> None:
        body = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self.queue.append(Request(self.parser.get_method(), self._url, self._headers, body,
                                  self.parser.should_keep_alive(), self.parser.get_http_version() == "1.0",
                                  self._size > MAX_BODY))
        if len(self.queue) > MAX_PIPELINED and self.transport is not None:
            self.transport.pause_reading()
        if self.current is None:
            self._next()

    # answering ---------------------------------------------------------------------------------------------------
    def _next(self) -> None:
        while self.current is None and self.queue and not self.gone:
            if self.transport is not None and len(self.queue) == MAX_PIPELINED:
                self.transport.resume_reading()
            self._handle(self.queue.popleft())

    def _handle(self, request: Request) -> None:
        self.current = request
        if request.too_big:
            self._local(413, f"Request body larger than {MAX_BODY} bytes.\n".encode(), close=True)
        elif request.target.startswith(ADMIN):
            status, body, content_type = self.entry.admin(request.target)
            self._local(status, body, content_type=content_type)
        else:
            self._proxy(request)

    def _proxy(self, request: Request) -> None:
        pick = pick_region(self.entry.plane.healthy, sticky_region(request.headers), self.entry.turns)
        if pick is None:
            self.entry.count("none", 503)
            text = f"Service unavailable: {self.entry.plane.view.explain()}.\n".encode()
            self._local(503, text, extra=[(b"retry-after", b"5"), (b"x-regionctl-region", b"none")])
            return
        self.region = pick.region
        self.extra = [(b"x-regionctl-region", pick.region.encode())]
        if pick.set_cookie:
            self.extra.append((b"set-cookie", f"{COOKIE}={pick.region}; Path=/; Max-Age={self.entry.cookie_max_age_s}"
                                              "; HttpOnly; SameSite=Lax".encode()))
        self.wire = request_head(request.method, request.target, request.headers, self.peer, len(request.body),
                                 pick.region) + request.body
        self.retried = False
        self.chunked = False
        conn = self.entry.pools[pick.region].take_idle()
        if conn is None:
            asyncio.get_running_loop().create_task(self._connect_and_send())
        else:
            self._send(conn)

    def _send(self, conn: UpstreamConnection) -> None:
        if self.gone or self.current is None:
            conn.abandon()
            return
        self.upstream = conn
        conn.start(self.wire, self, self.current.method == b"HEAD")

    async def _connect_and_send(self) -> None:
        try:
            conn = await self.entry.pools[self.region].connect()
        except UpstreamError as exc:
            self.upstream_failed(exc)
            return
        self._send(conn)

    # Sink: what the region answers -------------------------------------------------------------------------------
    def upstream_head(self, status: int, reason: bytes, headers: Headers, mode: str) -> None:
        assert self.current is not None and self.transport is not None
        self.status = status
        lines = [b"HTTP/1.1 %d %s" % (status, reason)]
        lines.extend(name + b": " + value for name, value in headers)
        lines.extend(name + b": " + value for name, value in self.extra)
        if mode == BodyMode.OPEN:
            if self.current.http10:
                self.current.keep_alive = False  # the end of the connection ends the body
            else:
                self.chunked = True
                lines.append(b"transfer-encoding: chunked")
        if not self.current.keep_alive:
            lines.append(b"connection: close")
        self._out.append(b"\r\n".join(lines) + b"\r\n\r\n")

    def upstream_body(self, chunk: bytes) -> None:
        if chunk:
            self._out.append(b"%x\r\n%b\r\n" % (len(chunk), chunk) if self.chunked else chunk)

    def flush(self) -> None:
        if self._out and self.transport is not None and not self.gone:
            self.transport.write(self._out[0] if len(self._out) == 1 else b"".join(self._out))
        self._out.clear()

    def upstream_done(self) -> None:
        self.upstream = None
        if self.chunked:
            self._out.append(b"0\r\n\r\n")
        self.flush()
        self.entry.count(self.region, self.status)
        self._complete()

    def upstream_failed(self, error: UpstreamError) -> None:
        self.upstream = None
        if self.gone:
            return
        if error.retryable and not self.retried:
            self.retried = True  # the region closed an idle connection: it never saw the request
            asyncio.get_running_loop().create_task(self._connect_and_send())
            return
        self.entry.count(self.region, 502)
        if error.sent:
            self.flush()
            if self.transport is not None:
                self.transport.close()  # the answer is cut: the client must see the connection end
            return
        self._local(502, f"Bad gateway: region {self.region} did not answer ({error}).\n".encode(),
                    extra=self.extra[:1])

    # local answers -----------------------------------------------------------------------------------------------
    def _local(self, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8",
               extra: Headers | None = None, close: bool = False) -> None:
        if self.transport is None or self.gone:
            return
        keep = not close and self.current is not None and self.current.keep_alive
        lines = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b"")), b"content-type: " + content_type,
                 b"content-length: %d" % len(body), *(k + b": " + v for k, v in extra or [])]
        if not keep:
            lines.append(b"connection: close")
        head_only = self.current is not None and self.current.method == b"HEAD"
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + (b"" if head_only else body))
        if not keep and self.current is not None:
            self.current.keep_alive = False
        self._complete()

    def _local_and_close(self, status: int, body: bytes) -> None:
        self.queue.clear()
        if self.current is None:
            self.current = Request(b"GET", b"", [], b"", False, False)
            self._local(status, body, close=True)
        elif self.transport is not None:
            self.transport.close()

    def _complete(self) -> None:
        request, self.current = self.current, None
        if request is not None and not request.keep_alive:
            if self.transport is not None:
                self.transport.close()
            self.gone = True
            return
        self._next()


def build(plane_path: str) -> tuple[Entry, PlaneConfig]:
    """The shared entry state and its plane config, from a plane file."""
    from regionctl.routing.health import HealthMonitor
    from regionctl.routing.source import HttpControlSource

    plane = load_plane(plane_path)
    metrics = PlaneMetrics("entry")
    source = HttpControlSource(plane.api.url, plane.cache_path("entry"), plane.control_poll_s)
    monitor = HealthMonitor(plane.endpoints(), plane.health_config())
    data_plane = DataPlane(plane.region_names(), source, monitor, metrics)
    pools = {e.region: UpstreamPool(e.host, e.port) for e in plane.endpoints().values()}
    return Entry(data_plane, pools, metrics), plane


async def serve(entry: Entry, host: str, port: int) -> None:
    """Answer on ``host:port`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ClientConnection(entry), host, port, backlog=2048, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    plane_task = asyncio.create_task(entry.plane.run())
    log.info("entry listening on %s:%d", host, port)
    await stop.wait()
    server.close()
    plane_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await plane_task
    for pool in entry.pools.values():
        pool.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the global entry point of a global plane described by a plane file."""
    parser = argparse.ArgumentParser(prog="regionctl.routing.entry", description=main.__doc__)
    parser.add_argument("--plane", required=True, help="plane.json written by routing.launch")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s entry %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health check would drown the log
    entry, plane = build(args.plane)
    import uvloop  # comes with uvicorn[standard]

    uvloop.run(serve(entry, plane.entry.host, plane.entry.port))


if __name__ == "__main__":
    main()
