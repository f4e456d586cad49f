"""The link emulator as a real process: bytes cross it late, are held by partitions, and survive a restart.

Layout: the emulator's control API on 127.0.0.1; route "east-west" listens in us-east-1 (127.0.1.1) and forwards
to an echo server in us-west-2 (127.0.2.1); route "west-east" the other way round. The echo servers record what
reaches them, so a test can tell "held on the way there" from "held on the way back".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from regionctl.config import load_settings
from regionctl.errors import ConflictError, ExternalError, InputError
from regionctl.runtime.link import CONTROL_PORT_KEY, LinkClient, Route
from regionctl.runtime.network import LinkNetwork
from regionctl.runtime.process import GLOBAL_PLANE
from regionctl.runtime.topology import GLOBAL_HOST, Topology

pytestmark = pytest.mark.integration

EAST, WEST = "us-east-1", "us-west-2"
EAST_HOST, WEST_HOST = "127.0.1.1", "127.0.2.1"
QUIET_S = 0.5  # how long "nothing arrives" is watched


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --- a target that echoes and records ----------------------------------------------------------------------


@dataclass
class EchoServer:
    host: str
    received: bytearray = field(default_factory=bytearray)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> EchoServer:
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    while data := self.request.recv(65536):
                        with outer.lock:
                            outer.received.extend(data)
                        self.request.sendall(data)
                except ConnectionResetError:
                    pass  # the reset tests cut connections on purpose

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def take(self) -> bytes:
        with self.lock:
            data = bytes(self.received)
            self.received.clear()
            return data


# --- the emulator process ------------------------------------------------------------------------------------


class Emulator:
    """``python -m regionctl.runtime.link serve`` as the supervisor would run it."""

    def __init__(self, state_dir: Path, control_port: int, latency_ms: float = 0.0) -> None:
        self.state_dir = state_dir
        self.control_port = control_port
        self.latency_ms = latency_ms
        self.url = f"http://127.0.0.1:{control_port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Emulator:
        argv = [sys.executable, "-m", "regionctl.runtime.link", "serve", "--state-dir", str(self.state_dir),
                "--control", f"127.0.0.1:{self.control_port}", "--regions", f"{EAST},{WEST}",
                "--latency-ms", str(self.latency_ms)]
        self.log = open(self.state_dir / "emulator.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        client = LinkClient(self.url)
        deadline = time.monotonic() + 20
        while not client.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"link emulator did not start: {(self.state_dir / 'emulator.log').read_text()}")
            time.sleep(0.05)
        client.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@dataclass
class Link:
    emulator: Emulator
    client: LinkClient
    east_west: Route  # client in us-east-1, target in us-west-2
    west_east: Route
    west_echo: EchoServer
    east_echo: EchoServer

    def connect(self, route: Route) -> socket.socket:
        sock = socket.create_connection((route.listen_host, route.listen_port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


@pytest.fixture(scope="session")
def link_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Link]:
    west_echo, east_echo = EchoServer(WEST_HOST).start(), EchoServer(EAST_HOST).start()
    emulator = Emulator(tmp_path_factory.mktemp("link"), free_port("127.0.0.1")).start()
    client = LinkClient(emulator.url)
    east_west = client.ensure_route(Route("east-west", EAST, WEST, EAST_HOST, free_port(EAST_HOST),
                                          WEST_HOST, west_echo.port))
    west_east = client.ensure_route(Route("west-east", WEST, EAST, WEST_HOST, free_port(WEST_HOST),
                                          EAST_HOST, east_echo.port))
    yield Link(emulator, client, east_west, west_east, west_echo, east_echo)
    client.close()
    emulator.stop()
    west_echo.stop()
    east_echo.stop()


@pytest.fixture
def link(link_session: Link) -> Link:
    """The shared emulator, healed and without added delay, echo records empty."""
    link_session.client.heal("both")
    link_session.client.set("both", latency_ms=0, jitter_ms=0)
    link_session.west_echo.take()
    link_session.east_echo.take()
    return link_session


def recv_exactly(sock: socket.socket, n: int, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(min(1 << 20, n - len(out)))
        if not chunk:
            raise AssertionError(f"connection closed after {len(out)} of {n} bytes")
        out.extend(chunk)
    return bytes(out)


def assert_quiet(sock: socket.socket) -> None:
    """Nothing arrives for QUIET_S (held bytes are not delivered, and the connection stays open)."""
    sock.settimeout(QUIET_S)
    with pytest.raises(TimeoutError):
        data = sock.recv(1)
        raise AssertionError(f"received {data!r} through a partition")


def round_trip_ms(sock: socket.socket, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        sock.sendall(b"ping")
        recv_exactly(sock, 4)
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


# --- data path ------------------------------------------------------------------------------------------------


def test_bytes_cross_the_link_both_ways_intact(link: Link) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    before = link.client.status().route("east-west")
    with link.connect(link.east_west) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        echoed = recv_exactly(sock, len(payload))
        sender.join()
    assert echoed == payload
    after = link.client.status().route("east-west")
    assert after.bytes_src_to_dst - before.bytes_src_to_dst == len(payload)
    assert after.bytes_dst_to_src - before.bytes_dst_to_src == len(payload)
    assert after.connections_total == before.connections_total + 1


def test_latency_adds_to_the_round_trip(link: Link) -> None:
    with link.connect(link.east_west) as sock:
        base = round_trip_ms(sock)
        link.client.set("both", latency_ms=40)
        slow = round_trip_ms(sock)
        link.client.set(f"{WEST}->{EAST}", latency_ms=0)
        one_way = round_trip_ms(sock)
    print(f"round trip: {base:.1f} ms at 0 ms, {slow:.1f} ms at 40 ms each way, {one_way:.1f} ms at 40 ms one way")
    assert slow - base >= 1.5 * 40
    assert one_way - base >= 0.75 * 40


def test_a_partition_holds_bytes_and_heal_delivers_them_in_order(link: Link) -> None:
    messages = [b"first|", b"second|", b"third|" * 1000]
    with link.connect(link.east_west) as sock:
        link.client.partition("both")
        for message in messages:
            sock.sendall(message)
        assert_quiet(sock)
        assert link.west_echo.take() == b""
        held = link.client.status().route("east-west").held_src_to_dst
        assert held == sum(map(len, messages))
        link.client.heal("both")
        assert recv_exactly(sock, held) == b"".join(messages)


def test_new_connections_during_a_partition_connect_but_their_bytes_wait(link: Link) -> None:
    link.client.partition("both")
    with link.connect(link.east_west) as sock:
        sock.sendall(b"hello")
        assert_quiet(sock)
        link.client.heal("both")
        assert recv_exactly(sock, 5) == b"hello"


def test_a_one_way_partition_holds_only_that_direction(link: Link) -> None:
    link.client.partition(f"{WEST}->{EAST}")
    with link.connect(link.east_west) as forward, link.connect(link.west_east) as backward:
        # east-west: the request reaches us-west-2, the echo back to us-east-1 is held
        forward.sendall(b"request")
        deadline = time.monotonic() + 5
        received = b""
        while received != b"request" and time.monotonic() < deadline:
            received += link.west_echo.take()
            time.sleep(0.01)
        assert received == b"request"
        assert_quiet(forward)
        # west-east: the request from us-west-2 is held before it reaches us-east-1
        backward.sendall(b"other")
        assert_quiet(backward)
        assert link.east_echo.take() == b""
        status = link.client.status()
        assert status.direction(WEST, EAST).partitioned and not status.direction(EAST, WEST).partitioned
        assert status.route("east-west").held_dst_to_src == 7 and status.route("east-west").held_src_to_dst == 0
        assert status.route("west-east").held_src_to_dst == 5
        link.client.heal(f"{WEST}->{EAST}")
        assert recv_exactly(forward, 7) == b"request"
        assert recv_exactly(backward, 5) == b"other"


def test_a_reset_partition_drops_open_connections_at_once(link: Link) -> None:
    with link.connect(link.east_west) as sock, link.connect(link.west_east) as also:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        link.client.partition(f"{EAST}->{WEST}", reset=True)
        sock.settimeout(2)
        with pytest.raises(ConnectionResetError):  # a RST at once, not a hang and not a polite FIN
            sock.recv(1)
        assert link.client.status().route("east-west").connections_open == 0
        # the other route's answers cross east->west too: partitions are per direction, not per route
        also.settimeout(2)
        with pytest.raises(ConnectionResetError):
            also.recv(1)
        assert link.client.status().route("west-east").connections_open == 0
    # while partitioned, a new connection is accepted; its bytes wait for the heal
    with link.connect(link.east_west) as fresh:
        fresh.sendall(b"y")
        assert_quiet(fresh)


def test_half_close_reaches_the_target_and_the_rest_still_comes_back(link: Link) -> None:
    with link.connect(link.east_west) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert recv_exactly(sock, 10) == b"last words"
        sock.settimeout(5)
        assert sock.recv(1) == b""  # the echo server saw EOF and closed; its FIN came back through the link


def test_an_unreachable_target_resets_the_client_and_counts(link: Link) -> None:
    dead = Route("dead", EAST, WEST, EAST_HOST, free_port(EAST_HOST), WEST_HOST, free_port(WEST_HOST))
    link.client.ensure_route(dead)
    try:
        try:
            with link.connect(dead) as sock:
                sock.settimeout(5)
                assert sock.recv(1) == b""
        except ConnectionResetError:
            pass  # the RST may even beat connect() back on loopback
        assert link.client.status().route("dead").connect_errors == 1
    finally:
        link.client.remove_route("dead")


# --- the control path and isolation -------------------------------------------------------------------------


def exchange(sock: socket.socket, message: bytes) -> bytes:
    sock.sendall(message)
    return recv_exactly(sock, len(message))


def deployment_network(link: Link, data_dir: Path) -> LinkNetwork:
    """A deployment's view of the session emulator: its PortRegistry names the emulator's control port."""
    (data_dir / "state").mkdir(parents=True)
    (data_dir / "state" / "ports.json").write_text(
        json.dumps({CONTROL_PORT_KEY: {"host": "127.0.0.1", "port": link.emulator.control_port}}))
    return LinkNetwork(Topology(load_settings(data_dir=data_dir)))


def test_isolating_a_region_cuts_its_control_and_data_paths_but_not_the_other_regions_control_path(
    link: Link, tmp_path: Path
) -> None:
    network = deployment_network(link, tmp_path)
    control_east = network.reach(GLOBAL_PLANE, EAST, "agent", (EAST_HOST, link.east_echo.port))
    data_east = network.reach(WEST, EAST, "pg/orders", (EAST_HOST, link.east_echo.port))
    control_west = network.reach(GLOBAL_PLANE, WEST, "agent", (WEST_HOST, link.west_echo.port))
    assert control_east == (GLOBAL_HOST, network.topo.link_port(GLOBAL_PLANE, EAST, "agent"))
    assert control_west[0] == GLOBAL_HOST and data_east[0] == WEST_HOST  # a region's routes listen on its address
    routes = {r.route.name: r.route for r in link.client.status().routes}
    assert (routes["global/us-east-1/agent"].src_region, routes["global/us-east-1/agent"].dst_region) == (
        GLOBAL_PLANE, EAST)
    try:
        with (socket.create_connection(control_east, timeout=5) as to_east,
              socket.create_connection(data_east, timeout=5) as west_to_east,
              socket.create_connection(control_west, timeout=5) as to_west):
            for sock in (to_east, west_to_east, to_west):
                assert exchange(sock, b"before") == b"before"
            link.east_echo.take()

            isolated = link.client.isolate(EAST)
            assert isolated.isolated == (EAST,)
            to_east.sendall(b"agent?")
            west_to_east.sendall(b"wal")
            assert exchange(to_west, b"still here") == b"still here"  # the other region's control path works
            assert_quiet(to_east)
            assert_quiet(west_to_east)
            assert link.east_echo.take() == b""  # held on the way to us-east-1, not merely on the way back
            with socket.create_connection(control_east, timeout=5) as fresh:  # accepted; its bytes wait
                fresh.sendall(b"new")
                assert_quiet(fresh)
                status = link.client.status()
                assert status.route("global/us-east-1/agent").held_src_to_dst == len(b"agent?") + len(b"new")
                assert status.route("us-west-2/us-east-1/pg/orders").held_src_to_dst == len(b"wal")

                healed = link.client.heal()
                assert healed.isolated == () and not any(d.partitioned for d in healed.directions)
                assert recv_exactly(to_east, 6) == b"agent?"
                assert recv_exactly(west_to_east, 3) == b"wal"
                assert recv_exactly(fresh, 3) == b"new"
            for sock in (to_east, west_to_east, to_west):
                assert exchange(sock, b"after") == b"after"
    finally:
        for name in ("global/us-east-1/agent", "us-west-2/us-east-1/pg/orders", "global/us-west-2/agent"):
            link.client.remove_route(name)


def unix_echo(path: Path) -> socketserver.ThreadingUnixStreamServer:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                while data := self.request.recv(65536):
                    self.request.sendall(data)
            except ConnectionResetError:
                pass

    server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_etcd_style_peer_sockets_reach_every_other_site_and_isolation_cuts_only_that_sites(
    link: Link, tmp_path: Path
) -> None:
    # each site's member directory holds its own socket and, made by the link, one named after each other site
    root = Path(tempfile.mkdtemp(prefix="lnk-", dir="/tmp"))  # unix socket paths are limited to 100 bytes
    sites = (EAST, WEST, GLOBAL_PLANE)
    pairs = [(src, dst) for src in sites for dst in sites if src != dst]
    network = deployment_network(link, tmp_path)
    servers = []
    try:
        for site in sites:
            (root / site).mkdir()
            servers.append(unix_echo(root / site / f"etcd-{site}:2380"))
        for src, dst in pairs:
            peer = f"etcd-{dst}:2380"
            assert network.reach_path(src, dst, f"etcd/{dst}", str(root / src / peer),
                                      str(root / dst / peer)) == str(root / src / peer)
        routes = {r.route.name: r for r in link.client.status().routes if "/etcd/" in r.route.name}
        assert len(routes) == 6 and all(r.listening for r in routes.values())
        assert routes[f"{EAST}/{GLOBAL_PLANE}/etcd/{GLOBAL_PLANE}"].route.target_path == str(
            root / GLOBAL_PLANE / f"etcd-{GLOBAL_PLANE}:2380")

        def dial(src: str, dst: str) -> socket.socket:
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(5)
            sock.connect(str(root / src / f"etcd-{dst}:2380"))
            return sock

        with dial(EAST, WEST) as east_west, dial(WEST, GLOBAL_PLANE) as west_global, \
                dial(GLOBAL_PLANE, EAST) as global_east:
            for sock in (east_west, west_global, global_east):
                assert exchange(sock, b"vote?") == b"vote?"
            link.client.isolate(EAST)
            east_west.sendall(b"append")
            global_east.sendall(b"heartbeat")
            assert exchange(west_global, b"quorum") == b"quorum"  # the other two sites still reach each other
            assert_quiet(east_west)
            assert_quiet(global_east)
            assert link.client.status().route(f"{GLOBAL_PLANE}/{EAST}/etcd/{EAST}").held_src_to_dst == 9
            link.client.heal()
            assert recv_exactly(east_west, 6) == b"append"
            assert recv_exactly(global_east, 9) == b"heartbeat"
    finally:
        for src, dst in pairs:
            link.client.remove_route(f"{src}/{dst}/etcd/{dst}")
        for server in servers:
            server.shutdown()
            server.server_close()
        assert not any((root / src / f"etcd-{dst}:2380").exists() for src, dst in pairs)  # removed with the routes
        shutil.rmtree(root, ignore_errors=True)


# --- control API -------------------------------------------------------------------------------------------------


def test_routes_are_idempotent_by_name_and_removable(link: Link) -> None:
    assert link.client.ensure_route(link.east_west) == link.east_west
    extra = Route("extra/moved", EAST, WEST, EAST_HOST, free_port(EAST_HOST), WEST_HOST, link.west_echo.port)
    link.client.ensure_route(extra)
    moved = Route("extra/moved", EAST, WEST, EAST_HOST, free_port(EAST_HOST), WEST_HOST, link.west_echo.port)
    assert link.client.ensure_route(moved) == moved  # a changed spec replaces the route
    assert link.client.status().route("extra/moved").route == moved
    with link.connect(moved) as sock:
        sock.sendall(b"ok")
        assert recv_exactly(sock, 2) == b"ok"
    link.client.remove_route("extra/moved")  # names may hold "/" (pg/orders)
    link.client.remove_route("extra/moved")  # already gone: fine
    assert "extra/moved" not in {r.route.name for r in link.client.status().routes}
    with pytest.raises(OSError):
        socket.create_connection((moved.listen_host, moved.listen_port), timeout=2)


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.set(f"{EAST}->eu-west-1", latency_ms=5), "eu-west-1"),
        (lambda c: c.set("sideways", latency_ms=5), "direction"),
        (lambda c: c.set("both", latency_ms=-1), "latency_ms"),
        (lambda c: c.set("both", jitter_ms=-0.5), "jitter_ms"),
        (lambda c: c.partition("nowhere"), "direction"),
        (lambda c: c.heal(f"{EAST}->{EAST}"), "direction"),
        (lambda c: c.isolate("eu-west-1"), "region"),
        (lambda c: c.isolate(GLOBAL_PLANE), "region"),
        (lambda c: c.ensure_route(Route("bad", EAST, EAST, EAST_HOST, 20000, WEST_HOST, 1)), "dst_region"),
        (lambda c: c.ensure_route(Route("bad", EAST, WEST, EAST_HOST, 0, WEST_HOST, 1)), "listen_port"),
        (lambda c: c.ensure_route(Route("Bad Name", EAST, WEST, EAST_HOST, 20000, WEST_HOST, 1)), "name"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(link: Link, call: object, named: str) -> None:
    before = link.client.status()
    with pytest.raises(InputError, match=named):
        call(link.client)  # type: ignore[operator]
    after = link.client.status()
    assert after.directions == before.directions
    assert [r.route for r in after.routes] == [r.route for r in before.routes]


def test_raw_requests_with_unknown_or_mistyped_fields_get_4xx_naming_them(link: Link) -> None:
    answer = httpx.put(f"{link.emulator.url}/directions/{EAST}/{WEST}", json={"latency": 5})
    assert answer.status_code == 400 and "latency" in answer.json()["message"]
    answer = httpx.put(f"{link.emulator.url}/directions/{EAST}/mars-1", json={"latency_ms": 5})
    assert answer.status_code == 400 and "mars-1" in answer.json()["message"]
    answer = httpx.post(f"{link.emulator.url}/partition", json={"direction": "both", "reset": "maybe"})
    assert answer.status_code == 400 and "reset" in answer.json()["message"]
    assert not any(d.partitioned for d in link.client.status().directions)


def test_a_listener_taken_by_another_route_is_a_conflict(link: Link) -> None:
    clash = Route("clash", EAST, WEST, EAST_HOST, link.east_west.listen_port, WEST_HOST, 1)
    with pytest.raises(ConflictError, match="east-west"):
        link.client.ensure_route(clash)


def test_the_cli_shows_the_running_link_as_json(link: Link, tmp_path: Path) -> None:
    link.client.set(f"{EAST}->{WEST}", latency_ms=12.5)
    state = tmp_path / "state"
    state.mkdir()
    (state / "ports.json").write_text(json.dumps({"global/link-control": {"host": "127.0.0.1",
                                                                            "port": link.emulator.control_port}}))
    out = run_cli(tmp_path, "link", "status", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    directions = {(d["src"], d["dst"]): d for d in data["directions"]}
    assert directions[(EAST, WEST)]["latency_ms"] == 12.5
    assert {r["route"]["name"] for r in data["routes"]} >= {"east-west", "west-east"}

    out = run_cli(tmp_path, "link", "partition", "--direction", f"{WEST}->{EAST}", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert link.client.status().direction(WEST, EAST).partitioned

    out = run_cli(tmp_path, "link", "isolate", WEST, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["isolated"] == [WEST]
    assert link.client.status().direction(GLOBAL_PLANE, WEST).partitioned
    out = run_cli(tmp_path, "link", "heal", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert not any(d["partitioned"] for d in json.loads(out.stdout)["directions"])


def test_the_cli_says_the_link_is_not_running(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    port = free_port("127.0.0.1")
    (state / "ports.json").write_text(json.dumps({"global/link-control": {"host": "127.0.0.1", "port": port}}))
    out = run_cli(tmp_path, "link", "status")
    assert out.returncode == ExternalError.exit_code
    assert "not running" in out.stderr and "regionctl up" in out.stderr


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REGIONCTL_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    cmd = [sys.executable, "-c", "from regionctl.cli.main import main; main()", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


# --- restart ---------------------------------------------------------------------------------------------------


def test_a_restarted_emulator_comes_back_with_its_routes_and_state(tmp_path: Path) -> None:
    echo = EchoServer(WEST_HOST).start()
    emulator = Emulator(tmp_path, free_port("127.0.0.1"), latency_ms=3).start()
    try:
        route = Route("pg/orders", EAST, WEST, EAST_HOST, free_port(EAST_HOST), WEST_HOST, echo.port)
        with LinkClient(emulator.url) as client:  # one client across the restart, as long-lived callers keep
            client.ensure_route(route)
            client.set(f"{EAST}->{WEST}", latency_ms=7, jitter_ms=1)
            before = client.partition(f"{WEST}->{EAST}")
            emulator.stop()
            assert not client.healthy()
            with pytest.raises(ExternalError, match="not running"):
                client.status()
            emulator.start()
            after = client.status()
            assert after.directions == before.directions
            assert [r.route for r in after.routes] == [route] and after.route("pg/orders").listening
            client.heal("both")
            with socket.create_connection((route.listen_host, route.listen_port), timeout=5) as sock:
                sock.sendall(b"again")
                assert recv_exactly(sock, 5) == b"again"
    finally:
        emulator.stop()
        echo.stop()
