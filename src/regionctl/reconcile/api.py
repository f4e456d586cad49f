"""Read-only HTTP routes over the report store, for the control API to mount (``app.include_router``).

Listing and reading reports is open, like every read of the control API; building and replaying them go through
the CLI or the runbook actions (replay needs an approver).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse

from regionctl.errors import InputError, NotFoundError
from regionctl.reconcile.store import ReportStore

MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


def router(root: Path) -> APIRouter:
    store = ReportStore(root)
    api = APIRouter(prefix="/reconcile", tags=["reconcile"])

    @api.get("/reports", summary="missing-transaction reports, oldest first")
    def list_reports(database: str | None = Query(None, max_length=63)) -> list[dict[str, Any]]:
        return store.list(database)

    @api.get("/reports/{report_id}", summary="one report: its summary, or the whole report with ?full=true")
    def get_report(report_id: str, full: bool = False) -> Any:
        try:
            report = store.load(report_id)
        except (InputError, NotFoundError) as exc:
            raise HTTPException(404, str(exc)) from None
        if full:
            return PlainTextResponse(report.to_json(), media_type=MEDIA["json"])
        return {**report.summary(), "replays": store.replays(report_id)}

    @api.get("/reports/{report_id}/{fmt}", summary="the report rendered as json, csv or html",
             response_class=PlainTextResponse)
    def rendering(report_id: str, fmt: str) -> Any:
        if fmt not in MEDIA:
            raise HTTPException(422, f"format must be one of {', '.join(MEDIA)}, not {fmt!r}")
        try:
            text = store.rendering(report_id, fmt)
        except (InputError, NotFoundError) as exc:
            raise HTTPException(404, str(exc)) from None
        if fmt == "html":
            return HTMLResponse(text)
        return PlainTextResponse(text, media_type=MEDIA[fmt])

    return api
