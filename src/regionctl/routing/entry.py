"""The global HTTP entry point: sends each request to a healthy region, keeps a user's session in one region, and
says so plainly when no region is healthy (503), never guessing.

Run as a global-plane process: ``python -m regionctl.routing.entry --plane <plane.json>``. Its own pages live under
``/_entry/`` (health, status, metrics) so they never shadow the shop's paths.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from regionctl.routing.dataplane import DataPlane
from regionctl.routing.metrics import CONTENT_TYPE_LATEST, PlaneMetrics, render
from regionctl.routing.proxy import HOP_BY_HOP, Headers, UpstreamError, UpstreamPool

COOKIE = "regionctl-region"
COOKIE_BYTES = COOKIE.encode() + b"="
ADMIN = "/_entry/"
MAX_BODY = 16 * 1024 * 1024
STRIPPED = HOP_BY_HOP | {b"expect", b"content-length", b"x-regionctl-region"}
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pick:
    region: str
    set_cookie: bool


def pick_region(healthy: Sequence[str], sticky: str | None, turn: int) -> Pick | None:
    """The region for one request: the session's region while it is healthy, else the next healthy one in turn
    (then the session sticks to it). None when no region is healthy."""
    if not healthy:
        return None
    if sticky in healthy:
        return Pick(sticky, False)
    return Pick(healthy[turn % len(healthy)], True)


def sticky_region(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"cookie" and COOKIE_BYTES in value:
            for part in value.split(b";"):
                key, _, val = part.strip().partition(b"=")
                if key == COOKIE.encode():
                    return val.decode("latin-1")
    return None


def request_head(scope: Scope, length: int, region: str) -> bytes:
    """The request line and headers sent to the region: hop-by-hop headers dropped, forwarding headers added."""
    target = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    lines = [scope["method"].encode() + b" " + target + b" HTTP/1.1"]
    forwarded_for = None
    for name, value in scope["headers"]:
        if name in STRIPPED:
            continue
        if name == b"x-forwarded-for":
            forwarded_for = value
            continue
        lines.append(name + b": " + value)
    client = (scope.get("client") or ("unknown", 0))[0].encode()
    lines.append(b"x-forwarded-for: " + (forwarded_for + b", " + client if forwarded_for else client))
    lines.append(b"x-forwarded-proto: " + scope.get("scheme", "http").encode())
    lines.append(b"x-regionctl-region: " + region.encode())
    if length or scope["method"] not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        lines.append(b"content-length: " + str(length).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


class EntryApp:
    """A raw ASGI app (no framework on the hot path)."""

    def __init__(self, plane: DataPlane, pools: Mapping[str, UpstreamPool], metrics: PlaneMetrics,
                 cookie_max_age_s: int = 3600) -> None:
        self.plane = plane
        self.pools = dict(pools)
        self.metrics = metrics
        self.cookie_max_age_s = cookie_max_age_s
        self._turn = itertools.count()
        self._counters: dict[tuple[str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1003})
        elif scope["path"].startswith(ADMIN):
            await self._admin(scope, send)
        else:
            await self._proxy(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        task: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                task = asyncio.create_task(self.plane.run())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                for pool in self.pools.values():
                    pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _count(self, region: str, status: int) -> None:
        key = (region, status // 100)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.metrics.entry_requests.labels(region, f"{status // 100}xx")
        counter.inc()

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        pick = pick_region(self.plane.healthy, sticky_region(scope["headers"]), next(self._turn))
        if pick is None:
            self._count("none", 503)
            await _plain(send, 503, f"Service unavailable: {self.plane.view.explain()}.\n",
                         [(b"retry-after", b"5"), (b"x-regionctl-region", b"none")])
            return
        body = await _read_body(receive)
        if body is None:
            await _plain(send, 413, f"Request body larger than {MAX_BODY} bytes.\n")
            return
        extra = [(b"x-regionctl-region", pick.region.encode())]
        if pick.set_cookie:
            extra.append((b"set-cookie", f"{COOKIE}={pick.region}; Path=/; Max-Age={self.cookie_max_age_s}; "
                                         "HttpOnly; SameSite=Lax".encode()))

        async def send_head(status: int, headers: Headers) -> None:
            await send({"type": "http.response.start", "status": status, "headers": headers + extra})

        async def send_body(chunk: bytes, more: bool) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

        request = request_head(scope, len(body), pick.region) + body
        try:
            status = await self.pools[pick.region].forward(request, scope["method"] == "HEAD", send_head, send_body)
        except UpstreamError as exc:
            self._count(pick.region, 502)
            if exc.sent:
                raise  # the answer is already under way: the server closes the connection
            await _plain(send, 502, f"Bad gateway: region {pick.region} did not answer ({exc}).\n", extra[:1])
            return
        self._count(pick.region, status)

    async def _admin(self, scope: Scope, send: Send) -> None:
        path = scope["path"][len(ADMIN):]
        if path == "health":
            await _plain(send, 200, '{"status": "ok"}', content_type=b"application/json")
        elif path == "status":
            await _plain(send, 200, json.dumps(self.plane.status(), indent=2), content_type=b"application/json")
        elif path == "metrics":
            await _plain(send, 200, render(self.metrics).decode(), content_type=CONTENT_TYPE_LATEST.encode())
        else:
            await _plain(send, 404, f"no such entry page {scope['path']!r}; try /_entry/status\n")


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _plain(send: Send, status: int, text: str, headers: Headers | None = None,
                 content_type: bytes = b"text/plain; charset=utf-8") -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def build(plane_path: str) -> tuple[EntryApp, Any]:
    """The entry app and its plane config, from a plane file."""
    from regionctl.routing.health import HealthMonitor
    from regionctl.routing.plane import load_plane
    from regionctl.routing.source import HttpControlSource

    plane = load_plane(plane_path)
    metrics = PlaneMetrics("entry")
    source = HttpControlSource(plane.api.url, plane.cache_path("entry"), plane.control_poll_s)
    monitor = HealthMonitor(plane.endpoints(), plane.health_config())
    data_plane = DataPlane(plane.region_names(), source, monitor, metrics)
    pools = {e.region: UpstreamPool(e.host, e.port) for e in plane.endpoints().values()}
    return EntryApp(data_plane, pools, metrics), plane


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the global entry point of a global plane described by a plane file."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="regionctl.routing.entry", description=main.__doc__)
    parser.add_argument("--plane", required=True, help="plane.json written by routing.launch")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s entry %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health check would drown the log
    app, plane = build(args.plane)
    uvicorn.run(app, host=plane.entry.host, port=plane.entry.port, http="httptools", loop="uvloop",
                log_level="warning", access_log=False, lifespan="on", backlog=2048, server_header=False,
                date_header=False)  # the region's own Date and Server headers pass through


if __name__ == "__main__":
    main()
