"""HTTP routes over the report store, mounted by the runbook engine's API (``app.include_router``).

Listing reports and reading their summaries is open, like every read of the control plane; the full report and
its renderings hold customer data (emails, totals), so they need an operator's bearer token (any role). Building and
replaying reports go through the CLI or the runbook actions (replay needs an approver). Renderings are made on
first request and kept next to the report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Query
from fastapi import Path as Path_
from fastapi.responses import HTMLResponse, PlainTextResponse

from regionctl.errors import InputError, NotFoundError
from regionctl.jsonable import to_jsonable
from regionctl.reconcile.store import ReportStore

T = TypeVar("T")
MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


def router(root: Path, reader: Callable[..., Awaitable[Any]], at_risk: Callable[[str], Any] | None = None
           ) -> APIRouter:
    """``reader``: the dependency that admits an operator (``Gate.requires(READ)``); ``at_risk(database)``
    (``service.at_risk`` bound to the deployment) serves ``/reconcile/at-risk/DB``."""
    store = ReportStore(root)
    api = APIRouter(prefix="/reconcile", tags=["reconcile"])
    authorized = reader

    @api.get("/reports", summary="missing-transaction reports, oldest first")
    def list_reports(database: str | None = Query(None, max_length=63)) -> list[dict[str, Any]]:
        return store.list(database)

    @api.get("/reports/{report_id}", summary="one report's summary and its replays")
    def get_report(report_id: str) -> Any:
        report = _found(lambda: store.load(report_id))
        return {**report.summary(), "replays": store.replays(report_id)}

    @api.get("/reports/{report_id}/conflicts", summary="the report's conflicts, each with the resolution replay "
             "would make of it under the merge policies (needs the token: rows hold customer data)",
             dependencies=[Depends(authorized)])
    def conflicts(report_id: str) -> list[dict[str, Any]]:
        report = _found(lambda: store.load(report_id))
        return [to_jsonable(c) for c in report.conflicts]

    @api.get("/reports/{report_id}/{fmt}", summary="the whole report as json, csv or html (needs the token)",
             response_class=PlainTextResponse, dependencies=[Depends(authorized)])
    def rendering(report_id: str, fmt: str) -> Any:
        if fmt not in MEDIA:
            raise InputError(f"format must be one of {', '.join(MEDIA)}, not {fmt!r}", "fmt")
        text = _found(lambda: store.rendering(report_id, fmt))
        if fmt == "html":
            return HTMLResponse(text)
        return PlainTextResponse(text, media_type=MEDIA[fmt])

    @api.get("/at-risk/{database}", summary="what a failover right now would lose (needs the token: it names "
             "customers' orders)", dependencies=[Depends(authorized)])
    def at_risk_now(database: str = Path_(..., pattern=r"^[a-z][a-z0-9_]{0,62}$")) -> Any:
        if at_risk is None:
            raise NotFoundError("at-risk is not served by this process")
        risk = at_risk(database)
        return {**to_jsonable(risk), "count": risk.count}

    return api


def _found(read: Callable[[], T]) -> T:
    """A report named in the path: a malformed id is as absent as an unknown one (404, not 400)."""
    try:
        return read()
    except InputError as exc:
        raise NotFoundError(str(exc)) from None
