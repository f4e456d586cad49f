"""The report around the changes: window, counts, schema diff, lens, renderings, and the store on disk."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from regionctl.errors import InputError, NotFoundError
from regionctl.reconcile.assemble import counts, window
from regionctl.reconcile.catalog import Column
from regionctl.reconcile.lens import LensConfig, build
from regionctl.reconcile.model import Conflict, LostTransaction, Report, RowChange, SchemaDiff, TableMeta
from regionctl.reconcile.render import render
from regionctl.reconcile.schema import schema_diff
from regionctl.reconcile.store import ReportStore
from tests.unit.reconcile.fakes import table

ORD, ITM = "public.customer_order", "public.customer_order_item"
TXS = (
    LostTransaction("tl1:0/100", "0/100", "2026-11-29T10:00:01+00:00", 7, (ORD, ITM), (
        RowChange(ORD, "insert", {"id": "o1"}, new={"id": "o1", "email": "a@x", "total": "9.50"}),
        RowChange(ITM, "insert", {"order_id": "o1", "product_id": "p"},
                  new={"order_id": "o1", "product_id": "p", "quantity": "2"}),
    )),
    LostTransaction("tl1:0/200", "0/200", "2026-11-29T10:00:03+00:00", 8, (ORD, ITM), (
        RowChange(ORD, "delete", {"id": "o2"}, old={"id": "o2", "email": "<b>@x", "total": "1.00"},
                  old_source="new_writer"),
        RowChange(ITM, "delete", {"order_id": "o2", "product_id": "q"}, old={"order_id": "o2", "product_id": "q"}),
    )),
)
CONFLICT = Conflict(ORD, {"id": "o2"}, ("tl1:0/200",), ("delete",), "changed", {"id": "o2"}, "changed since")


def report() -> Report:
    lens = LensConfig("orders", "customer_order", "id", ("email", "total"), "customer_order_item", "order_id",
                      ("product_id", "quantity"))
    return Report(
        id="report-x", database="orders", former_writer="us-east-1", new_writer="us-west-2", promotion_id="p1",
        created_at="2026-11-29T10:05:00+00:00", method="slot", method_trail=("slot: fine",), complete=True,
        divergence_lsn="0/80", old_timeline=1, new_timeline=2, source={"kind": "preserved_copy"},
        window=window(TXS, "0/80", "2026-11-29T10:00:00+00:00"), lag_before={"lag_bytes": 10}, counts=counts(TXS),
        tables={ORD: TableMeta({"id": "uuid"}, ("id",))}, transactions=TXS, conflicts=(CONFLICT,),
        schema=SchemaDiff(), lenses={"orders": build(lens, TXS, (CONFLICT,))},
    )


def test_window_and_counts_measure_what_was_lost() -> None:
    r = report()
    assert r.window["rpo_seconds"] == 3.0 and r.window["lost_commits_span_seconds"] == 2.0
    assert r.window["lost_wal_bytes"] == 0x200 - 0x80 and r.window["last_lost_commit_lsn"] == "0/200"
    assert r.counts[ORD] == {"insert": 1, "update": 0, "delete": 1, "truncate": 0}


def test_the_orders_lens_shows_each_lost_order_with_its_lines_email_total_and_conflict() -> None:
    docs = {d["id"]: d for d in report().lenses["orders"]}
    assert docs["o1"]["status"] == "created" and docs["o1"]["email"] == "a@x" and docs["o1"]["total"] == "9.50"
    assert docs["o1"]["lines"] == [{"change": "insert", "product_id": "p", "quantity": "2"}]
    assert docs["o2"]["status"] == "deleted" and docs["o2"]["conflict"] and not docs["o1"]["conflict"]


def test_a_lens_keyed_by_a_column_that_is_not_the_primary_key() -> None:
    products = LensConfig("products", "product", "sku", ("price",))
    txs = (LostTransaction("tl1:0/300", "0/300", None, 9, ("public.product",), (
        RowChange("public.product", "insert", {"id": "7"}, new={"id": "7", "sku": "A-1", "price": "5"}),
        RowChange("public.product", "update", {"id": "7"}, new={"id": "7", "sku": "A-1", "price": "6"},
                  old={"id": "7", "sku": "A-1", "price": "5"}))),)
    assert build(products, txs, ()) == [{"sku": "A-1", "status": "created", "price": "6", "lines": [],
                                         "transactions": ["tl1:0/300"], "conflict": False}]


def test_schema_diff_names_columns_tables_definitions_and_sequences() -> None:
    copy = {ORD: table(ORD, ("id", "email", "channel"), ("id",)), "public.extra": table("public.extra", ("a",), ())}
    new = {ORD: table(ORD, ("id", "email"), ("id",))}
    new[ORD] = new[ORD].__class__(**{**new[ORD].__dict__, "columns": (Column("id", "text", False, None),
                                                                 Column("email", "text", True, None))})
    diff = schema_diff(copy, new, {(ORD, "c"): "CHECK (x)"}, {}, {}, {(ORD, "i"): "CREATE INDEX"}, {"public.s": 40},
                       {"public.s": 30})
    assert [(c.column, c.copy, c.new_writer) for c in diff.columns] == [
        ("channel", "text", None), ("email", "text", "text not null")]
    assert diff.tables_only_in_copy == ("public.extra",) and not diff.empty
    assert diff.constraints[0]["copy"] == "CHECK (x)" and diff.indexes[0]["new_writer"] == "CREATE INDEX"
    assert diff.sequences_ahead_in_copy == ({"sequence": "public.s", "copy": 40, "new_writer": 30},)


def test_renderings_json_round_trips_csv_has_a_row_per_change_html_escapes(tmp_path: Path) -> None:
    r = report()
    from regionctl.reconcile.model import report_from_json

    assert report_from_json(render(r, "json")) == r
    rows = list(csv.DictReader(io.StringIO(render(r, "csv"))))
    assert len(rows) == 4 and rows[2]["conflict"] == "yes" and json.loads(rows[0]["key"]) == {"id": "o1"}
    html = render(r, "html")
    assert "&lt;b&gt;@x" in html and "<b>@x" not in html and "report-x" in html
    with pytest.raises(InputError, match="one of json, csv, html"):
        render(r, "pdf")


def test_the_store_keeps_reports_and_replays_and_lists_them(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    r = report()
    store.save(r)
    assert store.load("report-x") == r and store.exists("report-x")
    assert store.rendering("report-x", "csv").startswith("report_id,")
    store.save_replay("report-x", {"approved_by": "ann", "applied": ["a"]})
    store.save_replay("report-x", {"approved_by": "bob", "applied": []})
    assert [x["approved_by"] for x in store.replays("report-x")] == ["ann", "bob"]
    listed = store.list("orders")
    assert listed[0]["report_id"] == "report-x" and listed[0]["replays"] == 2 and store.list("catalog") == []
    assert store.for_promotion("p1") == ["report-x"]
    with pytest.raises(NotFoundError, match="no reconciliation report 'nope'"):
        store.load("nope")
    with pytest.raises(InputError, match="not a report id"):
        store.load("../etc")


def test_the_api_lists_and_serves_reports_and_renderings(tmp_path: Path) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from regionctl.operators.gate import Gate
    from regionctl.operators.roles import READ
    from regionctl.operators.store import OperatorStore
    from regionctl.reconcile.api import router
    from regionctl.runtime import httperrors

    ReportStore(tmp_path).save(report())
    app = FastAPI()
    httperrors.install(app)
    app.include_router(router(tmp_path, Gate("runbooks", OperatorStore(None, "s3cret-token")).requires(READ)))
    client = TestClient(app)
    auth = {"Authorization": "Bearer s3cret-token"}
    assert [r["report_id"] for r in client.get("/reconcile/reports", params={"database": "orders"}).json()] == \
        ["report-x"]
    summary = client.get("/reconcile/reports/report-x").json()
    assert summary["lost_transactions"] == 2 and summary["replays"] == [] and "transactions" not in summary
    assert summary["resolutions"] == {"refused": 1}  # no proposal recorded: replay would refuse it
    assert client.get("/reconcile/reports/report-x/conflicts").status_code == 401  # rows hold customer data
    conflicts = client.get("/reconcile/reports/report-x/conflicts", headers=auth).json()
    assert [(c["table"], c["key"], c["transactions"]) for c in conflicts] == [(ORD, {"id": "o2"}, ["tl1:0/200"])]
    for fmt in ("json", "csv", "html"):  # the whole report holds customer data
        assert client.get(f"/reconcile/reports/report-x/{fmt}").status_code == 401
        wrong = client.get(f"/reconcile/reports/report-x/{fmt}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    full = client.get("/reconcile/reports/report-x/json", headers=auth).json()
    assert len(full["transactions"]) == 2
    csv_response = client.get("/reconcile/reports/report-x/csv", headers=auth)
    assert csv_response.headers["content-type"].startswith("text/csv") and "tl1:0/100" in csv_response.text
    assert "<html" in client.get("/reconcile/reports/report-x/html", headers=auth).text
    assert client.get("/reconcile/reports/nope").status_code == 404
    assert client.get("/reconcile/reports/report-x/pdf", headers=auth).status_code == 400
