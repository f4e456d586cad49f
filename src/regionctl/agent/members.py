"""The agent's operations on one member: create, start in a role, stop, promote, rewind, clone, preserve.

Each checks the world before acting and returns what it did and why (``Done``), so the global plane can call
it again after a lost answer. Node-specific settings (archive directory, where to stream from) go on the
command line, never into files pg_basebackup or pg_rewind would copy to the other member.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from regionctl.agent.host import RegionHost, check_scratch_name, clean_replication_config, control_data, copy_datadir
from regionctl.errors import ConflictError, DatabaseError, InputError, NotFoundError, ProcessError
from regionctl.runtime.osuser import make_owned_dir
from regionctl.runtime.postgres import STOP_SIGNALS
from regionctl.runtime.topology import REGIONAL_DB


class Role(StrEnum):
    WRITER = "writer"
    STANDBY = "standby"
    STANDALONE = "standalone"  # the regional store: always writable, archives nothing


@dataclass(frozen=True)
class Done:
    """What an agent call did, why, and what it found out."""

    action: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def status(host: RegionHost, database: str) -> dict[str, Any]:
    member = host.member(database)
    pid = member.pid()
    return {"database": database, "region": host.region, "name": member.name,
            "address": f"{member.host}:{member.port}", "exists": member.exists, "running": pid is not None,
            "pid": pid}


def init(host: RegionHost, database: str) -> Done:
    """An empty cluster for ``database`` (initdb), unless one exists."""
    member = host.member(database)
    if member.exists:
        return Done("exists", "the data directory is already initialised")
    make_owned_dir(member.datadir, member.runas)
    member.initdb()
    return Done("created", "initdb of an empty data directory")


def start(host: RegionHost, database: str, role: Role, primary_conninfo: str | None = None,
          slot: str | None = None) -> Done:
    """Start the member in ``role``; a standby streams from ``primary_conninfo`` through ``slot``."""
    member = host.member(database)
    if role is Role.STANDBY and not (primary_conninfo and slot):
        raise InputError("primary_conninfo: a standby needs where to stream from and its slot")
    if role is Role.STANDALONE and database != REGIONAL_DB:
        raise InputError(f"role: {database} is a global database; it starts as writer or standby, never standalone")
    if member.running:
        return Done("running", "already running (its role is whatever it was started as)")
    if not member.exists:
        raise ConflictError(f"{member.name} has no data directory; create or clone it first")
    settings: dict[str, str] = {"archive_mode": "off"} if role is Role.STANDALONE else {
        "basic_archive.archive_directory": str(host.archive_dir(database))}
    clean_replication_config(member)
    if role is Role.STANDBY:
        signal = member.datadir / "standby.signal"
        signal.touch()
        member.runas.chown(signal)
        settings |= {"primary_conninfo": str(primary_conninfo), "primary_slot_name": str(slot)}
    else:
        for signal_file in ("standby.signal", "recovery.signal"):
            (member.datadir / signal_file).unlink(missing_ok=True)
    member.start(settings)
    return Done("started", f"started as {role.value}")


def stop(host: RegionHost, database: str, mode: str) -> Done:
    if mode not in STOP_SIGNALS:
        raise InputError(f"mode: {mode!r} is not one of {', '.join(STOP_SIGNALS)}")
    member = host.member(database)
    if member.stop(mode):
        return Done("stopped", f"{mode} shutdown; the postmaster has exited")
    return Done("not_running", "was not running")


def promote(host: RegionHost, database: str) -> Done:
    member = host.member(database)
    if not member.running:
        raise ConflictError(f"{member.name} is not running; only a running standby can be promoted")
    try:
        if not member.in_recovery():
            return Done("not_in_recovery", "already a writer")
        member.query("select pg_promote(false)")
    except DatabaseError:
        member.query("select pg_promote(false)")  # still starting: ask once more, or fail loudly
    return Done("promoted", "pg_promote asked; the member leaves recovery")


def read_control_data(host: RegionHost, database: str) -> dict[str, str]:
    member = host.member(database)
    if not member.exists:
        raise NotFoundError(f"{member.name} has no data directory")
    return control_data(member)


def rewind(host: RegionHost, database: str, source_conninfo: str) -> Done:
    """pg_rewind the (stopped) member from the server ``source_conninfo`` names."""
    member = host.member(database)
    if not member.exists:
        raise ConflictError(f"{member.name} has no data directory to rewind; clone it with a base backup")
    if member.running:
        member.stop("immediate")
    result = member.run([member.bins("pg_rewind"), "--target-pgdata", str(member.datadir),
                         "--source-server", source_conninfo], timeout=3600)
    clean_replication_config(member)
    return Done("rewound", "pg_rewind copied what changed since the divergence",
                {"output": (result.stdout + result.stderr).strip()[-2000:]})


def base_backup(host: RegionHost, database: str, source_conninfo: str, slot: str) -> Done:
    """Replace the member's directory with a fresh clone of ``source_conninfo`` (the old one is kept aside
    until the clone succeeded)."""
    member = host.member(database)
    if member.running:
        member.stop("immediate")
    aside = member.datadir.with_name(f"{member.datadir.name}.replaced-{int(time.time())}")
    replaced = member.datadir.exists()
    if replaced:
        member.datadir.rename(aside)
    make_owned_dir(member.datadir, member.runas)
    try:
        member.run([member.bins("pg_basebackup"), "-d", source_conninfo, "-D", str(member.datadir),
                    "-X", "stream", "-c", "fast", "-S", slot], timeout=3600)
    except ProcessError:
        shutil.rmtree(member.datadir, ignore_errors=True)
        if aside.exists():
            aside.rename(member.datadir)
        raise
    clean_replication_config(member)
    shutil.rmtree(aside, ignore_errors=True)
    return Done("cloned", "pg_basebackup from the source" + (", the old directory deleted" if replaced else ""))


def preserve(host: RegionHost, database: str, name: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Stop the member and copy its directory as ``name`` (idempotent: the same name returns the first copy)."""
    check_scratch_name("name", name)
    target = host.copies_dir(database) / name
    if (target / "copy.json").exists():
        return dict(json.loads((target / "copy.json").read_text()))
    member = host.member(database)
    if not member.exists:
        raise ConflictError(f"{member.name} has no data directory; nothing to preserve")
    if member.running:
        member.stop("immediate")
    started = time.monotonic()
    shutil.rmtree(target, ignore_errors=True)  # a copy that died half-way
    size = copy_datadir(member.datadir, target / "data")
    copy = {**meta, "name": name, "database": database, "region": host.region, "path": str(target / "data"),
            "bytes": size, "created_at": time.time(), "seconds": round(time.monotonic() - started, 3)}
    (target / "copy.json").write_text(json.dumps(copy, indent=2))
    return copy


def copies(host: RegionHost, database: str) -> list[dict[str, Any]]:
    """Preserved copies whose files are still there."""
    root = host.copies_dir(database)
    found = [json.loads(p.read_text()) for p in sorted(root.glob("*/copy.json"))] if root.exists() else []
    return [c for c in found if (host.copies_dir(database) / c["name"] / "data" / "PG_VERSION").exists()]
