"""Second method, when the slot cannot be used: pg_waldump for the transactions, row lookups for the values.

pg_waldump lists every transaction that committed after the divergence point and the heap tuples it touched
(file, block, offset). Following tuple locations through the lost records gives each row's story: created or
pre-existing, updated, deleted. Values come from the copy (the live version at the row's final location, with an
xmin of that transaction) and before-images from the new writer (the same file and location, holding the same
version: shared history). Values of intermediate versions are gone; such changes are marked ``covered`` by the
later change that carries the row's final state. Live rows whose xmin is a lost transaction but whose record
came before the scan start (transactions that began before the divergence) are found by a sweep on xmin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from regionctl.globaldb.lsn import format_lsn
from regionctl.reconcile.catalog import TableInfo
from regionctl.reconcile.classify import Captured, transaction_id
from regionctl.reconcile.model import DELETE, INSERT, UPDATE, Row
from regionctl.reconcile.testdecoding import DecodedChange
from regionctl.reconcile.versions import RowSource, Version, is_shared
from regionctl.reconcile.waldump import HeapOp, WalScan

DEFAULT_TABLESPACE = 1663


@dataclass
class Ident:
    """One row's life in the lost window, followed through tuple locations."""

    table: str
    origin: tuple[int, int] | None  # location of the pre-divergence version it started from
    ops: list[tuple[int, str, int]] = field(default_factory=list)  # (transaction index, kind, record LSN)
    final: tuple[int, int] | None = None


@dataclass(frozen=True)
class WalCapture:
    captured: tuple[Captured, ...]
    manual: int  # changes whose row could not be identified
    records: int
    open_xids: tuple[int, ...]
    warnings: tuple[str, ...]


def capture(scan: WalScan, copy: RowSource, new: RowSource, timeline: int | None) -> WalCapture:
    files = {(t.tablespace, t.filenode): name for name, t in copy.tables.items() if t.filenode}
    by_oid = {t.oid: name for name, t in copy.tables.items()}
    idents: list[Ident] = []
    emitted: dict[int, list[tuple[int, DecodedChange]]] = {i: [] for i in range(len(scan.committed))}
    live: dict[tuple[str, int, int], Ident] = {}
    warnings: list[str] = []
    for t, tx in enumerate(scan.committed):
        for op in tx.ops:
            if op.kind == "truncate":
                for oid in op.relids:
                    if oid in by_oid:
                        emitted[t].append((op.lsn, DecodedChange(by_oid[oid], "truncate", tables=(by_oid[oid],),
                                                                 action="manual", note="lost TRUNCATE")))
                continue
            table = files.get((0 if op.spc == DEFAULT_TABLESPACE else op.spc, op.filenode))
            if table is not None:  # else TOAST, catalogs, other files
                _follow(op, table, t, live, idents, warnings)
    finals, origins = _lookup(idents, scan, copy, new)
    for ident in idents:
        for t, lsn, change in _story(ident, finals.get(id(ident)), origins.get(id(ident)), copy.tables[ident.table]):
            emitted[t].append((lsn, change))
    extras = _sweep(scan, copy, new, finals, idents)
    captured = []
    manual = 0
    for t, tx in enumerate(scan.committed):
        ordered = [c for _, c in sorted(emitted[t], key=lambda item: item[0])] + extras.get(t, [])
        manual += sum(1 for c in ordered if c.action == "manual")
        if ordered:
            captured.append(Captured(transaction_id(timeline, tx.commit_end), tx.commit_end, tx.commit_time,
                                     tx.xid, tuple(ordered)))
    return WalCapture(tuple(captured), manual, scan.records, scan.open_xids, tuple(warnings))


def _follow(op: HeapOp, table: str, t: int, live: dict[tuple[str, int, int], Ident], idents: list[Ident],
            warnings: list[str]) -> None:
    """Move the row identities along one heap record."""
    if op.off is None and op.kind != "multi_insert":
        warnings.append(f"{op.kind} at {format_lsn(op.lsn)} on {table} block {op.blk} has no offset")
        return
    if op.kind in ("insert", "multi_insert"):
        if op.off is None:
            return  # offsets only in block data: the sweep by xmin finds these rows
        for i in range(max(op.ntuples, 1)):
            ident = Ident(table, None, [(t, INSERT, op.lsn)], (op.blk, op.off + i))
            live[(table, op.blk, op.off + i)] = ident
            idents.append(ident)
        return
    blk, off = (op.old_blk, op.old_off) if op.kind == "update" else (op.blk, op.off)
    origin = (blk, off) if blk is not None and off is not None else None
    found = live.pop((table, *origin), None) if origin is not None else None
    if found is None:
        found = Ident(table, origin)
        idents.append(found)
    ident = found
    ident.ops.append((t, UPDATE if op.kind == "update" else DELETE, op.lsn))
    if op.kind == "update":
        ident.final = (op.blk, op.off)  # type: ignore[assignment]
        live[(table, op.blk, op.off)] = ident  # type: ignore[index]
    else:
        ident.final = None


def _lookup(idents: list[Ident], scan: WalScan, copy: RowSource, new: RowSource
            ) -> tuple[dict[int, Version], dict[int, Version]]:
    """Final versions on the copy (xmin of the last writer) and origin versions on the new writer (shared)."""
    finals: dict[int, Version] = {}
    origins: dict[int, Version] = {}
    by_table: dict[str, list[Ident]] = {}
    for ident in idents:
        by_table.setdefault(ident.table, []).append(ident)
    for table, group in by_table.items():
        found = copy.by_ctids(table, [i.final for i in group if i.final is not None])
        for ident in group:
            version = found.get(ident.final) if ident.final else None
            if version is not None and int(version.xmin) in scan.committed[ident.ops[-1][0]].xids:
                finals[id(ident)] = version
        same_file = table in new.tables and new.tables[table].filenode == copy.tables[table].filenode
        if not same_file:
            continue
        before = new.by_ctids(table, [i.origin for i in group if i.origin is not None])
        for ident in group:
            version = before.get(ident.origin) if ident.origin else None
            if version is not None and is_shared(version, copy):
                origins[id(ident)] = version
    return finals, origins


def _story(ident: Ident, final: Version | None, origin: Version | None, info: TableInfo
           ) -> list[tuple[int, int, DecodedChange]]:
    """The changes one row went through, with values where the copy or the new writer still has them."""
    values = None if final is None else final.values
    known = values if values is not None else (None if origin is None else origin.values)
    key: Row | None = None if known is None else {c: known.get(c) for c in info.key}
    return [(t, lsn, _change(ident, i, kind, values, key)) for i, (t, kind, lsn) in enumerate(ident.ops)]


def _change(ident: Ident, i: int, kind: str, values: Row | None, key: Row | None) -> DecodedChange:
    last = len(ident.ops) - 1
    created = ident.origin is None and ident.ops[0][1] == INSERT
    if created and values is None:
        return DecodedChange(ident.table, kind, action="covered",
                             note="created and deleted within the lost window: no net effect")
    if created and i == 0:
        note = None if last == 0 else "values as the last lost change left the row"
        return DecodedChange(ident.table, INSERT, new=dict(values or {}), note=note)
    if i < last or created:
        return DecodedChange(ident.table, kind, new=key, action="covered",
                             note="intermediate version; a later lost change carries its effect")
    if kind == DELETE:
        if key is None:
            return DecodedChange(ident.table, DELETE, action="manual",
                                 note=f"deleted row at {ident.origin} is no longer on the new writer in the version "
                                      "the old writer deleted")
        return DecodedChange(ident.table, DELETE, old=key)
    if values is None:
        return DecodedChange(ident.table, UPDATE, old=key, action="manual",
                             note=f"updated row at {ident.final} not found on the copy")
    return DecodedChange(ident.table, UPDATE, new=dict(values))


def _sweep(scan: WalScan, copy: RowSource, new: RowSource, finals: dict[int, Version], idents: list[Ident]
           ) -> dict[int, list[DecodedChange]]:
    """Live rows written by lost transactions that no record after the scan start explains."""
    owner = {x: t for t, tx in enumerate(scan.committed) for x in tx.xids}
    tables = {i.table for i in idents}
    if any(not tx.ops for tx in scan.committed) or not tables:
        tables = set(copy.tables)  # a transaction with no record after the start: look everywhere
    explained = {(i.table, finals[id(i)].ctid) for i in idents if id(i) in finals}
    extras: dict[int, list[DecodedChange]] = {}
    for table in sorted(tables):
        info = copy.tables[table]
        found = [v for v in copy.by_xmins(table, sorted(owner)) if (table, v.ctid) not in explained]
        if not found:
            continue
        keys = [tuple(v.values.get(c) for c in info.key) for v in found] if info.key else []
        present = new.by_keys(table, info.key, keys) if keys else {}
        for version in found:
            key = tuple(version.values.get(c) for c in info.key)
            existing = present.get(key)
            kind = UPDATE if existing is not None and is_shared(existing, copy) else INSERT
            extras.setdefault(owner[int(version.xmin)], []).append(DecodedChange(
                table, kind, new=dict(version.values), note="its WAL record precedes the divergence point"))
    return extras
