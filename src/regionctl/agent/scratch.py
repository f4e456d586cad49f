"""Throwaway instances: point-in-time restores and reconciliation copies. They never archive and never
replicate (invariant 4), each runs on a port of its own, and pg_waldump reads the old timeline's WAL for them.

A restored instance picks the next timeline number the real cluster may pick too, so it must never write to a
shared archive: ``archive_mode=off`` and no ``primary_conninfo`` go on its command line. A reconciliation
instance is a copy of a preserved copy (the preserved copy itself is never started: starting it would change it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from regionctl.agent.client import STREAM_END, STREAM_ERROR
from regionctl.agent.host import RegionHost, check_scratch_name, clean_replication_config, copy_datadir
from regionctl.agent.members import Done
from regionctl.errors import DatabaseError, InputError, NotFoundError, OperationTimeout
from regionctl.runtime.postgres import PgInstance

RESTORES, RECON = "restores", "recon"
RESTORE_SETTINGS = {"archive_mode": "off", "primary_conninfo": "", "primary_slot_name": "", "hot_standby": "on"}
RECON_SETTINGS = {
    **RESTORE_SETTINGS,
    "restore_command": "",
    "max_wal_senders": "0",
    "autovacuum": "off",  # keep dead tuples and the copy's files as the old writer left them
    "max_slot_wal_keep_size": "-1",  # never invalidate the reconciliation slot on this copy
    "default_transaction_read_only": "on",
}
END_OF_WAL = ("invalid record length", "invalid magic number", "could not find a valid record after",
              "invalid record offset", "record with incorrect prev-link", "contrecord is requested")


def restore(host: RegionHost, database: str, restore_id: str, snapshot: str, target: dict[str, Any]) -> dict[str, Any]:
    """Recover snapshot ``snapshot`` to ``target`` ({"time"}, {"lsn"} or {"timeline"}: the end of that timeline)
    in a new instance; restoring the same id again returns the first one."""
    check_scratch_name("id", restore_id)
    settings = {**RESTORE_SETTINGS, "restore_command": _restore_command(host.archive_sources(database))}
    if set(target) == {"time"} or set(target) == {"lsn"}:
        key = next(iter(target))
        settings |= {"recovery_target_timeline": "latest", "recovery_target_action": "promote",
                     f"recovery_target_{key}": str(target[key])}
    elif set(target) == {"timeline"} and isinstance(target["timeline"], int):
        settings["recovery_target_timeline"] = str(target["timeline"])  # no target: promote at the archive's end
    else:
        raise InputError("target: give exactly one of time, lsn or timeline (an integer)")
    meta = host.scratch_root(RESTORES) / restore_id / "restore.json"
    if meta.exists():
        return dict(json.loads(meta.read_text()))
    source = host.snapshot_root(database) / check_scratch_name("snapshot", snapshot) / "data"
    if not source.exists():
        raise NotFoundError(f"snapshot {snapshot} is not held in {host.region}")
    started = time.monotonic()
    instance = _prepare(host, RESTORES, restore_id, source)
    (instance.datadir / "recovery.signal").touch()
    instance.runas.chown(instance.datadir / "recovery.signal")
    try:
        instance.start(settings, timeout=600)
        _wait_promoted(instance, timeout=600)
    except (DatabaseError, OperationTimeout) as exc:
        instance.stop("immediate")
        raise DatabaseError(f"restore of {database} failed: {exc}; log: {instance.log_tail(3)}") from None
    recovered = _recovered_to(instance) if "timeline" in target else str(
        instance.scalar("select pg_current_wal_lsn()::text"))
    result = {"id": restore_id, "database": database, "region": host.region, "snapshot": snapshot,
              "host": instance.host, "port": instance.port, "datadir": str(instance.datadir),
              "recovered_to_lsn": recovered, "archiving": str(instance.scalar("show archive_mode")),
              "seconds": round(time.monotonic() - started, 3)}
    meta.write_text(json.dumps(result, indent=2))
    return result


def list_restores(host: RegionHost, database: str) -> list[dict[str, Any]]:
    found = []
    for meta in sorted(host.scratch_root(RESTORES).glob("*/restore.json")):
        raw = json.loads(meta.read_text())
        if raw["database"] == database:
            found.append({**raw, "running": host.scratch(RESTORES, raw["id"]).running})
    return found


def start_recon(host: RegionHost, database: str, copy_name: str, name: str) -> dict[str, Any]:
    """A running copy of preserved copy ``copy_name`` for reconciliation, with the end of its own WAL."""
    check_scratch_name("name", name)
    source = host.copies_dir(database) / check_scratch_name("copy", copy_name) / "data"
    if not (source / "PG_VERSION").exists():
        raise NotFoundError(f"no preserved copy {copy_name} of {database} in {host.region}")
    instance = host.scratch(RECON, name)
    if not instance.running:
        if not instance.datadir.exists():
            _prepare(host, RECON, name, source)
        instance.start(RECON_SETTINGS, timeout=300)
    return {"name": name, "host": instance.host, "port": instance.port,
            "wal_end": str(instance.scalar("select pg_current_wal_insert_lsn()::text"))}


def drop(host: RegionHost, kind: str, name: str) -> Done:
    """Stop a throwaway instance and delete its files (dropping one already gone is done)."""
    if kind not in (RESTORES, RECON):
        raise InputError(f"kind: {kind!r} is not {RESTORES} or {RECON}")
    instance = host.scratch(kind, check_scratch_name("name", name))
    if not instance.datadir.parent.exists():
        return Done("absent", f"{name} does not exist here")
    instance.stop("fast")
    shutil.rmtree(instance.datadir.parent, ignore_errors=True)
    host.release_port(kind, name)
    return Done("dropped", f"stopped {name} and deleted its files")


def waldump(host: RegionHost, database: str, kind: str, name: str, copy_name: str | None, start: str,
            timeline: int) -> Iterator[str]:
    """pg_waldump's records from ``start`` on ``timeline``, read from the preserved copy's own WAL and the
    archives this region holds; ends with a line saying whether it ended normally (the stream cannot carry a
    status code once it has begun)."""
    instance = host.scratch(kind, check_scratch_name("name", name))
    dirs = host.archive_sources(database)
    if copy_name is not None:
        dirs = [host.copies_dir(database) / check_scratch_name("copy", copy_name) / "data" / "pg_wal", *dirs]
    wal_dir = _link_segments(instance.datadir.parent / "waldump", dirs, timeline)
    argv = [instance.bins("pg_waldump"), "-p", str(wal_dir), "-s", start, "-t", str(timeline)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                            env=instance.runas.env(), **instance.runas.popen_kwargs())
    assert proc.stdout is not None and proc.stderr is not None
    records = 0
    for line in proc.stdout:
        records += 1
        yield line
    stderr = proc.stderr.read()
    code = proc.wait()
    # Reading an archive, the end of WAL is the next segment not being there (after at least one record).
    ended = any(marker in stderr for marker in END_OF_WAL) or (records > 0 and "could not find file" in stderr)
    if code != 0 and not ended:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        yield f"{STREAM_ERROR}pg_waldump exited with {code}: {tail}\n"
    else:
        yield f"{STREAM_END} {records}\n"


def _link_segments(scratch: Path, directories: list[Path], timeline: int) -> Path:
    """One directory pg_waldump can read: links to the timeline's segments from every source, first one wins."""
    scratch.mkdir(parents=True, exist_ok=True)
    prefix = f"{timeline:08X}"
    for directory in directories:
        if not directory.is_dir():
            continue
        for wal in directory.iterdir():
            if len(wal.name) == 24 and wal.name.startswith(prefix) and not (scratch / wal.name).exists():
                (scratch / wal.name).symlink_to(wal)
    scratch.chmod(0o755)
    return scratch


def _prepare(host: RegionHost, kind: str, name: str, source: Path) -> PgInstance:
    instance = host.scratch(kind, name)
    shutil.rmtree(instance.datadir.parent, ignore_errors=True)  # a preparation that died half-way
    copy_datadir(source, instance.datadir)
    for stale in ("standby.signal", "recovery.signal", "postmaster.pid"):
        (instance.datadir / stale).unlink(missing_ok=True)
    clean_replication_config(instance)  # no primary_conninfo, no synchronous standby it would wait for
    instance.datadir.parent.chmod(0o755)
    return instance


def _restore_command(sources: list[Path]) -> str:
    tries = [f"cp {p}/%f %p" for p in sources]
    return " || ".join(tries) if tries else "false"


def _wait_promoted(instance: PgInstance, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not instance.running:
            raise DatabaseError(f"{instance.name} stopped during recovery: {instance.log_tail(3)}")
        try:
            if not instance.in_recovery():
                return
        except DatabaseError:
            pass
        time.sleep(0.05)
    raise OperationTimeout(f"{instance.name} did not reach its recovery target within {timeout:.0f}s")


def _recovered_to(instance: PgInstance) -> str:
    """The end of the WAL replayed from the archive (the promotion's switchpoint in the new history file)."""
    rows = instance.query("select name from pg_ls_waldir() where name like '%%.history' order by name desc limit 1")
    if rows:
        text = str(instance.scalar("select pg_read_file(%s)", (f"pg_wal/{rows[0]['name']}",)))
        lines = [line.split() for line in text.splitlines() if line.strip() and line.split()[0].isdigit()]
        if lines:
            return lines[-1][1]
    return str(instance.scalar("select pg_current_wal_lsn()::text"))
