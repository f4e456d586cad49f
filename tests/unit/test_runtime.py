"""The local runtime without PostgreSQL: port allocation and the supervisor's process groups."""

from __future__ import annotations

import logging
import socket
import sys
import time
from pathlib import Path

import pytest

from regionctl.runtime.ports import PortRegistry, ephemeral_ports
from regionctl.runtime.process import ProcessSpec, pid_alive
from regionctl.runtime.supervisor import STABLE_AFTER_S, RegionMarks, Supervisor, kill_groups, read_processes


def test_ports_are_remembered_and_never_collide(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.1.1", 0))
        base = busy.getsockname()[1]
        registry = PortRegistry(tmp_path / "ports.json", base)
        first = registry.get("us-east-1/ui", "127.0.1.1")
        second = registry.get("us-east-1/carts", "127.0.1.1")
    assert first != base and second not in (first, base)
    assert PortRegistry(tmp_path / "ports.json", base).get("us-east-1/ui", "127.0.1.1") == first
    assert registry.get("us-west-2/ui", "127.0.2.1") == base  # another address: the same port is free
    registry.release("us-east-1/")
    assert set(registry.all()) == {"us-west-2/ui"}


def test_a_port_in_the_kernels_ephemeral_range_is_warned_about(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    kernel = tmp_path / "ip_local_port_range"
    kernel.write_text("32768\t60999\n")
    assert ephemeral_ports(kernel) == range(32768, 61000)
    assert ephemeral_ports(tmp_path / "absent") == range(32768, 61000)
    with caplog.at_level(logging.WARNING, logger="regionctl.ports"):
        PortRegistry(tmp_path / "low.json", 21000, ephemeral_ports(kernel)).get("us-east-1/ui", "127.0.1.1")
        assert not caplog.records
        PortRegistry(tmp_path / "high.json", 41000, ephemeral_ports(kernel)).get("us-east-1/ui", "127.0.1.1")
    assert "us-east-1/ui gets port 41" in caplog.text and "set base_port below 32768" in caplog.text


def sleeper(name: str, region: str) -> ProcessSpec:
    return ProcessSpec(name=name, region=region, argv=(sys.executable, "-c", "import time; time.sleep(60)"))


def test_a_region_is_one_process_group_and_dies_as_one(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "state", tmp_path / "logs")
    try:
        for spec in (sleeper("a", "r1"), sleeper("b", "r1"), sleeper("c", "r2")):
            supervisor.start(spec)
        states = read_processes(tmp_path / "state")
        assert states["r1/a"].pgid == states["r1/b"].pgid != states["r2/c"].pgid
        RegionMarks(tmp_path / "state").mark_down("r1")
        kill_groups([s for s in states.values() if s.region == "r1"])
        deadline = time.monotonic() + 5
        while (pid_alive(states["r1/a"].pid) or pid_alive(states["r1/b"].pid)) and time.monotonic() < deadline:
            supervisor.procs["r1/a"].poll(), supervisor.procs["r1/b"].poll()
            time.sleep(0.05)
        assert not pid_alive(states["r1/a"].pid) and not pid_alive(states["r1/b"].pid)
        assert pid_alive(states["r2/c"].pid)
        assert supervisor.tick() == []  # a region marked down is not restarted
        RegionMarks(tmp_path / "state").clear("r1")
        assert sorted(supervisor.tick()) == ["r1/a", "r1/b"]
    finally:
        supervisor.stop_all(timeout=5)


def test_a_process_that_dies_on_its_own_is_restarted(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "state", tmp_path / "logs")
    try:
        supervisor.start(sleeper("svc", "r1"))
        supervisor.procs["r1/svc"].kill()
        supervisor.procs["r1/svc"].wait()
        deadline = time.monotonic() + 5
        while not supervisor.tick() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert supervisor.procs["r1/svc"].poll() is None and supervisor.restarts["r1/svc"] == 1
    finally:
        supervisor.stop_all(timeout=5)


def test_restarts_back_off_while_a_process_keeps_dying_soon_after_it_started(tmp_path: Path) -> None:
    now = [1000.0]
    supervisor = Supervisor(tmp_path / "state", tmp_path / "logs", clock=lambda: now[0])
    crashing = ProcessSpec("crash", "r1", (sys.executable, "-c", "raise SystemExit(3)"))

    def died() -> None:
        supervisor.procs["r1/crash"].wait(timeout=10)

    try:
        supervisor.start(crashing, wait=False)
        waited = []
        for _ in range(8):
            died()
            assert supervisor.tick() == []  # found dead: its restart is scheduled, not done
            found_at = now[0]
            while not supervisor.tick():
                now[0] += 0.25
            waited.append(now[0] - found_at)
        assert waited == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
        assert supervisor.restarts["r1/crash"] == 8
        died()
        now[0] += STABLE_AFTER_S  # it ran long enough this time: restarted at once, and the delay starts over
        assert supervisor.tick() == ["r1/crash"]
        died()
        supervisor.tick()
        now[0] += 0.5
        assert supervisor.tick() == ["r1/crash"]
    finally:
        supervisor.stop_all(timeout=5)
