"""The link emulator's vocabulary and pure decisions: routes, directions, delivery times and the persisted state.

Nothing here does I/O except ``load_state``/``save_state`` (one JSON file), so the rules that matter (which
directions a name means, when a chunk is due, what a restarted emulator comes back with) are unit-tested alone.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from regionctl.errors import ConfigError, InputError, NotFoundError

log = logging.getLogger(__name__)

STATE_VERSION = 1
ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,99}$")
HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
MAX_DELAY_MS = 600_000.0
ARROW = "->"
BOTH_ARROW = "<->"

Pair = tuple[str, str]  # (src region, dst region)


@dataclass(frozen=True)
class Route:
    """A listener in the source region that forwards to a target in the destination region.

    Bytes from the client to the target travel ``src->dst``; the answers travel ``dst->src``.
    """

    name: str
    src_region: str
    dst_region: str
    listen_host: str
    listen_port: int
    target_host: str
    target_port: int

    @property
    def forward(self) -> Pair:
        return (self.src_region, self.dst_region)

    @property
    def backward(self) -> Pair:
        return (self.dst_region, self.src_region)


@dataclass(frozen=True)
class DirectionState:
    """How one direction between two regions behaves now."""

    src: str
    dst: str
    latency_ms: float
    jitter_ms: float
    partitioned: bool

    @property
    def name(self) -> str:
        return f"{self.src}{ARROW}{self.dst}"


@dataclass(frozen=True)
class RouteStatus:
    """A route with its counters; "held" is what a partitioned direction keeps back (queued while partitioned)."""

    route: Route
    listening: bool
    error: str | None
    connections_open: int
    connections_total: int
    connect_errors: int
    bytes_src_to_dst: int
    bytes_dst_to_src: int
    queued_src_to_dst: int
    queued_dst_to_src: int
    held_src_to_dst: int
    held_dst_to_src: int


@dataclass(frozen=True)
class LinkStatus:
    directions: tuple[DirectionState, ...]
    routes: tuple[RouteStatus, ...]

    def direction(self, src: str, dst: str) -> DirectionState:
        for state in self.directions:
            if (state.src, state.dst) == (src, dst):
                return state
        raise NotFoundError(f"direction {src}{ARROW}{dst} is not known to the link emulator")

    def route(self, name: str) -> RouteStatus:
        for status in self.routes:
            if status.route.name == name:
                return status
        raise NotFoundError(f"route {name!r} is not known to the link emulator")


@dataclass(frozen=True)
class LinkState:
    """What the emulator persists: direction settings and routes. Counters are not state."""

    directions: tuple[DirectionState, ...]
    routes: tuple[Route, ...]


# --- directions --------------------------------------------------------------------------------------------


def all_pairs(regions: Sequence[str]) -> tuple[Pair, ...]:
    return tuple((a, b) for a in regions for b in regions if a != b)


def parse_direction(text: str, regions: Sequence[str]) -> tuple[Pair, ...]:
    """The directions a name means: ``a->b`` one, ``a<->b`` both between a and b, ``both`` every direction.

    Raises InputError naming the field ``direction`` and the unknown region.
    """
    value = text.strip()
    if value == "both":
        return all_pairs(regions)
    arrow = BOTH_ARROW if BOTH_ARROW in value else ARROW
    parts = value.split(arrow)
    if len(parts) != 2 or not all(parts):
        raise InputError(
            f"direction: {text!r} is not a direction; use SRC->DST (e.g. {_example(regions)}), SRC<->DST or both"
        )
    src, dst = (p.strip() for p in parts)
    for region in (src, dst):
        if region not in regions:
            raise InputError(f"direction: unknown region {region!r}; the link joins {', '.join(regions)}")
    if src == dst:
        raise InputError(f"direction: {text!r} goes from a region to itself; use two different regions")
    return ((src, dst), (dst, src)) if arrow == BOTH_ARROW else ((src, dst),)


def _example(regions: Sequence[str]) -> str:
    return f"{regions[0]}{ARROW}{regions[1]}" if len(regions) >= 2 else "us-east-1->us-west-2"


def check_delay(field: str, value: float | None) -> float | None:
    """A latency or jitter in ms: finite, >= 0 and at most ten minutes."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InputError(f"{field}: must be a number of milliseconds, not {value!r}")
    if value < 0:
        raise InputError(f"{field}: must be >= 0, not {value}")
    if value > MAX_DELAY_MS:
        raise InputError(f"{field}: must be at most {MAX_DELAY_MS:.0f} ms, not {value}")
    return float(value)


def apply_settings(
    directions: Iterable[DirectionState], pairs: Iterable[Pair], latency_ms: float | None, jitter_ms: float | None
) -> tuple[DirectionState, ...]:
    """The directions after setting latency and/or jitter on ``pairs`` (unset values keep theirs)."""
    chosen = set(pairs)
    out = []
    for state in directions:
        if (state.src, state.dst) in chosen:
            state = replace(
                state,
                latency_ms=state.latency_ms if latency_ms is None else latency_ms,
                jitter_ms=state.jitter_ms if jitter_ms is None else jitter_ms,
            )
        out.append(state)
    return tuple(out)


def apply_partition(
    directions: Iterable[DirectionState], pairs: Iterable[Pair], partitioned: bool
) -> tuple[DirectionState, ...]:
    chosen = set(pairs)
    return tuple(replace(s, partitioned=partitioned) if (s.src, s.dst) in chosen else s for s in directions)


def initial_directions(regions: Sequence[str], latency_ms: float, jitter_ms: float) -> tuple[DirectionState, ...]:
    return tuple(DirectionState(a, b, latency_ms, jitter_ms, False) for a, b in all_pairs(regions))


# --- delivery scheduling -----------------------------------------------------------------------------------


def delivery_time(now: float, latency_s: float, jitter_s: float, last_due: float, rand: Callable[[], float]) -> float:
    """When a chunk read at ``now`` is due: now + latency + uniform(0, jitter), never before the previous one.

    Keeping due times monotonic per direction of a connection is what keeps a TCP stream in order even when
    jitter or a lowered latency would put a later chunk ahead of an earlier one.
    """
    due = now + latency_s + (jitter_s * rand() if jitter_s > 0 else 0.0)
    return due if due > last_due else last_due


# --- routes ------------------------------------------------------------------------------------------------


def check_route(route: Route, regions: Sequence[str]) -> Route:
    """The route if every field is valid; else InputError naming the field."""
    if not ROUTE_NAME.match(route.name):
        raise InputError(
            f"name: {route.name!r} must be 1-100 lower-case letters, digits and . _ / -, starting with a letter"
            " or digit"
        )
    for field, region in (("src_region", route.src_region), ("dst_region", route.dst_region)):
        if region not in regions:
            raise InputError(f"{field}: unknown region {region!r}; the link joins {', '.join(regions)}")
    if route.src_region == route.dst_region:
        raise InputError(f"dst_region: {route.dst_region!r} is the source region; a route crosses two regions")
    for field, host in (("listen_host", route.listen_host), ("target_host", route.target_host)):
        if not _valid_host(host):
            raise InputError(f"{field}: {host!r} is not an IP address or host name")
    for field, port in (("listen_port", route.listen_port), ("target_port", route.target_port)):
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InputError(f"{field}: {port!r} is not a TCP port (1-65535)")
    return route


def _valid_host(host: object) -> bool:
    if not isinstance(host, str) or not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(HOST_NAME.match(host))
    return True


def same_listener(a: Route, b: Route) -> bool:
    return (a.listen_host, a.listen_port) == (b.listen_host, b.listen_port)


# --- persistence -------------------------------------------------------------------------------------------


def state_to_json(state: LinkState) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "directions": [asdict(d) for d in state.directions],
        "routes": [asdict(r) for r in state.routes],
    }


def state_from_json(data: Mapping[str, Any], regions: Sequence[str], defaults: LinkState) -> LinkState:
    """The persisted state merged onto ``defaults`` (directions of ``regions``); entries naming other regions are
    dropped with a warning (they cannot work in this deployment)."""
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"version {data.get('version')!r} is not {STATE_VERSION}")
    known = {(d.src, d.dst): d for d in defaults.directions}
    for raw in data.get("directions", []):
        state = DirectionState(
            src=str(raw["src"]),
            dst=str(raw["dst"]),
            latency_ms=float(raw["latency_ms"]),
            jitter_ms=float(raw["jitter_ms"]),
            partitioned=bool(raw["partitioned"]),
        )
        if (state.src, state.dst) in known:
            known[(state.src, state.dst)] = state
        else:
            log.warning("ignoring persisted direction %s: not between %s", state.name, ", ".join(regions))
    routes = []
    for raw in data.get("routes", []):
        route = Route(**{f: raw[f] for f in Route.__dataclass_fields__})
        try:
            routes.append(check_route(route, regions))
        except InputError as exc:
            log.warning("ignoring persisted route %r: %s", route.name, exc)
    return LinkState(directions=tuple(known[(d.src, d.dst)] for d in defaults.directions), routes=tuple(routes))


def load_state(path: Path, regions: Sequence[str], defaults: LinkState) -> LinkState:
    """The state a restarted emulator comes back with; ``defaults`` when there is no file yet.

    A damaged file stops the emulator with ConfigError naming it, rather than silently forgetting its routes.
    """
    if not path.exists():
        return defaults
    try:
        return state_from_json(json.loads(path.read_text()), regions, defaults)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"link state file {path} is unreadable ({exc}); fix or remove it") from None


def save_state(path: Path, state: LinkState) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(state_to_json(state), fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
