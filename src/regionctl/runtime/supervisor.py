"""Start, health-check, restart and stop supervised processes, grouped per region.

Every process of a region joins one process group, so killing a region kills its whole group at once (the
chaos of losing a region). Which processes run is recorded in ``state/processes.json`` so other commands
(``status``, ``region kill``, ``down``) can see and act on them. A region marked down stays down: nothing in
it is restarted until ``region start``. A process that keeps dying soon after it starts is restarted with a
doubling delay (0.5 s up to 30 s), so a crash loop does not spin.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from regionctl.errors import OperationTimeout
from regionctl.runtime.process import ProcessSpec

log = logging.getLogger("regionctl.supervisor")


@dataclass(frozen=True)
class ProcessState:
    key: str
    region: str
    pid: int
    pgid: int
    argv: tuple[str, ...]
    log_file: str
    health_url: str | None = None
    metrics_url: str | None = None


class RegionMarks:
    """Files saying a region was killed on purpose; the supervisor does not restart anything in it."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "regions-down"

    def mark_down(self, region: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / region).touch()

    def clear(self, region: str) -> None:
        (self.directory / region).unlink(missing_ok=True)

    def is_down(self, region: str) -> bool:
        return (self.directory / region).exists()


def read_processes(state_dir: Path) -> dict[str, ProcessState]:
    path = state_dir / "processes.json"
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {k: ProcessState(**{"metrics_url": None, **v, "argv": tuple(v["argv"])}) for k, v in raw.items()}


def kill_groups(states: list[ProcessState]) -> list[str]:
    """SIGKILL the process groups of ``states``; return the keys that were alive."""
    killed = []
    for group in sorted({s.pgid for s in states}):
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            continue
    for state in states:
        killed.append(state.key)
    return killed


RESTART_DELAY_MIN_S = 0.5  # a process that dies soon after it started waits this long, doubling each time
RESTART_DELAY_MAX_S = 30.0
STABLE_AFTER_S = 30.0  # one that ran this long before dying is restarted at once, and its delay starts over


def restart_delay(previous_s: float, ran_s: float) -> float:
    """How long to wait before restarting a process that ran ``ran_s`` seconds: crash loops back off."""
    if ran_s >= STABLE_AFTER_S:
        return 0.0
    return min(max(previous_s * 2, RESTART_DELAY_MIN_S), RESTART_DELAY_MAX_S)


class Supervisor:
    def __init__(self, state_dir: Path, log_dir: Path, base_env: dict[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_save: Callable[[list[ProcessState]], None] | None = None) -> None:
        """``on_save`` hears the running processes whenever they change (a start, a restart on a new pid): the
        metrics store's scrape targets follow them without the supervisor knowing about it."""
        self.state_dir = state_dir
        self.on_save = on_save
        self.base_env = base_env or {}
        self.log_dir = log_dir
        self.clock = clock
        self.marks = RegionMarks(state_dir)
        self.specs: dict[str, ProcessSpec] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.groups: dict[str, int] = {}
        self.restarts: dict[str, int] = {}
        self.started_at: dict[str, float] = {}
        self.delay: dict[str, float] = {}  # the current restart delay per process
        self.restart_at: dict[str, float] = {}  # processes that died and wait for their restart

    # ----- starting ---------------------------------------------------------------------------------------
    def add(self, spec: ProcessSpec) -> None:
        self.specs[spec.key] = spec

    def start(self, spec: ProcessSpec, wait: bool = True) -> None:
        self.add(spec)
        log_file = self.log_dir / spec.region / f"{spec.name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.base_env, **spec.env}
        group = self.groups.get(spec.region, 0)
        with open(log_file, "ab") as out:
            try:
                proc = subprocess.Popen(spec.argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, process_group=group, cwd=spec.cwd)
            except PermissionError:  # the region's group died with all its members: start a new one
                proc = subprocess.Popen(spec.argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, process_group=0, cwd=spec.cwd)
        self.groups[spec.region] = os.getpgid(proc.pid)
        self.procs[spec.key] = proc
        self.started_at[spec.key] = self.clock()
        self.restart_at.pop(spec.key, None)
        self._save()
        if wait:
            self.wait_healthy(spec)

    def wait_healthy(self, spec: ProcessSpec) -> None:
        deadline = time.monotonic() + spec.start_timeout_s
        while time.monotonic() < deadline:
            proc = self.procs[spec.key]
            if proc.poll() is not None:
                raise OperationTimeout(f"{spec.key} exited with {proc.returncode} during start; see its log in "
                                       f"{self.log_dir / spec.region / (spec.name + '.log')}")
            if self.healthy(spec):
                return
            time.sleep(0.1)
        raise OperationTimeout(f"{spec.key} was not healthy within {spec.start_timeout_s:.0f}s")

    def healthy(self, spec: ProcessSpec) -> bool:
        proc = self.procs.get(spec.key)
        if proc is None or proc.poll() is not None:
            return False
        if spec.health_url is None:
            return True
        try:
            return httpx.get(spec.health_url, timeout=2.0).is_success
        except httpx.HTTPError:
            return False

    # ----- supervising ------------------------------------------------------------------------------------
    def tick(self) -> list[str]:
        """Restart processes that died on their own, backing off while one keeps dying soon after it started;
        return what was restarted."""
        restarted = []
        for key, spec in self.specs.items():
            proc = self.procs.get(key)
            if proc is None or proc.poll() is None or not spec.restart:
                continue
            if self.marks.is_down(spec.region):  # killed on purpose: nothing to back off from once started again
                self.started_at.pop(key, None)
                self.restart_at.pop(key, None)
                continue
            now = self.clock()
            if key not in self.restart_at:  # just found dead
                ran = now - self.started_at.get(key, -math.inf)
                delay = self.delay[key] = restart_delay(self.delay.get(key, 0.0), ran)
                self.restart_at[key] = now + delay
                log.warning("%s exited with %s; restarting%s", key, proc.returncode,
                            f" in {delay:.1f} s (it died {ran:.1f} s after it started)" if delay else "")
            if now < self.restart_at[key]:
                continue
            del self.restart_at[key]
            self.restarts[key] = self.restarts.get(key, 0) + 1
            try:
                self.start(spec, wait=False)
                restarted.append(key)
            except OSError as exc:
                log.error("cannot restart %s: %s", key, exc)
        return restarted

    def stop_all(self, timeout: float = 10.0) -> list[str]:
        """SIGTERM everything (global plane last), then SIGKILL what is left after ``timeout``."""
        stopped = []
        for key in sorted(self.procs, key=lambda k: k.startswith("global/")):
            proc = self.procs[key]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                stopped.append(key)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        self._save()
        return stopped

    def _save(self) -> None:
        running = [
            ProcessState(key=key, region=self.specs[key].region, pid=p.pid, pgid=_pgid(p.pid),
                         argv=self.specs[key].argv,
                         log_file=str(self.log_dir / self.specs[key].region / f"{self.specs[key].name}.log"),
                         health_url=self.specs[key].health_url, metrics_url=self.specs[key].metrics_url)
            for key, p in self.procs.items() if p.poll() is None
        ]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / "processes.tmp"
        tmp.write_text(json.dumps({p.key: {**asdict(p), "argv": list(p.argv)} for p in running}, indent=2))
        tmp.replace(self.state_dir / "processes.json")
        if self.on_save is not None:
            try:
                self.on_save(running)
            except OSError as exc:  # a listener that cannot write must never stop supervision
                log.warning("process listener failed: %s", exc)


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return pid
