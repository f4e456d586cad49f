"""Read pg_waldump's text output: which transactions committed after a point, and which heap tuples they touched.

pg_waldump shows no column values, but it shows every heap record's relation file, block and offset, and each
commit's xid, subtransactions and time; with those, row values are looked up on the copy (live versions, by
location and xmin) and before-images on the new writer (same file, same location, same version). Its exit
status is 1 at the end of WAL ("invalid record length"): the output is parsed anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

BLCKSZ = 8192
SHORT_PAGE_HEADER = 24
LONG_PAGE_HEADER = 40
MAXALIGN = 8

_RECORD = re.compile(
    r"rmgr: (?P<rmgr>\S+)\s+len \(rec/tot\):\s*(?P<rec>\d+)/\s*(?P<tot>\d+), tx:\s*(?P<xid>\d+), "
    r"lsn: (?P<lsn>[0-9A-F]+/[0-9A-F]+), prev [0-9A-F]+/[0-9A-F]+, desc: (?P<desc>.*)$"
)
_BLOCK = re.compile(r"blkref #(?P<id>\d+): rel (?P<spc>\d+)/(?P<db>\d+)/(?P<rel>\d+)(?: fork (?P<fork>\w+))? "
                    r"blk (?P<blk>\d+)")
_OFF = re.compile(r"(?<![_\w])off: (\d+)")
_OLD_OFF = re.compile(r"old_off: (\d+)")
_NEW_OFF = re.compile(r"new_off: (\d+)")
_NTUPLES = re.compile(r"ntuples: (\d+)")
_RELIDS = re.compile(r"relids: \[([\d, ]*)\]")
_COMMIT = re.compile(r"^(?P<kind>COMMIT|ABORT)(?:_PREPARED)? (?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \w+)"
                     r"(?P<rest>.*)$")
_SUBXACTS = re.compile(r"subxacts: ([\d ]+)")


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def record_end(start: int, total_len: int, segment_size: int = 16 * 1024 * 1024) -> int:
    """Where a WAL record ends (what decoding calls its end LSN), crossing page headers as the reader does."""
    room = BLCKSZ - start % BLCKSZ
    if total_len <= room:
        return start + _align(total_len)
    remaining = total_len - room
    page = start - start % BLCKSZ + BLCKSZ
    while True:
        header = LONG_PAGE_HEADER if page % segment_size == 0 else SHORT_PAGE_HEADER
        if remaining <= BLCKSZ - header:
            return page + header + _align(remaining)
        remaining -= BLCKSZ - header
        page += BLCKSZ


def _align(n: int) -> int:
    return (n + MAXALIGN - 1) // MAXALIGN * MAXALIGN


@dataclass(frozen=True)
class HeapOp:
    """One heap tuple change: where (relation file, block, offset) and, for updates, where it came from."""

    kind: str  # insert | update | delete | multi_insert | truncate
    lsn: int
    xid: int
    spc: int
    db: int
    filenode: int
    blk: int
    off: int | None
    old_blk: int | None = None
    old_off: int | None = None
    ntuples: int = 0
    relids: tuple[int, ...] = ()


@dataclass
class WalTransaction:
    xid: int
    subxids: tuple[int, ...] = ()
    commit_start: int = 0
    commit_end: int = 0
    commit_time: str | None = None
    ops: list[HeapOp] = field(default_factory=list)

    @property
    def xids(self) -> tuple[int, ...]:
        return (self.xid, *self.subxids)


@dataclass(frozen=True)
class WalScan:
    committed: tuple[WalTransaction, ...]  # in commit order
    aborted: int
    open_xids: tuple[int, ...]  # wrote records after the point but never committed or aborted (in flight at a crash)
    records: int
    last_lsn: int | None


def parse_record(line: str) -> dict[str, str] | None:
    match = _RECORD.match(line)
    return None if match is None else match.groupdict()


def heap_op(rmgr: str, desc: str, xid: int, lsn: int) -> HeapOp | None:
    verb = desc.split(" ", 1)[0]
    base = verb.removesuffix("+INIT")
    blocks = {int(m["id"]): m for m in _BLOCK.finditer(desc) if m["fork"] in (None, "main")}
    if rmgr == "Heap" and base == "TRUNCATE":
        relids = _RELIDS.search(desc)
        ids = tuple(int(x) for x in relids.group(1).replace(",", " ").split()) if relids else ()
        return HeapOp("truncate", lsn, xid, 0, 0, 0, 0, None, relids=ids)
    if not blocks or 0 not in blocks:
        return None
    b0 = blocks[0]
    spc, db, rel, blk = int(b0["spc"]), int(b0["db"]), int(b0["rel"]), int(b0["blk"])
    if rmgr == "Heap" and base in ("INSERT", "DELETE"):
        off = _OFF.search(desc)
        return HeapOp(base.lower(), lsn, xid, spc, db, rel, blk, int(off.group(1)) if off else None)
    if rmgr == "Heap" and base in ("UPDATE", "HOT_UPDATE"):
        old_off, new_off = _OLD_OFF.search(desc), _NEW_OFF.search(desc)
        old_blk = int(blocks[1]["blk"]) if 1 in blocks else blk
        return HeapOp("update", lsn, xid, spc, db, rel, blk, int(new_off.group(1)) if new_off else None,
                      old_blk=old_blk, old_off=int(old_off.group(1)) if old_off else None)
    if rmgr == "Heap2" and base == "MULTI_INSERT":
        ntuples = _NTUPLES.search(desc)
        n = int(ntuples.group(1)) if ntuples else 0
        # +INIT: a fresh page filled from offset 1; otherwise the offsets are only in the block data
        return HeapOp("multi_insert", lsn, xid, spc, db, rel, blk, 1 if verb.endswith("+INIT") else None, ntuples=n)
    return None


def scan(lines: Iterable[str], database_oid: int, segment_size: int = 16 * 1024 * 1024) -> WalScan:
    """Group heap records of ``database_oid`` by top-level transaction and keep those that committed."""
    ops: dict[int, list[HeapOp]] = {}
    committed: list[WalTransaction] = []
    aborted = records = 0
    last: int | None = None
    for line in lines:
        rec = parse_record(line)
        if rec is None:
            continue
        records += 1
        xid, lsn = int(rec["xid"]), _lsn(rec["lsn"])
        last = lsn
        if rec["rmgr"] == "Transaction":
            done = _COMMIT.match(rec["desc"])
            if done is None:
                continue
            sub = _SUBXACTS.search(done["rest"])
            subxids = tuple(int(x) for x in sub.group(1).split()) if sub else ()
            mine = [op for x in (xid, *subxids) for op in ops.pop(x, [])]
            if done["kind"] == "ABORT":
                aborted += 1
                continue
            mine.sort(key=lambda op: op.lsn)
            committed.append(WalTransaction(
                xid, subxids, lsn, record_end(lsn, int(rec["tot"]), segment_size), _time(done["at"]), mine))
        elif xid and rec["rmgr"] in ("Heap", "Heap2"):
            op = heap_op(rec["rmgr"], rec["desc"], xid, lsn)
            if op is not None and (op.kind == "truncate" or op.db == database_oid):
                ops.setdefault(xid, []).append(op)
    return WalScan(tuple(committed), aborted, tuple(sorted(ops)), records, last)


def _time(text: str) -> str:
    """``2026-11-29 15:17:48.843917 UTC`` -> ISO 8601."""
    stamp, _, zone = text.rpartition(" ")
    try:
        parsed = datetime.fromisoformat(stamp + ("+00:00" if zone == "UTC" else ""))
    except ValueError:
        return text
    return parsed.isoformat()
