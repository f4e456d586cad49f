"""The fallbacks on fakes: following tuples through pg_waldump's records, and attributing keyed-diff differences."""

from __future__ import annotations

from regionctl.reconcile.keyeddiff import as_transactions, attribute, plan_bits
from regionctl.reconcile.waldump import HeapOp, WalScan, WalTransaction
from regionctl.reconcile.walmethod import capture
from tests.unit.reconcile.fakes import FakeSide, table

ORD = "public.orders"
TABLES = {ORD: table(ORD, ("id", "total"), ("id",), oid=10, filenode=200)}
SHARED = "2026-11-29 10:00:00+00"


def op(kind: str, xid: int, lsn: int, blk: int, off: int | None, old: tuple[int, int] | None = None) -> HeapOp:
    return HeapOp(kind, lsn, xid, 1663, 5, 200, blk, off, old[0] if old else None, old[1] if old else None)


def test_wal_capture_follows_rows_through_inserts_updates_and_deletes() -> None:
    copy = FakeSide(TABLES, commits={"100": SHARED, "501": "t1", "502": "t2", "503": "t3"})
    new = FakeSide(TABLES, commits={"100": SHARED})
    new.put(ORD, {"id": "old1", "total": "1"}, "100", (0, 1))  # pre-divergence rows, same file, same place
    new.put(ORD, {"id": "old2", "total": "1"}, "100", (0, 2))
    copy.put(ORD, {"id": "new1", "total": "7"}, "502", (1, 2))  # inserted by 501 at (1,1), updated by 502 to (1,2)
    copy.put(ORD, {"id": "old1", "total": "5"}, "501", (1, 3))  # old1 updated by 501
    copy.put(ORD, {"id": "early", "total": "3"}, "503", (2, 1))  # written before the divergence by 503
    scan = WalScan(committed=(
        WalTransaction(501, (), 1000, 1048, "t1", [op("insert", 501, 900, 1, 1),
                                                   op("update", 501, 910, 1, 3, (0, 1))]),
        WalTransaction(502, (), 2000, 2048, "t2", [op("update", 502, 1900, 1, 2, (1, 1)),
                                                   op("delete", 502, 1910, 0, 2)]),
        WalTransaction(503, (), 3000, 3048, "t3", [op("insert", 503, 2900, 1, 4), op("delete", 503, 2910, 1, 4)]),
    ), aborted=0, open_xids=(), records=9, last_lsn=3000)
    result = capture(scan, copy, new, timeline=1)
    got = [[(c.kind, c.action, (c.new or c.old or {}).get("id"), (c.new or {}).get("total")) for c in t.changes]
           for t in result.captured]
    assert got == [
        [("insert", "apply", "new1", "7"), ("update", "apply", "old1", "5")],
        [("update", "covered", "new1", None), ("delete", "apply", "old2", None)],
        [("insert", "covered", None, None), ("delete", "covered", None, None), ("insert", "apply", "early", "3")],
    ]
    assert [t.id for t in result.captured] == ["tl1:0/418", "tl1:0/800", "tl1:0/BE8"]
    assert result.manual == 0


def test_a_deleted_row_the_new_writer_no_longer_holds_is_marked_for_manual_review() -> None:
    copy = FakeSide(TABLES, commits={"501": "t1"})
    new = FakeSide(TABLES, commits={"900": "west"})
    new.put(ORD, {"id": "x", "total": "9"}, "900", (0, 1))  # rewritten on the new writer since: not the same version
    scan = WalScan((WalTransaction(501, (), 1000, 1048, "t1", [op("delete", 501, 900, 0, 1)]),), 0, (), 2, 1000)
    result = capture(scan, copy, new, timeline=1)
    change = result.captured[0].changes[0]
    assert change.action == "manual" and "no longer on the new writer" in (change.note or "") and result.manual == 1


def test_keyed_diff_attribution_tells_lost_changes_from_changes_on_the_new_writer() -> None:
    copy = FakeSide(TABLES, commits={"100": SHARED, "501": "2026-11-29 10:00:05+00"})
    new = FakeSide(TABLES, commits={"100": SHARED, "501": "2026-11-29 10:09:00+00", "900": "west"})
    copy.put(ORD, {"id": "lost-insert", "total": "1"}, "501")
    copy.put(ORD, {"id": "lost-update", "total": "2"}, "501")
    new.put(ORD, {"id": "lost-update", "total": "1"}, "100")
    new.put(ORD, {"id": "lost-delete", "total": "1"}, "100")
    copy.put(ORD, {"id": "west-update", "total": "1"}, "100")
    new.put(ORD, {"id": "west-update", "total": "3"}, "900")
    new.put(ORD, {"id": "west-insert", "total": "3"}, "501")  # xid 501 reused on the new writer
    copy.put(ORD, {"id": "west-delete", "total": "1"}, "100")
    copy.put(ORD, {"id": "both", "total": "2"}, "501")
    new.put(ORD, {"id": "both", "total": "3"}, "900")
    keys = tuple((k,) for k in ("lost-insert", "lost-update", "lost-delete", "west-update", "west-insert",
                               "west-delete", "both"))
    found = attribute(ORD, ("id",), keys, copy, new, ("id", "total"))
    assert {(k[0], kind) for _, k, kind, _, _ in found.lost} == {
        ("lost-insert", "insert"), ("lost-update", "update"), ("lost-delete", "delete"), ("both", "update")}
    assert found.new_writer_only == 3 and found.unexplained == ()
    txs = as_transactions(list(found.lost), {ORD: ("id",)})
    assert [t.id for t in txs] == ["diff:2026-11-29 10:00:05+00", "diff:deletes"]
    assert {c.new["id"] for c in txs[0].changes if c.new} == {"lost-insert", "lost-update", "both"}


def test_segment_count_grows_with_the_table() -> None:
    assert plan_bits(0) == 0 and plan_bits(64) == 0 and plan_bits(65) == 1
    assert 2 ** plan_bits(1_000_000) * 64 >= 1_000_000 > 2 ** (plan_bits(1_000_000) - 1) * 64
