"""The link emulator's control side: routes (listeners), direction states, counters and their persistence.

Every mutation validates first, then changes the live state, then writes the state file, so a request either
applies whole or not at all, and a restarted emulator comes back as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
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

log = logging.getLogger(__name__)

STATE_FILE = "link.json"
REBIND_INTERVAL_S = 1.0


class _Listener:
    """One route's listening socket, its connections and counters."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.server: asyncio.Server | None = None
        self.error: str | None = None
        self.counters = RouteCounters()


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
            await self._unbind(listener)

    async def _rebind_loop(self) -> None:
        while True:
            await asyncio.sleep(REBIND_INTERVAL_S)
            for listener in list(self.listeners.values()):
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
        """Add ``route``; the same route again changes nothing; a changed one replaces it (its connections end)."""
        check_route(route, self.regions)
        existing = self.listeners.get(route.name)
        if existing is not None and existing.route == route:
            if existing.server is None:
                await self._bind(existing)
            if existing.server is None:
                raise ConflictError(f"{existing.error}; the route is kept and retried every {REBIND_INTERVAL_S:g} s")
            return route
        for other in self.listeners.values():
            if other.route.name != route.name and same_listener(other.route, route):
                raise ConflictError(
                    f"listen_port: {route.listen_host}:{route.listen_port} is already route {other.route.name!r}"
                )
        fresh = _Listener(route)
        server = await self._open_server(fresh)  # raises ConflictError; nothing changed yet
        if existing is not None:
            await self._unbind(existing)
            log.info("route %s replaced", route.name)
        fresh.server = server
        self.listeners[route.name] = fresh
        self._persist()
        log.info("route %s: %s:%s (%s) -> %s:%s (%s)", route.name, route.listen_host, route.listen_port,
                 route.src_region, route.target_host, route.target_port, route.dst_region)
        return route

    async def remove_route(self, name: str) -> bool:
        listener = self.listeners.pop(name, None)
        if listener is None:
            return False
        await self._unbind(listener)
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

        try:
            server = await loop.create_server(accept, route.listen_host, route.listen_port, reuse_address=True,
                                              backlog=512)
        except OSError as exc:
            raise ConflictError(f"listen_port: cannot listen on {route.listen_host}:{route.listen_port}: "
                                f"{exc.strerror or exc}") from None
        return server

    async def _bind(self, listener: _Listener, quiet: bool = False) -> None:
        try:
            listener.server = await self._open_server(listener)
            listener.error = None
            log.info("route %s listening on %s:%s", listener.route.name, listener.route.listen_host,
                     listener.route.listen_port)
        except ConflictError as exc:
            if not quiet or listener.error != str(exc):
                log.error("route %s: %s (retrying)", listener.route.name, exc)
            listener.error = str(exc)

    async def _unbind(self, listener: _Listener) -> None:
        if listener.server is not None:
            listener.server.close()
            listener.server = None
        for conn in list(listener.counters.connections):
            conn.reset()

    def _persist(self) -> None:
        save_state(self.path, LinkState(tuple(self._states.values()),
                                        tuple(li.route for li in self.listeners.values())))
