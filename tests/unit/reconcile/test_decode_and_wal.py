"""The divergence filter, the slot verdicts, and reading pg_waldump's output."""

from __future__ import annotations

from pathlib import Path

from regionctl.globaldb.lsn import parse_lsn
from regionctl.reconcile.decode import DecodedTransaction, is_lost, judge_slot, split_lost
from regionctl.reconcile.waldump import record_end, scan

DIV = parse_lsn("0/6597BD8")


def stream(*txs: tuple[str, int, list[str]]) -> list[tuple[str, str]]:
    rows = []
    for commit_lsn, xid, changes in txs:
        rows.append(("0/1", f"BEGIN {xid}"))
        rows += [("0/1", c) for c in changes]
        rows.append((commit_lsn, f"COMMIT {xid} (at 2026-11-29 15:17:47.837934+00)"))
    return rows


def test_a_transaction_is_lost_exactly_when_its_commit_ends_after_the_divergence_point() -> None:
    assert is_lost(DIV + 1, DIV) and not is_lost(DIV, DIV) and not is_lost(DIV - 8, DIV)
    rows = stream(
        ("0/6597BD0", 10, ["table public.t: INSERT: id[integer]:1"]),  # replicated
        ("0/6597BD8", 11, ["table public.t: INSERT: id[integer]:2"]),  # ends exactly at the point: replicated
        ("0/6597C08", 12, ["table public.t: INSERT: id[integer]:3", "table public.t: DELETE: id[integer]:0"]),
        ("0/6597D00", 12, ["message: transactional: 1 prefix: x, sz: 1 content:y"]),  # xid reused: no rows
        ("0/6597E00", 11, ["table public.t: UPDATE: id[integer]:2"]),  # xid 11 again, lost this time
    )
    out = list(split_lost(rows, DIV))
    lost = [x for x in out if isinstance(x, DecodedTransaction)]
    assert [(t.xid, t.commit_lsn) for t in lost] == [(12, parse_lsn("0/6597C08")), (11, parse_lsn("0/6597E00"))]
    assert [c.kind for c in lost[0].changes] == ["insert", "delete"]
    assert sum(1 for x in out if not isinstance(x, DecodedTransaction)) == 2
    assert lost[0].commit_time == "2026-11-29T15:17:47.837934+00:00"


def test_the_slot_is_used_only_when_it_can_show_every_lost_transaction() -> None:
    good = {"database": "orders", "plugin": "test_decoding", "wal_status": "reserved",
            "invalidation_reason": None, "confirmed_flush_lsn": "0/6590000"}
    assert judge_slot(good, "orders", DIV).usable
    assert judge_slot({**good, "confirmed_flush_lsn": "0/6597BD8"}, "orders", DIV).usable
    cases = {
        "no slot": (None, "has no slot"),
        "other db": ({**good, "database": "postgres"}, "belongs to database 'postgres'"),
        "plugin": ({**good, "plugin": "pgoutput"}, "not test_decoding"),
        "lost": ({**good, "wal_status": "lost", "invalidation_reason": "wal_removed"}, "wal_removed"),
        "ahead": ({**good, "confirmed_flush_lsn": "0/6600000"}, "past the divergence point"),
    }
    for row, reason in cases.values():
        verdict = judge_slot(row, "orders", DIV)
        assert not verdict.usable and reason in verdict.reason


def test_record_end_adds_alignment_and_the_page_headers_it_crosses() -> None:
    assert record_end(0x1734210, 46) == 0x1734240  # measured: waldump start vs test_decoding COMMIT lsn
    assert record_end(0x1734210, 48) == 0x1734240
    page = 0x2000
    assert record_end(page - 16, 46) == page + 24 + 32  # 16 bytes on the first page, 30 after a short header
    seg = 16 * 1024 * 1024
    assert record_end(seg - 16, 46) == seg + 40 + 32  # the first page of a segment has a long header
    assert record_end(page - 16, 16) == page  # ends exactly at the page end
    assert record_end(page - 16, 16 + 8168 + 8) == page + 8192 + 24 + 8  # spans a whole page


WAL = (Path(__file__).parent / "data" / "waldump.txt").read_text()  # pg_waldump 18 output, trimmed


def test_waldump_output_groups_heap_records_by_top_level_transaction() -> None:
    result = scan(WAL.splitlines(), database_oid=5)
    assert [tx.xid for tx in result.committed] == [776, 779]
    first, second = result.committed
    assert first.subxids == (777,) and first.commit_start == 0x1B85668 and first.commit_end == 0x1B856A0
    assert first.commit_time == "2026-11-29T15:58:59.117366+00:00"
    assert [(op.kind, op.off, op.old_off) for op in first.ops] == [("insert", 6, None), ("insert", 7, None),
                                                                   ("update", 8, 6)]
    assert [(op.kind, op.blk, op.off) for op in second.ops] == [("delete", 0, 8), ("update", 4, 1),
                                                                ("multi_insert", 7, 1)]
    assert second.ops[1].old_blk == 2 and second.ops[2].ntuples == 5  # other database's insert left out
    assert result.aborted == 1 and result.open_xids == (775,) and result.records == 13
