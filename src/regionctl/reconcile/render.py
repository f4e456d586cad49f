"""Render a report as JSON, CSV (one row per row change) or a self-contained HTML page."""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, Undefined, select_autoescape

from regionctl.errors import InputError
from regionctl.reconcile.model import Report

FORMATS = ("json", "csv", "html")
CSV_COLUMNS = ("report_id", "transaction", "commit_lsn", "commit_time", "table", "kind", "key", "new", "old",
               "old_source", "action", "conflict", "note")
HTML_TRANSACTION_LIMIT = 500  # the page is for reading; JSON and CSV hold everything



def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return report.to_json()
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report)
    raise InputError(f"report format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def _cell(value: Any) -> str:
    if value is None or isinstance(value, Undefined):
        return ""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _conflict_keys(report: Report) -> set[tuple[str, str]]:
    return {(c.table, _cell(c.key)) for c in report.conflicts}


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    conflicts = _conflict_keys(report)
    for tx in report.transactions:
        for ch in tx.changes:
            writer.writerow([
                report.id, tx.id, tx.commit_lsn or "", tx.commit_time or "", ch.table, ch.kind, _cell(ch.key),
                _cell(ch.new), _cell(ch.old), ch.old_source or "", ch.action,
                "yes" if (ch.table, _cell(ch.key)) in conflicts else "", ch.note or "",
            ])
    return out.getvalue()


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("regionctl.reconcile", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["cell"] = _cell
    return env


def to_html(report: Report) -> str:
    data = report.to_dict()
    shown = data["transactions"][:HTML_TRANSACTION_LIMIT]
    data["lenses"] = {name: docs[:HTML_TRANSACTION_LIMIT] for name, docs in report.lenses.items()}
    return _environment().get_template("report.html").render(
        r=data, summary=report.summary(), transactions=shown, hidden=len(report.transactions) - len(shown),
        conflicts=_conflict_keys(report), limit=HTML_TRANSACTION_LIMIT,
        lens_sizes={name: len(docs) for name, docs in report.lenses.items()},
    )
