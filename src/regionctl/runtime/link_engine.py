"""The link emulator's control side: routes (listeners), direction states, counters and their persistence.

Every mutation validates first, then changes the live state, then writes the state file, so a request either
applies whole or not at all, and a restarted emulator comes back as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from regionctl.errors import ConflictError, InputError
from regionctl.runtime.link_model import (
    DirectionState,
    LinkState,
    LinkStatus,
    Pair,
    Route,
    RouteStatus,
    apply_partition,
    apply_settings,
    check_delay,
    check_regions,
    check_route,
    heal_directions,
    initial_directions,
    isolation_pairs,
    load_state,
    parse_direction,
    same_listener,
    save_state,
)
from regionctl.runtime.link_proxy import Connection, Direction, RouteCounters
from regionctl.runtime.link_unix import SocketId, claim_path, release_path, socket_id

log = logging.getLogger(__name__)

STATE_FILE = "link.json"
REBIND_INTERVAL_S = 1.0


class _Listener:
    """One route's listening socket, its connections and counters; ``socket_id`` is the socket file it bound
    (unix listeners only)."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.server: asyncio.Server | None = None
        self.socket_id: SocketId | None = None
        self.error: str | None = None
        self.counters = RouteCounters()

    @property
    def lost_socket_file(self) -> bool:
        """Whether it listens on a unix socket whose file vanished or was replaced (its directory wiped)."""
        path = self.route.listen_path
        return self.server is not None and path is not None and socket_id(path) != self.socket_id


class LinkEngine:
    """All routes and directions of one deployment, in one event loop.

    The sites are the regions and the global plane; ``latency_ms``/``jitter_ms`` start the directions between
    regions, ``control_latency_ms``/``control_jitter_ms`` those of the control path (used when no state file
    exists yet, and for directions a state file does not have).
    """

    def __init__(self, state_dir: Path, regions: Sequence[str], latency_ms: float, jitter_ms: float,
                 control_latency_ms: float = 0.0, control_jitter_ms: float = 0.0) -> None:
        self.regions = check_regions(regions)
        for name, value in (("latency_ms", latency_ms), ("jitter_ms", jitter_ms),
                            ("control_latency_ms", control_latency_ms), ("control_jitter_ms", control_jitter_ms)):
            check_delay(name, value)
        self.path = state_dir / STATE_FILE
        defaults = LinkState(
            initial_directions(self.regions, latency_ms, jitter_ms, control_latency_ms, control_jitter_ms), ()
        )
        state = load_state(self.path, self.regions, defaults)
        self.directions: dict[Pair, Direction] = {
            (d.src, d.dst): Direction(d.src, d.dst, d.latency_ms, d.jitter_ms, d.partitioned) for d in state.directions
        }
        self._states: dict[Pair, DirectionState] = {(d.src, d.dst): d for d in state.directions}
        self.listeners: dict[str, _Listener] = {r.name: _Listener(r) for r in state.routes}
        self._rebind_task: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind every persisted route; those that cannot bind yet are retried in the background."""
        for listener in self.listeners.values():
            await self._bind(listener)
        self._persist()
        self._rebind_task = asyncio.get_running_loop().create_task(self._rebind_loop())
        log.info("link emulator up: %d routes, directions %s", len(self.listeners), self._describe())

    async def close(self) -> None:
        if self._rebind_task is not None:
            self._rebind_task.cancel()
        for listener in self.listeners.values():
            self._unbind(listener)

    async def _rebind_loop(self) -> None:
        """Every REBIND_INTERVAL_S: bind the listeners that could not bind, and listen again on a unix socket
        whose file is gone (its open connections carry on)."""
        while True:
            await asyncio.sleep(REBIND_INTERVAL_S)
            for listener in list(self.listeners.values()):
                if self.listeners.get(listener.route.name) is not listener:
                    continue  # removed or replaced while an earlier one was binding
                if listener.lost_socket_file:
                    log.warning("route %s: socket file %s vanished or was replaced; listening again",
                                listener.route.name, listener.route.listen_path)
                    self._stop_listening(listener)
                if listener.server is None:
                    await self._bind(listener, quiet=True)

    # --- queries -------------------------------------------------------------------------------------------

    def status(self) -> LinkStatus:
        return LinkStatus(
            directions=tuple(self._states.values()),
            routes=tuple(self._route_status(li) for li in self.listeners.values()),
        )

    def _route_status(self, listener: _Listener) -> RouteStatus:
        c = listener.counters
        conns = list(c.connections)
        return RouteStatus(
            route=listener.route,
            listening=listener.server is not None,
            error=listener.error,
            connections_open=len(conns),
            connections_total=c.connections_total,
            connect_errors=c.connect_errors,
            bytes_src_to_dst=c.bytes_forward,
            bytes_dst_to_src=c.bytes_backward,
            queued_src_to_dst=sum(x.forward.queued for x in conns),
            queued_dst_to_src=sum(x.backward.queued for x in conns),
            held_src_to_dst=sum(x.forward.held for x in conns),
            held_dst_to_src=sum(x.backward.held for x in conns),
        )

    # --- directions ----------------------------------------------------------------------------------------

    def set(self, direction: str, latency_ms: float | None, jitter_ms: float | None) -> LinkStatus:
        pairs = parse_direction(direction, self.regions)
        latency_ms = check_delay("latency_ms", latency_ms)
        jitter_ms = check_delay("jitter_ms", jitter_ms)
        if latency_ms is None and jitter_ms is None:
            raise InputError("latency_ms: give latency_ms and/or jitter_ms to change")
        self._apply(apply_settings(self._states.values(), pairs, latency_ms, jitter_ms))
        log.info("set %s: latency_ms=%s jitter_ms=%s", direction, latency_ms, jitter_ms)
        return self.status()

    def partition(self, direction: str, reset: bool) -> LinkStatus:
        """Blackhole ``direction`` ("both": every direction between the regions, not the control path)."""
        dropped = self._cut(parse_direction(direction, self.regions), reset)
        log.warning("partitioned %s (reset: %s, %d connections dropped)", direction, reset, dropped)
        return self.status()

    def isolate(self, region: str, reset: bool = False) -> LinkStatus:
        """Partition every direction with ``region`` at either end: to and from the other region and the global
        plane. The region's own processes still reach each other (they never cross the link)."""
        pairs = isolation_pairs(region, self.regions)
        dropped = self._cut(pairs, reset)
        log.warning("isolated %s (reset: %s, %d connections dropped)", region, reset, dropped)
        return self.status()

    def heal(self, direction: str) -> LinkStatus:
        """End the partition of ``direction``; "both" ends every partition, the control path's too."""
        pairs = heal_directions(direction, self.regions)
        self._apply(apply_partition(self._states.values(), pairs, False))
        log.warning("healed %s", direction)
        return self.status()

    def _cut(self, pairs: Sequence[Pair], reset: bool) -> int:
        """Partition ``pairs``; with ``reset`` drop every open connection crossing one. Returns how many."""
        self._apply(apply_partition(self._states.values(), pairs, True))
        dropped = 0
        if reset:
            for listener in self.listeners.values():
                for conn in list(listener.counters.connections):
                    if any(conn.crosses(p) for p in pairs):
                        conn.reset()
                        dropped += 1
        return dropped

    def _apply(self, states: Sequence[DirectionState]) -> None:
        """Make the live directions match ``states`` (healing last, so held bytes flow with the new settings)."""
        self._states = {(s.src, s.dst): s for s in states}
        for state in states:
            live = self.directions[(state.src, state.dst)]
            live.latency_s = state.latency_ms / 1000.0
            live.jitter_s = state.jitter_ms / 1000.0
            if state.partitioned:
                live.partitioned = True
            elif live.partitioned:
                live.heal()
        self._persist()

    def _describe(self) -> str:
        return ", ".join(
            f"{s.name} {s.latency_ms:g}ms{' PARTITIONED' if s.partitioned else ''}" for s in self._states.values()
        )

    # --- routes --------------------------------------------------------------------------------------------

    async def ensure_route(self, route: Route) -> Route:
        """Add ``route``; the same route again changes nothing; a changed one replaces it (its connections end).

        Returns the route as kept: a unix-socket end has host "" and port 0."""
        route = check_route(route, self.regions)
        existing = self.listeners.get(route.name)
        if existing is not None and existing.route == route:
            if existing.server is None:
                await self._bind(existing)
            if existing.server is None:
                raise ConflictError(f"{existing.error}; the route is kept and retried every {REBIND_INTERVAL_S:g} s")
            return route
        for other in self.listeners.values():
            if other.route.name != route.name and same_listener(other.route, route):
                field = "listen_path" if route.listen_path is not None else "listen_port"
                raise ConflictError(f"{field}: {route.listen_address} is already route {other.route.name!r}")
        fresh = _Listener(route)
        if existing is not None and same_listener(existing.route, route):
            server = await self._take_over(existing, fresh)
        else:
            server = await self._open_server(fresh)  # raises ConflictError; nothing changed yet
        if existing is not None:
            self._unbind(existing)
            log.info("route %s replaced", route.name)
        fresh.server = server
        self.listeners[route.name] = fresh
        self._persist()
        log.info("route %s: %s (%s) -> %s (%s)", route.name, route.listen_address, route.src_region,
                 route.target_address, route.dst_region)
        return route

    async def _take_over(self, old: _Listener, fresh: _Listener) -> asyncio.Server:
        """Listen for ``fresh`` where ``old`` listens (a changed target): ``old`` stops listening first and, if
        ``fresh`` cannot listen, listens again, so a refused change leaves the route as it was."""
        self._stop_listening(old)
        try:
            return await self._open_server(fresh)
        except ConflictError:
            await self._bind(old)
            raise

    async def remove_route(self, name: str) -> bool:
        listener = self.listeners.pop(name, None)
        if listener is None:
            return False
        self._unbind(listener)
        self._persist()
        log.info("route %s removed", name)
        return True

    async def _open_server(self, listener: _Listener) -> asyncio.Server:
        route = listener.route
        loop = asyncio.get_running_loop()

        def accept() -> asyncio.Protocol:
            conn = Connection(loop, route, self.directions, listener.counters)
            conn.start()
            return conn.client

        if route.listen_path is not None:
            return await self._open_unix_server(listener, route.listen_path, accept)
        try:
            server = await loop.create_server(accept, route.listen_host, route.listen_port, reuse_address=True,
                                              backlog=512)
        except OSError as exc:
            raise ConflictError(f"listen_port: cannot listen on {route.listen_address}: "
                                f"{exc.strerror or exc}") from None
        return server

    async def _open_unix_server(self, listener: _Listener, path: str,
                                accept: Callable[[], asyncio.Protocol]) -> asyncio.Server:
        """Listen on the socket ``path``, removing a stale socket file first; remembers the file bound."""
        claim_path(path)  # raises ConflictError; nothing changed yet
        try:
            server = await asyncio.get_running_loop().create_unix_server(accept, path, backlog=512)
        except OSError as exc:
            raise ConflictError(f"listen_path: cannot listen on {path}: {exc.strerror or exc}") from None
        listener.socket_id = socket_id(path)
        return server

    async def _bind(self, listener: _Listener, quiet: bool = False) -> None:
        try:
            listener.server = await self._open_server(listener)
            listener.error = None
            log.info("route %s listening on %s", listener.route.name, listener.route.listen_address)
        except ConflictError as exc:
            if not quiet or listener.error != str(exc):
                log.error("route %s: %s (retrying)", listener.route.name, exc)
            listener.error = str(exc)

    def _unbind(self, listener: _Listener) -> None:
        """Stop listening and drop every connection of the route."""
        self._stop_listening(listener)
        for conn in list(listener.counters.connections):
            conn.reset()

    def _stop_listening(self, listener: _Listener) -> None:
        """Close the listening socket (open connections carry on); a unix listener's socket file goes too, if it
        is still the one it bound."""
        if listener.server is not None:
            listener.server.close()
            listener.server = None
        if listener.route.listen_path is not None:
            release_path(listener.route.listen_path, listener.socket_id)
        listener.socket_id = None

    def _persist(self) -> None:
        save_state(self.path, LinkState(tuple(self._states.values()),
                                        tuple(li.route for li in self.listeners.values())))
