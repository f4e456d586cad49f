"""``up``, ``down`` and ``status`` of a whole local deployment.

``up`` starts, in order: the link emulator (every cross-region path needs it), each region's databases (the
regional store and the members of every global database, in their recorded roles), then the supervised
processes components contribute, and stays in the foreground supervising until Ctrl-C or ``down``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from regionctl.agent.host import RegionHost
from regionctl.config import EFFECTIVE_SETTINGS_ENV, write_effective_settings
from regionctl.credentials import service as credentials
from regionctl.credentials.schedule import RotationSchedule
from regionctl.deploy import components
from regionctl.errors import ConflictError, OperationTimeout, RegionctlError
from regionctl.globaldb.member import AgentMember, Agents
from regionctl.globaldb.service import GlobalDatabases
from regionctl.globaldb.snapshots import ship_archive
from regionctl.observe import prometheus
from regionctl.runtime import etcd, pgpass
from regionctl.runtime.network import deployment_network
from regionctl.runtime.process import GLOBAL_PLANE, ProcessSpec, pid_alive
from regionctl.runtime.supervisor import RegionMarks, Supervisor, kill_groups, read_processes
from regionctl.runtime.topology import GLOBAL_HOST, REGIONAL_DB, Topology

log = logging.getLogger("regionctl.up")


def regional_store_member(agents: Agents, topo: Topology, region: str) -> AgentMember:
    host, port = topo.pg_address(region, REGIONAL_DB)
    return AgentMember(name=f"{REGIONAL_DB}-{region}", host=host, port=port, passfile=str(topo.login.passfile),
                       region=region, database=REGIONAL_DB, agent=agents.client(region))


def regional_store_instance_ready(agents: Agents, topo: Topology, region: str) -> None:
    """The region's own PostgreSQL for the multi-active store (carts, checkout): always writable, no archive;
    created and started by the region's agent."""
    pg = regional_store_member(agents, topo, region)
    pg.init()
    pg.start("standalone")
    if not pg.scalar("select count(*) from pg_database where datname = %s", (REGIONAL_DB,)):
        pg.query(f"create database {REGIONAL_DB}")


def spec_sources() -> list[components.SpecSource]:
    """Components that contribute supervised processes, in start order."""
    return components.sources()


@dataclass
class Deployment:
    topo: Topology
    extra_sources: list[components.SpecSource] = field(default_factory=list)
    archive_ship_interval_s: float = 10.0

    @property
    def state_dir(self) -> Path:
        return self.topo.paths.state

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "up.pid"

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    # ----- up ---------------------------------------------------------------------------------------------
    def claim(self) -> None:
        """Record this process as the deployment's ``up``; refuse if another one runs (before touching anything)."""
        other = self.running_pid()
        if other is not None and other != os.getpid():
            raise ConflictError(f"this deployment is already up (pid {other}); use `regionctl down` first")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.write_text(str(os.getpid()))

    def start(self, progress: Callable[[str], None] = lambda _: None) -> Supervisor:
        """Bring everything up and return the supervisor (``up`` then loops on it)."""
        self.claim()
        self.topo.paths.root.chmod(0o755)
        effective = write_effective_settings(self.topo.settings, self.state_dir / "effective-settings.json")
        supervisor = Supervisor(self.state_dir, self.topo.paths.root / "logs", {
            EFFECTIVE_SETTINGS_ENV: str(effective),
            credentials.SERVICE_FILE_ENV: str(credentials.service_file(self.topo.settings)),
            pgpass.ENV: str(self.topo.login.passfile)},
            on_save=lambda running: prometheus.write_targets(self.topo.paths.prometheus, running))
        from regionctl.runtime.link import link_process_spec

        progress("link emulator")
        supervisor.start(link_process_spec(self.topo.settings, GLOBAL_HOST, self.topo.port("global", "link-control"),
                                           self.state_dir / "link"))
        network = deployment_network(self.topo)
        progress("etcd (three members: one per region, a witness on the global plane)")
        etcd.peer_routes(self.topo, network)
        for spec in etcd.process_specs(self.topo):
            supervisor.start(spec, wait=False)
        etcd.wait_quorum(self.topo)
        for spec in components.region_agents(self.topo, network):
            progress(spec.key)
            supervisor.start(spec)
        gdbs = GlobalDatabases(self.topo, network)
        for region in self.topo.settings.regions:
            progress(f"regional store database in {region}")
            regional_store_instance_ready(gdbs.agents, self.topo, region)
        for name in gdbs.names:
            progress(f"global database {name}")
            gdbs.ensure(name)
        progress("database credentials")
        credentials.ensure(gdbs, progress)
        for source in [*spec_sources(), *self.extra_sources]:
            for spec in source(self.topo, network):
                progress(f"{spec.key}")
                supervisor.start(spec)
        return supervisor

    def supervise(self, supervisor: Supervisor, stop: Callable[[], bool]) -> None:
        """Keep processes and databases in their intended state until ``stop()`` says so."""
        gdbs = GlobalDatabases(self.topo, deployment_network(self.topo))
        marks = RegionMarks(self.state_dir)
        last_ship = 0.0
        shipping = threading.Thread()  # not started: nothing ships yet
        regional = threading.Thread()
        rotation = RotationSchedule(lambda: credentials.due(self.topo.settings),
                                    lambda name: credentials.rotate_database(gdbs, name))
        while not stop():
            supervisor.tick()
            down = frozenset(r for r in self.topo.settings.regions if marks.is_down(r))
            for name in gdbs.names:
                try:
                    gdbs.ensure(name, down, blocking=False)
                except RegionctlError as exc:
                    log.warning("%s: %s", name, exc)
            if not regional.is_alive():  # its own thread too: an agent that does not answer holds up nothing
                regional = threading.Thread(target=self._ensure_regional_stores, args=(gdbs, down), daemon=True,
                                            name="regional-stores")
                regional.start()
            if time.monotonic() - last_ship > self.archive_ship_interval_s and not shipping.is_alive():
                last_ship = time.monotonic()  # on its own thread: a pull stuck behind a cut never delays restarts
                shipping = threading.Thread(target=self._ship_archives, args=(gdbs, down), daemon=True,
                                            name="archive-shipping")
                shipping.start()
            rotation.poke(down)
            time.sleep(1.0)

    def _ensure_regional_stores(self, gdbs: GlobalDatabases, down: frozenset[str]) -> None:
        """A region that was killed and started again gets its regional store back (its agent restarts with the
        region, the instance only when asked)."""
        for region in self.topo.settings.regions:
            if region in down:
                continue
            member = regional_store_member(gdbs.agents, self.topo, region)
            try:
                seen = member.reachable_state()
                if seen is not None and seen["exists"] and not seen["running"]:
                    member.start("standalone")
                    log.warning("regional store of %s was not running; started it", region)
            except RegionctlError as exc:
                log.warning("regional store of %s: %s", region, exc)

    def _ship_archives(self, gdbs: GlobalDatabases, down: frozenset[str]) -> None:
        for name in gdbs.names:
            cluster = gdbs.cluster(name)
            for origin in cluster.regions:
                for target in cluster.regions:
                    if origin != target and origin not in down and target not in down:
                        try:
                            ship_archive(cluster, origin, target)
                        except RegionctlError as exc:  # cut off, or an agent restarting: next round
                            log.warning("shipping %s's %s archive to %s: %s", origin, name, target, exc)

    def stop_everything(self, supervisor: Supervisor | None = None) -> list[str]:
        """Stop supervised processes, then every PostgreSQL instance (fast shutdown); data is kept."""
        stopped = supervisor.stop_all() if supervisor else []
        leftovers = [s for s in read_processes(self.state_dir).values() if pid_alive(s.pid)]
        stopped += kill_groups(leftovers) if leftovers else []
        for pg in self.all_postgres():
            if pg.stop("fast"):
                stopped.append(pg.name)
        self.pid_file.unlink(missing_ok=True)
        return stopped

    def all_postgres(self) -> list:
        found = []
        for region in self.topo.settings.regions:
            pg_dir = self.topo.paths.region(region) / "pg"
            for datadir in sorted(pg_dir.glob("*")) if pg_dir.exists() else []:
                if (datadir / "PG_VERSION").exists():
                    found.append(self.topo.pg(region, datadir.name))
            host = RegionHost(self.topo, region)
            for kind in ("restores", "recon"):
                root = host.scratch_root(kind)
                for scratch in sorted(root.glob("*/data")) if root.exists() else []:
                    found.append(host.scratch(kind, scratch.parent.name))
        return found

    # ----- down -------------------------------------------------------------------------------------------
    def down(self, purge: bool = False, timeout: float = 60.0) -> dict[str, object]:
        pid = self.running_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                raise OperationTimeout(f"`up` (pid {pid}) did not stop within {timeout:.0f}s")
        stopped = self.stop_everything()
        purged = False
        if purge and self.topo.paths.root.exists():
            shutil.rmtree(self.topo.paths.root)
            purged = True
        return {"stopped_up_process": pid, "stopped": stopped, "purged": purged,
                "data_dir": str(self.topo.paths.root)}


def global_spec(name: str, argv: tuple[str, ...], health_url: str | None = None) -> ProcessSpec:
    return ProcessSpec(name=name, region=GLOBAL_PLANE, argv=argv, health_url=health_url)
