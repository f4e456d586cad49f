"""Unix-socket routes through a real link engine, as etcd's peers use them: site A's member directory holds a
socket named after B's member, a link listener forwarding (direction A->B) to B's real socket in B's directory.

The target records what reaches it and echoes it, so a test can tell "held on the way there" from "held on the
way back". Each scenario runs on asyncio's loop and on uvloop (what the emulator process runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvloop

from regionctl.errors import ConflictError
from regionctl.runtime import link_engine
from regionctl.runtime.link_engine import LinkEngine
from regionctl.runtime.link_model import Route
from regionctl.runtime.topology import DirectNetwork

pytestmark = pytest.mark.integration

EAST, WEST = "us-east-1", "us-west-2"
REGIONS = (EAST, WEST)
EAST_HOST = "127.0.1.1"
QUIET_S = 0.3  # how long "nothing arrives" is watched
PEER = "etcd-us-west-2:2380"  # what etcd in us-east-1 dials for its us-west-2 peer (relative to its directory)


@dataclass
class Sites:
    """Two member directories under a short root (socket paths are limited to 100 bytes)."""

    root: Path

    @property
    def a(self) -> Path:
        return self.root / "a"

    @property
    def b(self) -> Path:
        return self.root / "b"


@pytest.fixture
def sites() -> Iterator[Sites]:
    root = Path(tempfile.mkdtemp(prefix="lnk-", dir="/tmp"))
    here = Sites(root)
    here.a.mkdir()
    here.b.mkdir()
    yield here
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Target:
    """An echo server on a unix socket that records what reaches it."""

    received: bytearray = field(default_factory=bytearray)
    server: asyncio.Server | None = None

    async def serve_unix(self, path: Path) -> Target:
        self.server = await asyncio.start_unix_server(self._handle, str(path))
        return self

    async def serve_tcp(self, host: str) -> int:
        self.server = await asyncio.start_server(self._handle, host, 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                self.received.extend(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def run(scenario: Callable[[], Awaitable[None]], loop: str) -> None:
    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(scenario())  # type: ignore[arg-type]


async def quiet(reader: asyncio.StreamReader) -> bool:
    """Whether nothing arrives on ``reader`` for QUIET_S."""
    try:
        await asyncio.wait_for(reader.read(1), QUIET_S)
    except TimeoutError:
        return True
    return False


def peer_route(sites: Sites) -> Route:
    return Route(f"{EAST}/{WEST}/etcd/{WEST}", EAST, WEST, listen_path=str(sites.a / PEER),
                 target_path=str(sites.b / PEER))


LOOPS = pytest.mark.parametrize("loop", ["asyncio", "uvloop"])


@LOOPS
def test_a_unix_route_delivers_between_two_sockets_and_a_partition_holds_each_direction(
    tmp_path: Path, sites: Sites, loop: str
) -> None:
    async def scenario() -> None:
        target = await Target().serve_unix(sites.b / PEER)
        engine = LinkEngine(tmp_path, REGIONS, latency_ms=2.0, jitter_ms=1.0)
        await engine.start()
        route = peer_route(sites)
        await engine.ensure_route(route)
        reader, writer = await asyncio.open_unix_connection(str(sites.a / PEER))
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"

        engine.partition(f"{EAST}->{WEST}", reset=False)  # the way there
        writer.write(b"held")
        assert await quiet(reader) and bytes(target.received) == b"ping"
        assert engine.status().route(route.name).held_src_to_dst == 4
        engine.heal(f"{EAST}->{WEST}")
        assert await reader.readexactly(4) == b"held"

        engine.partition(f"{WEST}->{EAST}", reset=False)  # the way back: the target hears, the client does not
        writer.write(b"back")
        assert await quiet(reader) and bytes(target.received).endswith(b"back")
        assert engine.status().route(route.name).held_dst_to_src == 4
        engine.heal(f"{WEST}->{EAST}")
        assert await reader.readexactly(4) == b"back"

        status = engine.status().route(route.name)
        assert (status.bytes_src_to_dst, status.bytes_dst_to_src) == (12, 12)
        assert status.connections_open == 1 and status.connections_total == 1
        writer.close()
        await engine.close()
        target.close()

    run(scenario, loop)


@LOOPS
def test_isolating_the_source_region_holds_a_unix_route_until_heal_and_a_reset_drops_it(
    tmp_path: Path, sites: Sites, loop: str
) -> None:
    async def scenario() -> None:
        target = await Target().serve_unix(sites.b / PEER)
        engine = LinkEngine(tmp_path, REGIONS, latency_ms=0.0, jitter_ms=0.0)
        await engine.start()
        await engine.ensure_route(peer_route(sites))
        reader, writer = await asyncio.open_unix_connection(str(sites.a / PEER))
        engine.isolate(EAST)
        writer.write(b"cut off")
        fresh_reader, fresh_writer = await asyncio.open_unix_connection(str(sites.a / PEER))  # still accepted
        fresh_writer.write(b"new")
        assert await quiet(reader) and await quiet(fresh_reader) and target.received == b""
        engine.heal("both")
        assert await reader.readexactly(7) == b"cut off"
        assert await fresh_reader.readexactly(3) == b"new"

        engine.isolate(EAST, reset=True)  # drops both connections at once
        for dropped in (reader, fresh_reader):
            with contextlib.suppress(ConnectionResetError):  # the end of the stream, or a reset
                assert await asyncio.wait_for(dropped.read(), 2.0) == b""
        assert engine.status().routes[0].connections_open == 0
        engine.heal("both")
        reader, writer = await asyncio.open_unix_connection(str(sites.a / PEER))
        writer.write(b"again")
        assert await reader.readexactly(5) == b"again"
        writer.close()
        await engine.close()
        target.close()

    run(scenario, loop)


@LOOPS
def test_a_tcp_listener_forwards_to_a_unix_target_and_a_unix_listener_to_a_tcp_target(
    tmp_path: Path, sites: Sites, loop: str
) -> None:
    async def scenario() -> None:
        unix_target = await Target().serve_unix(sites.b / "target.sock")
        tcp_target = Target()
        tcp_port = await tcp_target.serve_tcp("127.0.2.1")
        with socket.socket() as probe:
            probe.bind((EAST_HOST, 0))
            listen_port = probe.getsockname()[1]
        engine = LinkEngine(tmp_path, REGIONS, latency_ms=1.0, jitter_ms=0.0)
        await engine.start()
        await engine.ensure_route(Route("tcp-to-unix", EAST, WEST, EAST_HOST, listen_port,
                                        target_path=str(sites.b / "target.sock")))
        await engine.ensure_route(Route("unix-to-tcp", EAST, WEST, listen_path=str(sites.a / "pg.sock"),
                                        target_host="127.0.2.1", target_port=tcp_port))
        tcp_reader, tcp_writer = await asyncio.open_connection(EAST_HOST, listen_port)
        unix_reader, unix_writer = await asyncio.open_unix_connection(str(sites.a / "pg.sock"))
        tcp_writer.write(b"over tcp")
        unix_writer.write(b"over unix")
        assert await tcp_reader.readexactly(8) == b"over tcp" and unix_target.received == b"over tcp"
        assert await unix_reader.readexactly(9) == b"over unix" and tcp_target.received == b"over unix"

        engine.partition(f"{EAST}->{WEST}", reset=False)
        tcp_writer.write(b"held")
        assert await quiet(tcp_reader) and unix_target.received == b"over tcp"
        engine.heal("both")
        assert await tcp_reader.readexactly(4) == b"held"
        for w in (tcp_writer, unix_writer):
            w.close()
        await engine.close()
        unix_target.close()
        tcp_target.close()

    run(scenario, loop)


def test_a_listener_removes_a_stale_socket_but_never_a_live_one_or_another_file(tmp_path: Path, sites: Sites) -> None:
    async def scenario() -> None:
        engine = LinkEngine(tmp_path, REGIONS, latency_ms=0.0, jitter_ms=0.0)
        await engine.start()
        route = peer_route(sites)
        listen = sites.a / PEER
        listen.write_text("not a socket")
        with pytest.raises(ConflictError, match="^listen_path: .*not a socket"):
            await engine.ensure_route(route)
        assert listen.read_text() == "not a socket" and engine.status().routes == ()
        listen.unlink()

        squatter = await asyncio.start_unix_server(lambda r, w: w.close(), str(listen))
        with pytest.raises(ConflictError, match="^listen_path: .*in use"):
            await engine.ensure_route(route)
        assert listen.is_socket()
        squatter.close()
        await squatter.wait_closed()  # asyncio leaves its socket file behind: a stale socket now

        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(sites.a / "other.sock"))  # bound, never listening: what a crashed process leaves
        stale.close()
        await engine.ensure_route(route)
        await engine.ensure_route(Route("other", EAST, WEST, listen_path=str(sites.a / "other.sock"),
                                        target_path=str(sites.b / "other.sock")))
        assert all(s.listening for s in engine.status().routes)
        with pytest.raises(ConflictError, match="^listen_path: .* is already route 'other'"):
            await engine.ensure_route(Route("third", EAST, WEST, listen_path=str(sites.a / "." / "other.sock"),
                                            target_path=str(sites.b / PEER)))
        assert await engine.remove_route("other") and not (sites.a / "other.sock").exists()
        await engine.close()
        assert not listen.exists()  # closing deletes the socket files it made

    asyncio.run(scenario())


def test_a_persisted_unix_route_comes_back_and_listens_again_when_its_file_is_wiped(
    tmp_path: Path, sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_engine, "REBIND_INTERVAL_S", 0.1)

    async def scenario() -> None:
        target = await Target().serve_unix(sites.b / PEER)
        route = peer_route(sites)
        first = LinkEngine(tmp_path, REGIONS, latency_ms=0.0, jitter_ms=0.0)
        await first.ensure_route(route)
        for listener in first.listeners.values():
            if listener.server is not None:
                listener.server.close()  # as a crash would: the socket file stays behind
        assert (sites.a / PEER).is_socket()

        again = LinkEngine(tmp_path, REGIONS, latency_ms=0.0, jitter_ms=0.0)
        await again.start()
        assert again.status().route(route.name).listening
        reader, writer = await asyncio.open_unix_connection(str(sites.a / PEER))
        writer.write(b"one")
        assert await reader.readexactly(3) == b"one"

        shutil.rmtree(sites.a)  # the member directory is wiped and made again
        sites.a.mkdir()
        for _ in range(50):
            if (sites.a / PEER).is_socket():
                break
            await asyncio.sleep(0.05)
        fresh_reader, fresh_writer = await asyncio.open_unix_connection(str(sites.a / PEER))
        fresh_writer.write(b"two")
        assert await fresh_reader.readexactly(3) == b"two"
        writer.write(b"old")  # the open connection carried on
        assert await reader.readexactly(3) == b"old"
        for w in (writer, fresh_writer):
            w.close()
        await again.close()
        assert not (sites.a / PEER).exists()
        target.close()

    asyncio.run(scenario())


@LOOPS
def test_changing_only_the_target_replaces_the_route_on_the_same_listener(
    tmp_path: Path, sites: Sites, loop: str
) -> None:
    async def scenario() -> None:
        old_target = await Target().serve_unix(sites.b / "old.sock")
        new_target = await Target().serve_unix(sites.b / "new.sock")
        engine = LinkEngine(tmp_path, REGIONS, latency_ms=0.0, jitter_ms=0.0)
        await engine.start()
        route = Route("r", EAST, WEST, listen_path=str(sites.a / PEER), target_path=str(sites.b / "old.sock"))
        await engine.ensure_route(route)
        moved = Route("r", EAST, WEST, listen_path=str(sites.a / PEER), target_path=str(sites.b / "new.sock"))
        assert await engine.ensure_route(moved) == moved
        reader, writer = await asyncio.open_unix_connection(str(sites.a / PEER))
        writer.write(b"moved")
        assert await reader.readexactly(5) == b"moved"
        assert new_target.received == b"moved" and old_target.received == b""
        writer.close()

        with socket.socket() as probe:  # the same for a TCP listener
            probe.bind((EAST_HOST, 0))
            port = probe.getsockname()[1]
        tcp = Route("t", EAST, WEST, EAST_HOST, port, target_path=str(sites.b / "old.sock"))
        await engine.ensure_route(tcp)
        retargeted = Route("t", EAST, WEST, EAST_HOST, port, target_path=str(sites.b / "new.sock"))
        assert await engine.ensure_route(retargeted) == retargeted
        assert engine.status().route("t").listening

        await engine.close()
        old_target.close()
        new_target.close()

    run(scenario, loop)


def test_without_the_link_a_peer_socket_is_a_symbolic_link_to_the_other_sites_socket(sites: Sites) -> None:
    async def scenario() -> None:
        target = await Target().serve_unix(sites.b / PEER)
        network = DirectNetwork()
        listen, real = str(sites.a / PEER), str(sites.b / PEER)
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(listen)  # a socket left by an earlier link emulator
        stale.close()
        assert network.reach_path(EAST, WEST, f"etcd/{WEST}", listen, real) == listen
        assert network.reach_path(EAST, WEST, f"etcd/{WEST}", listen, real) == listen  # again: unchanged
        assert (sites.a / PEER).is_symlink()
        reader, writer = await asyncio.open_unix_connection(listen)
        writer.write(b"direct")
        assert await reader.readexactly(6) == b"direct" and target.received == b"direct"
        writer.close()
        (sites.a / "file").write_text("mine")
        with pytest.raises(ConflictError, match="^listen_path"):
            network.reach_path(EAST, WEST, "other", str(sites.a / "file"), real)
        target.close()

    asyncio.run(scenario())
