"""HTTP routes over the report store, mounted by the runbook engine's API (``app.include_router``).

Listing reports and reading their summaries is open, like every read of the control plane; the full report and
its renderings hold customer data (emails, totals), so they need the control bearer token. Building and
replaying reports go through the CLI or the runbook actions (replay needs an approver). Renderings are made on
first request and kept next to the report.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi import Path as Path_
from fastapi.responses import HTMLResponse, PlainTextResponse

from regionctl.errors import InputError, NotFoundError, RegionctlError, http_status
from regionctl.jsonable import to_jsonable
from regionctl.reconcile.store import ReportStore

MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


def router(root: Path, token: str, at_risk: Callable[[str], Any] | None = None) -> APIRouter:
    """``at_risk(database)`` (``service.at_risk`` bound to the deployment) serves ``/reconcile/at-risk/DB``."""
    store = ReportStore(root)
    api = APIRouter(prefix="/reconcile", tags=["reconcile"])

    def authorized(authorization: str | None = Header(None)) -> None:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, "the full report needs the control token (Authorization: Bearer ...)",
                                headers={"WWW-Authenticate": "Bearer"})

    @api.get("/reports", summary="missing-transaction reports, oldest first")
    def list_reports(database: str | None = Query(None, max_length=63)) -> list[dict[str, Any]]:
        return store.list(database)

    @api.get("/reports/{report_id}", summary="one report's summary and its replays")
    def get_report(report_id: str) -> Any:
        try:
            report = store.load(report_id)
        except (InputError, NotFoundError) as exc:
            raise HTTPException(404, str(exc)) from None
        return {**report.summary(), "replays": store.replays(report_id)}

    @api.get("/reports/{report_id}/{fmt}", summary="the whole report as json, csv or html (needs the token)",
             response_class=PlainTextResponse, dependencies=[Depends(authorized)])
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

    @api.get("/at-risk/{database}", summary="what a failover right now would lose (needs the token: it names "
             "customers' orders)", dependencies=[Depends(authorized)])
    def at_risk_now(database: str = Path_(..., pattern=r"^[a-z][a-z0-9_]{0,62}$")) -> Any:
        if at_risk is None:
            raise HTTPException(404, "at-risk is not served by this process")
        try:
            risk = at_risk(database)
        except (InputError, NotFoundError) as exc:
            raise HTTPException(404 if isinstance(exc, NotFoundError) else 400, str(exc)) from None
        except RegionctlError as exc:
            raise HTTPException(http_status(exc), str(exc)) from None
        return {**to_jsonable(risk), "count": risk.count}

    return api
