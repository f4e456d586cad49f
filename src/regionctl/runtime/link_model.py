"""The link emulator's vocabulary and pure decisions: routes, directions, delivery times and the persisted state.

The link joins *sites*: the regions plus the global plane (``GLOBAL_PLANE``, "global"). Directions between two
regions carry the data path (replication, cross-region writes); directions with "global" at one end carry the
control path (the global plane to each region's agent and PostgreSQL), so the control path can be cut too.

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
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from regionctl.errors import ConfigError, InputError, NotFoundError
from regionctl.runtime.process import GLOBAL_PLANE

log = logging.getLogger(__name__)

STATE_VERSION = 1
ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,99}$")
HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
MAX_DELAY_MS = 600_000.0
MAX_SOCKET_PATH_BYTES = 100  # AF_UNIX paths hold 107 bytes; keep room to spare
ARROW = "->"
BOTH_ARROW = "<->"
BOTH = "both"  # every direction between the regions; for heal, every direction of the link

Pair = tuple[str, str]  # (src site, dst site); a site is a region or GLOBAL_PLANE


@dataclass(frozen=True)
class Route:
    """A listener in the source site that forwards to a target in the destination site.

    Bytes from the client to the target travel ``src->dst``; the answers travel ``dst->src``. Either end may be
    the global plane (a control path route); the other is then a region.

    Each end is TCP (``listen_host``/``listen_port``, ``target_host``/``target_port``) or a unix-domain socket
    (``listen_path``, ``target_path``: absolute paths). When a path is set, that end's host and port are not
    used; ``check_route`` returns them as "" and 0, so a route has one spelling.
    """

    name: str
    src_region: str
    dst_region: str
    listen_host: str = ""
    listen_port: int = 0
    target_host: str = ""
    target_port: int = 0
    listen_path: str | None = None
    target_path: str | None = None

    @property
    def forward(self) -> Pair:
        return (self.src_region, self.dst_region)

    @property
    def backward(self) -> Pair:
        return (self.dst_region, self.src_region)

    @property
    def listen_address(self) -> str:
        """Where it listens, for messages and tables: the socket path, or host:port."""
        return self.listen_path if self.listen_path is not None else f"{self.listen_host}:{self.listen_port}"

    @property
    def target_address(self) -> str:
        """What it forwards to, for messages and tables: the socket path, or host:port."""
        return self.target_path if self.target_path is not None else f"{self.target_host}:{self.target_port}"


@dataclass(frozen=True)
class DirectionState:
    """How one direction between two sites behaves now."""

    src: str
    dst: str
    latency_ms: float
    jitter_ms: float
    partitioned: bool

    @property
    def name(self) -> str:
        return f"{self.src}{ARROW}{self.dst}"

    @property
    def control_path(self) -> bool:
        """Whether the global plane is at one end (the control path), rather than two regions (the data path)."""
        return GLOBAL_PLANE in (self.src, self.dst)


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
    """Directions and routes now; ``isolated`` (derived from the directions, and in the JSON) lists the regions
    every one of whose directions is partitioned: cut off from the other region and from the global plane."""

    directions: tuple[DirectionState, ...]
    routes: tuple[RouteStatus, ...]
    isolated: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "isolated", isolated_regions(self.directions))

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


# --- sites and directions ----------------------------------------------------------------------------------


def sites(regions: Sequence[str]) -> tuple[str, ...]:
    """What the link joins: the regions, then the global plane."""
    return (*regions, GLOBAL_PLANE)


def check_regions(regions: Sequence[str]) -> tuple[str, ...]:
    """At least two distinct regions, none named like the global plane; else InputError naming ``regions``."""
    if len(regions) < 2 or len(set(regions)) != len(regions):
        raise InputError(f"regions: need at least two distinct regions, not {list(regions)!r}")
    if GLOBAL_PLANE in regions:
        raise InputError(f"regions: {GLOBAL_PLANE!r} is the global plane's site, not a region name")
    return tuple(regions)


def all_pairs(names: Sequence[str]) -> tuple[Pair, ...]:
    return tuple((a, b) for a in names for b in names if a != b)


def link_pairs(regions: Sequence[str]) -> tuple[Pair, ...]:
    """Every direction of the link: between the regions first (as before sites), then each region's control path
    (region->global, global->region)."""
    control = tuple(p for r in regions for p in ((r, GLOBAL_PLANE), (GLOBAL_PLANE, r)))
    return all_pairs(regions) + control


def parse_direction(text: str, regions: Sequence[str]) -> tuple[Pair, ...]:
    """The directions a name means: ``a->b`` one, ``a<->b`` both between a and b (either may be ``global``),
    ``both`` every direction between the regions (never the control path).

    Raises InputError naming the field ``direction`` and the unknown site.
    """
    value = text.strip()
    if value == BOTH:
        return all_pairs(regions)
    arrow = BOTH_ARROW if BOTH_ARROW in value else ARROW
    parts = value.split(arrow)
    if len(parts) != 2 or not all(parts):
        raise InputError(
            f"direction: {text!r} is not a direction; use SRC->DST (e.g. {_example(regions)}), SRC<->DST or both"
        )
    src, dst = (p.strip() for p in parts)
    known = sites(regions)
    for site in (src, dst):
        if site not in known:
            raise InputError(f"direction: unknown region {site!r}; the link joins {', '.join(known)}")
    if src == dst:
        raise InputError(f"direction: {text!r} goes from a site to itself; use two different sites")
    return ((src, dst), (dst, src)) if arrow == BOTH_ARROW else ((src, dst),)


def heal_directions(text: str, regions: Sequence[str]) -> tuple[Pair, ...]:
    """The directions a heal ends: as ``parse_direction``, except that ``both`` (heal's default) ends every
    partition of the link, the control path's too, so a plain heal also ends an isolation."""
    return link_pairs(regions) if text.strip() == BOTH else parse_direction(text, regions)


def check_isolate_region(region: str, regions: Sequence[str]) -> str:
    """The region to isolate, if it is one of ``regions``; else InputError naming the field ``region``."""
    if region == GLOBAL_PLANE:
        raise InputError(
            f"region: {region!r} is the global plane, not a region; isolate one of {', '.join(regions)}"
        )
    if region not in regions:
        raise InputError(f"region: unknown region {region!r}; the link joins {', '.join(regions)}")
    return region


def isolation_pairs(region: str, regions: Sequence[str]) -> tuple[Pair, ...]:
    """Every direction with ``region`` at either end: to and from the other regions and the global plane."""
    check_isolate_region(region, regions)
    return tuple(p for p in link_pairs(regions) if region in p)


def isolated_regions(directions: Iterable[DirectionState]) -> tuple[str, ...]:
    """The regions (not the global plane) that have directions and every one of them partitioned."""
    touching: dict[str, list[bool]] = {}
    for state in directions:
        for site in (state.src, state.dst):
            if site != GLOBAL_PLANE:
                touching.setdefault(site, []).append(state.partitioned)
    return tuple(region for region, cut in touching.items() if all(cut))


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


def initial_directions(
    regions: Sequence[str], latency_ms: float, jitter_ms: float,
    control_latency_ms: float = 0.0, control_jitter_ms: float = 0.0,
) -> tuple[DirectionState, ...]:
    """Every direction of the link, none partitioned: region<->region at ``latency_ms``/``jitter_ms``, the
    control path (global plane <-> each region) at ``control_latency_ms``/``control_jitter_ms``."""
    out = []
    for a, b in link_pairs(regions):
        control = GLOBAL_PLANE in (a, b)
        out.append(DirectionState(a, b, control_latency_ms if control else latency_ms,
                                  control_jitter_ms if control else jitter_ms, False))
    return tuple(out)


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
    """The route if every field is valid, with the host and port of a unix-socket end as "" and 0; else
    InputError naming the field."""
    if not ROUTE_NAME.match(route.name):
        raise InputError(
            f"name: {route.name!r} must be 1-100 lower-case letters, digits and . _ / -, starting with a letter"
            " or digit"
        )
    known = sites(regions)
    for name, site in (("src_region", route.src_region), ("dst_region", route.dst_region)):
        if site not in known:
            raise InputError(f"{name}: unknown region {site!r}; the link joins {', '.join(known)}")
    if route.src_region == route.dst_region:
        raise InputError(f"dst_region: {route.dst_region!r} is the source site; a route crosses two sites")
    ends = (("listen", route.listen_host, route.listen_port, route.listen_path),
            ("target", route.target_host, route.target_port, route.target_path))
    for end, host, port, path in ends:
        if path is not None:
            check_socket_path(f"{end}_path", path)
            continue
        if not _valid_host(host):
            raise InputError(f"{end}_host: {host!r} is not an IP address or host name (or give {end}_path)")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InputError(f"{end}_port: {port!r} is not a TCP port (1-65535)")
    if route.listen_path is not None and route.target_path is not None and (
        os.path.normpath(route.listen_path) == os.path.normpath(route.target_path)
    ):
        raise InputError(f"target_path: {route.target_path!r} is the route's own listen_path")
    if route.listen_path is not None:
        route = replace(route, listen_host="", listen_port=0)
    if route.target_path is not None:
        route = replace(route, target_host="", target_port=0)
    return route


def check_socket_path(field: str, path: object) -> str:
    """An absolute unix socket path of at most MAX_SOCKET_PATH_BYTES bytes, without NUL; else InputError."""
    if not isinstance(path, str):
        raise InputError(f"{field}: must be an absolute path to a unix socket, not {path!r}")
    if "\0" in path:
        raise InputError(f"{field}: {path!r} holds a NUL byte; a unix socket path cannot")
    if not os.path.isabs(path):
        raise InputError(f"{field}: {path!r} is not an absolute path (it must start with /)")
    try:
        size = len(os.fsencode(path))
    except UnicodeError:
        raise InputError(f"{field}: {path!r} cannot be encoded as a file name") from None
    if size > MAX_SOCKET_PATH_BYTES:
        raise InputError(f"{field}: {path!r} is {size} bytes; a unix socket path may have at most "
                         f"{MAX_SOCKET_PATH_BYTES}")
    return path


def _valid_host(host: object) -> bool:
    if not isinstance(host, str) or not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(HOST_NAME.match(host))
    return True


def same_listener(a: Route, b: Route) -> bool:
    """Whether two routes would listen on the same socket: the same unix path, or the same host and port."""
    if a.listen_path is not None or b.listen_path is not None:
        return (a.listen_path is not None and b.listen_path is not None
                and os.path.normpath(a.listen_path) == os.path.normpath(b.listen_path))
    return (a.listen_host, a.listen_port) == (b.listen_host, b.listen_port)


# --- persistence -------------------------------------------------------------------------------------------


def state_to_json(state: LinkState) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "directions": [asdict(d) for d in state.directions],
        "routes": [asdict(r) for r in state.routes],
    }


def state_from_json(data: Mapping[str, Any], regions: Sequence[str], defaults: LinkState) -> LinkState:
    """The persisted state merged onto ``defaults`` (the directions of ``regions``' sites); entries naming other
    regions are dropped with a warning (they cannot work in this deployment). A file written before the global
    plane was a site (region pairs only) loads too: its control path directions keep their defaults."""
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
            log.warning("ignoring persisted direction %s: not between %s", state.name, ", ".join(sites(regions)))
    routes = []
    for raw in data.get("routes", []):
        route = route_from_json(raw)
        try:
            routes.append(check_route(route, regions))
        except InputError as exc:
            log.warning("ignoring persisted route %r: %s", route.name, exc)
    return LinkState(directions=tuple(known[(d.src, d.dst)] for d in defaults.directions), routes=tuple(routes))


def route_from_json(raw: Mapping[str, Any]) -> Route:
    """A route from its JSON; fields with a default (the unix paths, absent from older files and answers) may be
    missing, the others raise KeyError."""
    return Route(**{f.name: raw[f.name] for f in fields(Route) if f.name in raw or f.default is MISSING})


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
