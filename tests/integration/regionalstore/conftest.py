"""Two real PostgreSQL instances (one per region), shared by the session; a fresh database pair per test."""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from regionctl.config import load_settings
from regionctl.regionalstore import RegionalStore, replication_status
from regionctl.runtime.osuser import ensure_runas, make_owned_dir
from regionctl.runtime.pgpass import ensure_login
from regionctl.runtime.postgres import PgBinaries, PgInstance

REGIONS = ("us-east-1", "us-west-2")
_counter = itertools.count()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pg_instances() -> Iterator[dict[str, PgInstance]]:
    settings = load_settings()
    runas = ensure_runas(settings.postgres.os_user)
    root = Path(tempfile.mkdtemp(prefix="regionalstore-it-"))
    root.chmod(0o755)
    bins = PgBinaries.locate(settings.postgres.bin_dir)
    password = secrets.token_urlsafe(24)
    instances = {}
    for region in REGIONS:
        datadir = make_owned_dir(root / region, runas)
        login = ensure_login(root / "pgpass" / "superuser", password, runas)
        pg = PgInstance(f"regional-{region}", datadir, "127.0.0.1", _free_port(), root / f"{region}.log", bins, runas,
                        login)
        pg.initdb()
        pg.start({"archive_mode": "off", "fsync": "off"})  # tests assert logic, not disk durability
        pg.query("create database regional")
        instances[region] = pg
    yield instances
    for pg in instances.values():
        pg.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dsns(pg_instances: dict[str, PgInstance]) -> dict[str, str]:
    """Each region's store emptied, so tests never see each other's items, cursors, flags or conflicts."""
    for pg in pg_instances.values():
        if pg.scalar("select to_regclass('regionalstore.items') is not null", dbname="regional"):
            pg.query("truncate regionalstore.items, regionalstore.inbound, regionalstore.outbound, "
                     "regionalstore.conflicts, regionalstore.applies", dbname="regional")
    return {region: pg.conninfo("regional") for region, pg in pg_instances.items()}


@pytest.fixture
def empty_dsn(pg_instances: dict[str, PgInstance]) -> str:
    """A database with no regional store in it."""
    name = f"empty_{os.getpid()}_{next(_counter)}"
    pg_instances[REGIONS[0]].query(f"create database {name}")
    return pg_instances[REGIONS[0]].conninfo(name)


@pytest.fixture
def stores(dsns: dict[str, str]) -> Iterator[dict[str, RegionalStore]]:
    opened = {region: RegionalStore(dsn, region) for region, dsn in dsns.items()}
    for store in opened.values():
        store.migrate()
    yield opened
    for store in opened.values():
        store.close()


@dataclass
class ReplicatorProcs:
    """Real replicator processes, one per direction, that tests can kill and restart."""

    dsns: dict[str, str]
    logdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, source: str) -> None:
        target = REGIONS[1 - REGIONS.index(source)]
        env = {**os.environ, "REGIONALSTORE_SOURCE_DSN": self.dsns[source],
               "REGIONALSTORE_TARGET_DSN": self.dsns[target]}
        log = open(self.logdir / f"replicator-{source}.log", "ab")  # noqa: SIM115 (kept open by the child)
        self.procs[source] = subprocess.Popen(
            [sys.executable, "-m", "regionctl.regionalstore.replicator", "--source-region", source,
             "--target-region", target, "--poll-interval", "0.01"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )

    def kill(self, source: str) -> None:
        proc = self.procs.pop(source)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for source in list(self.procs):
            proc = self.procs.pop(source)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def log(self, source: str) -> str:
        return (self.logdir / f"replicator-{source}.log").read_text(errors="replace")


@pytest.fixture
def replicators(dsns: dict[str, str], stores: dict[str, RegionalStore], tmp_path: Path) -> Iterator[ReplicatorProcs]:
    procs = ReplicatorProcs(dsns, tmp_path)
    for region in REGIONS:
        procs.start(region)
    eventually(lambda: all(d.replicator_seen_at is not None
                           for d in replication_status(dsns[REGIONS[0]], dsns[REGIONS[1]]).directions),
               what="both replicators to report in")
    yield procs
    procs.stop_all()


def eventually(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll until ``check`` holds; fail naming ``what`` (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s")
