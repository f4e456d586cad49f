"""Snapshots (plain base backups of the region's writer) and WAL archives, and their copies in other regions.

Data moves agent to agent: a region that should hold a copy pulls it from the region that has it, over HTTP
through whatever joins the two (the link emulator here, the network between hosts in real regions). A pulled
file appears under its final name only once complete (written as ``.part``, then renamed).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from regionctl.agent.client import AgentClient
from regionctl.agent.host import RegionHost, check_scratch_name, tree_bytes
from regionctl.agent.members import Done
from regionctl.errors import ConflictError, InputError, NotFoundError, ProcessError
from regionctl.runtime.osuser import make_owned_dir

WAL_FILE = re.compile(r"^[0-9A-F]{8}(?:[0-9A-F]{16}(?:\.partial|\.[0-9A-F]{8}\.backup)?|\.history)$")
CHUNK = 1 << 20


def take_snapshot(host: RegionHost, database: str, snap_id: str, label: str | None) -> dict[str, Any]:
    """A base backup of this region's running writer as ``snap_id`` (taking the same id again returns it)."""
    check_scratch_name("id", snap_id)
    directory = host.snapshot_root(database) / snap_id
    if (directory / "snapshot.json").exists():
        return dict(json.loads((directory / "snapshot.json").read_text()))
    member = host.member(database)
    if not member.running or member.in_recovery():
        raise ConflictError(f"{member.name} is not a running writer; a snapshot is taken from the writer")
    shutil.rmtree(directory, ignore_errors=True)
    make_owned_dir(directory, member.runas, 0o755)
    started_at = time.time()
    member.run([member.bins("pg_basebackup"), "-d", member.conninfo(), "-D", str(directory / "data"),
                "-X", "stream", "-c", "fast"], timeout=3600)
    finished_at = time.time()
    wal = json.loads((directory / "data" / "backup_manifest").read_text())["WAL-Ranges"][-1]
    meta = {"id": snap_id, "database": database, "taken_in": host.region, "start_lsn": wal["Start-LSN"],
            "end_lsn": wal["End-LSN"], "timeline": int(wal["Timeline"]), "started_at": started_at,
            "finished_at": finished_at, "bytes": tree_bytes(directory / "data"),
            "seconds": round(finished_at - started_at, 3), "label": label}
    (directory / "snapshot.json").write_text(json.dumps(meta, indent=2))
    return meta


def list_snapshots(host: RegionHost, database: str) -> list[dict[str, Any]]:
    root = host.snapshot_root(database)
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/snapshot.json"))] if root.exists() else []


def snapshot_tar(host: RegionHost, database: str, snap_id: str) -> Iterator[bytes]:
    """The snapshot's directory as a tar stream (owners and modes kept)."""
    directory = host.snapshot_root(database) / check_scratch_name("id", snap_id)
    if not (directory / "snapshot.json").exists():
        raise NotFoundError(f"snapshot {snap_id} is not held in {host.region}")
    proc = subprocess.Popen(["tar", "-C", str(directory), "-cf", "-", "."], stdout=subprocess.PIPE)
    assert proc.stdout is not None

    def stream() -> Iterator[bytes]:
        try:
            while chunk := proc.stdout.read(CHUNK):  # type: ignore[union-attr]
                yield chunk
        finally:
            proc.stdout.close()  # type: ignore[union-attr]
            proc.wait()

    return stream()


def pull_snapshot(host: RegionHost, database: str, snap_id: str, source: AgentClient) -> Done:
    """Copy snapshot ``snap_id`` from the agent ``source`` unless this region holds it already."""
    target = host.snapshot_root(database) / check_scratch_name("id", snap_id)
    if (target / "snapshot.json").exists():
        return Done("held", f"{host.region} already holds {snap_id}")
    part = target.with_name(target.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    proc = subprocess.Popen(["tar", "-C", str(part), "-xf", "-"], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    try:
        for chunk in source.stream("GET", f"/v1/members/{database}/snapshots/{snap_id}/tar"):
            proc.stdin.write(chunk)
    finally:
        proc.stdin.close()
        code = proc.wait()
    if code != 0 or not (part / "snapshot.json").exists():
        shutil.rmtree(part, ignore_errors=True)
        raise ProcessError("tar", code, proc.stderr.read().decode(errors="replace"))
    part.rename(target)
    return Done("copied", f"pulled {snap_id} ({tree_bytes(target):,} bytes)")


def archive_files(host: RegionHost, database: str) -> list[str]:
    """Complete WAL files in this region's own archive (basic_archive's temporary files left out)."""
    directory = host.archive_dir(database)
    return sorted(p.name for p in directory.iterdir() if WAL_FILE.match(p.name))


def archive_file(host: RegionHost, database: str, name: str) -> Path:
    if not WAL_FILE.match(name):
        raise InputError(f"name: {name!r} is not a WAL file name")
    path = host.archive_dir(database) / name
    if not path.exists():
        raise NotFoundError(f"{name} is not in {host.region}'s archive of {database}")
    return path


def pull_archive(host: RegionHost, database: str, origin: str, source: AgentClient) -> Done:
    """Copy the WAL files ``origin``'s archive holds and this region's copy of it does not."""
    if origin == host.region:
        raise InputError(f"origin: {origin} is this region; its archive is already here")
    target = host.replica_archive(database, origin)
    have = {p.name for p in target.iterdir()}
    missing = [n for n in source.call("GET", f"/v1/members/{database}/archive")["files"] if n not in have]
    for name in missing:
        part = target / (name + ".part")
        with open(part, "wb") as handle:
            for chunk in source.stream("GET", f"/v1/members/{database}/archive/{name}"):
                handle.write(chunk)
        host.topo.runas.chown(part)
        part.rename(target / name)
    return Done("copied" if missing else "current", f"{len(missing)} WAL files copied from {origin}",
                {"copied": len(missing)})
