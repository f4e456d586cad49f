"""Throw-away PostgreSQL instances for the shop's integration tests (real binaries, real TCP, unprivileged user)."""

from __future__ import annotations

import secrets
import shutil
import socket
import tempfile
from pathlib import Path

from regionctl.runtime.osuser import RunAs, ensure_runas, make_owned_dir
from regionctl.runtime.pgpass import ensure_login
from regionctl.runtime.postgres import PgBinaries, PgInstance

TEST_SUPERUSER_PASSWORD = secrets.token_urlsafe(24)  # SCRAM like a deployment: no instance trusts loopback
TEST_SETTINGS = {"archive_mode": "off", "fsync": "off", "synchronous_commit": "off", "max_connections": "100"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def scratch_dir(prefix: str) -> Path:
    """A directory under /tmp the PostgreSQL user can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def new_instance(root: Path, name: str, runas: RunAs | None = None, host: str = "127.0.0.1") -> PgInstance:
    runas = runas or ensure_runas("regionctl-pg")
    datadir = make_owned_dir(root / name, runas)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    logs.chmod(0o777)
    login = ensure_login(root / "pgpass" / "superuser", TEST_SUPERUSER_PASSWORD, runas)
    return PgInstance(name, datadir, host, free_port(host), logs / f"{name}.log", PgBinaries.locate(None), runas,
                      login)


def start_primary(root: Path, name: str, databases: tuple[str, ...] = ()) -> PgInstance:
    instance = new_instance(root, name)
    instance.initdb()
    instance.start(TEST_SETTINGS)
    for db in databases:
        instance.query(f"create database {db}")
    return instance


def dsn(instance: PgInstance, dbname: str, **extra: object) -> str:
    return instance.conninfo(dbname, **extra)


def multi_host_dsn(instances: list[PgInstance], dbname: str) -> str:
    hosts = ",".join(i.host for i in instances)
    ports = ",".join(str(i.port) for i in instances)
    login = instances[0].login
    passfile = f" passfile={login.passfile}" if login else ""
    return f"host={hosts} port={ports} user=postgres dbname={dbname} target_session_attrs=read-write{passfile}"


def destroy(instances: list[PgInstance], root: Path) -> None:
    for instance in instances:
        try:
            instance.stop("immediate")
        except Exception:
            instance.kill()
    shutil.rmtree(root, ignore_errors=True)
