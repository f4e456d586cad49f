"""Snapshots: base backups of the writer plus continuous WAL archiving, both copied to the other region.

Each region's writer archives its WAL into that region's archive (basic_archive: atomic, fsynced). Archives
and snapshots are shipped to the other region, so a region whose disk is gone can still be restored from what
its neighbour holds. A snapshot is a plain-format ``pg_basebackup`` plus ``snapshot.json``.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from regionctl.errors import ConflictError
from regionctl.globaldb.members import Cluster, copy_datadir
from regionctl.globaldb.state import StateStore
from regionctl.globaldb.switchover import _load
from regionctl.runtime.osuser import make_owned_dir


@dataclass(frozen=True)
class Snapshot:
    id: str
    database: str
    taken_in: str  # region of the writer it was taken from
    held_in: tuple[str, ...]  # regions holding a copy
    start_lsn: str
    end_lsn: str
    timeline: int
    started_at: float
    finished_at: float  # the snapshot is consistent no later than this
    bytes: int
    seconds: float
    label: str | None = None  # a caller's name for it (runbooks); taking a label twice returns the first


@dataclass(frozen=True)
class RestoredInstance:
    id: str
    database: str
    region: str
    snapshot: str
    target: str
    address: str
    dsn: str
    datadir: str
    recovered_to_lsn: str
    archiving: str
    seconds: float


def snapshot_root(cluster: Cluster, region: str) -> Path:
    return cluster.topo.paths.snapshots(region, cluster.name) / "base"


def replica_archive(cluster: Cluster, region: str, origin: str) -> Path:
    """Where ``region`` keeps its copy of ``origin``'s WAL archive."""
    return cluster.topo.paths.region(region) / "archive-replica" / cluster.name / origin


def archive_sources(cluster: Cluster, region: str) -> list[Path]:
    """Every archive a restore in ``region`` may read: its own, then its copies of the other regions'."""
    sources = [cluster.archive_dir(region)]
    sources += [replica_archive(cluster, region, other) for other in cluster.regions if other != region]
    return [p for p in sources if p.exists()]


def ship_archive(cluster: Cluster, origin: str, to_region: str) -> int:
    """Copy WAL files archived in ``origin`` that ``to_region`` does not hold yet; return how many."""
    source = cluster.archive_dir(origin)
    target = replica_archive(cluster, to_region, origin)
    if not target.exists():
        make_owned_dir(target, cluster.topo.runas)
    copied = 0
    for wal in sorted(source.iterdir()):
        if wal.name.startswith("archtemp") or wal.name.endswith((".tmp", ".part")):
            continue  # basic_archive's in-flight temporary files
        dest = target / wal.name
        if not dest.exists():
            part = target / (wal.name + ".part")
            shutil.copy2(wal, part)
            cluster.topo.runas.chown(part)
            part.rename(dest)
            copied += 1
    return copied


def take_snapshot(cluster: Cluster, store: StateStore, label: str | None = None) -> Snapshot:
    existing = [s for s in list_snapshots(cluster) if label is not None and s.label == label]
    if existing:
        return existing[0]
    state = _load(store, cluster.name)
    writer = cluster.member(state.writer)
    if not writer.running:
        raise ConflictError(f"{cluster.name} writer {writer.name} is not running; a snapshot needs it")
    snap_id = f"snap-{cluster.name}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:4]}"
    directory = snapshot_root(cluster, state.writer) / snap_id
    started_at = time.time()
    make_owned_dir(directory, writer.runas, 0o755)
    writer.run([writer.bins("pg_basebackup"), "-d", writer.conninfo(), "-D", str(directory / "data"),
                "-X", "stream", "-c", "fast"], timeout=3600)
    finished_at = time.time()
    wal = json.loads((directory / "data" / "backup_manifest").read_text())["WAL-Ranges"][-1]
    size = sum(p.stat().st_size for p in (directory / "data").rglob("*") if p.is_file())
    snap = Snapshot(
        id=snap_id, database=cluster.name, taken_in=state.writer, held_in=(state.writer,),
        start_lsn=wal["Start-LSN"], end_lsn=wal["End-LSN"], timeline=int(wal["Timeline"]),
        started_at=started_at, finished_at=finished_at, bytes=size, seconds=round(finished_at - started_at, 3),
        label=label,
    )
    (directory / "snapshot.json").write_text(json.dumps(asdict(snap), indent=2))
    for other in cluster.regions:
        if other != state.writer:
            copy_datadir(directory, snapshot_root(cluster, other) / snap_id)
            ship_archive(cluster, state.writer, other)
    return _with_holders(cluster, snap)


def list_snapshots(cluster: Cluster) -> list[Snapshot]:
    found: dict[str, Snapshot] = {}
    for region in cluster.regions:
        for meta in sorted(snapshot_root(cluster, region).glob("*/snapshot.json")):
            raw = json.loads(meta.read_text())
            raw["held_in"] = tuple(raw["held_in"])
            found.setdefault(raw["id"], Snapshot(**raw))
    return sorted((_with_holders(cluster, s) for s in found.values()), key=lambda s: s.finished_at)


def _with_holders(cluster: Cluster, snap: Snapshot) -> Snapshot:
    holders = tuple(r for r in cluster.regions if (snapshot_root(cluster, r) / snap.id / "snapshot.json").exists())
    return Snapshot(**{**asdict(snap), "held_in": holders})
