"""``regionctl canaries``, ``regionctl console`` and ``regionctl alerts``: what the deployment's watchers see, in
the terminal."""

from __future__ import annotations

from typing import Any

import httpx
import typer

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit, rows_table
from regionctl.errors import ExternalError, NotFoundError
from regionctl.observe.launch import canary_url, console_url


def register(app: typer.Typer) -> None:
    app.command("canaries")(canaries_cmd)
    app.command("console")(console_cmd)
    app.command("alerts")(alerts_cmd)


def _get(url: str, what: str) -> Any:
    try:
        response = httpx.get(url, timeout=10, trust_env=False)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ExternalError(f"{what} at {url} is not reachable ({type(exc).__name__}); is the deployment up?") from None
    return response.json()


def _canary_rows(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for report in reports:
        for c in report["canaries"]:
            last = c["last"] or {}
            p90 = c["duration_p90_s"]
            rows.append({"region": report["region"], "canary": c["name"], "state": c["state"],
                         "success %": c["success_percent"], "p90 ms": None if p90 is None else round(p90 * 1000),
                         "status": last.get("status"), "reason": last.get("reason") or None})
    return rows


def canaries_cmd(region: str | None = typer.Option(None, "--region", "-r", help="only this region's canaries"),
                 failing: bool = typer.Option(False, "--failing", help="only canaries whose last run failed"),
                 fmt: str = FormatOption) -> None:
    """Each region's canaries (its own front, the other region's through the link, the global entry): the state
    of the last run, success percent and p90 duration over the window."""
    check_format(fmt)
    settings = context.settings()
    regions = [settings.require_region(region)] if region else list(settings.regions)
    reports = []
    for r in regions:
        url = canary_url(context.topology().ports, r)
        if url is None:
            raise NotFoundError(f"no canary runner is registered for {r} under {settings.root}; run 'regionctl up'")
        reports.append(_get(f"{url}/canaries", f"the canaries of {r}"))
    if failing:
        reports = [{**r, "canaries": [c for c in r["canaries"] if c["state"] == "fail"]} for r in reports]
    if fmt == "json":
        emit(reports if region is None else reports[0], fmt)
        return
    emit(_canary_rows(reports), fmt, lambda rows: rows_table(rows, title="canaries"))


def console_cmd(fmt: str = FormatOption) -> None:
    """Where the operations console is, and what needs attention now (--format json: the whole overview)."""
    check_format(fmt)
    url = console_url(context.topology().ports)
    if url is None:
        raise NotFoundError(f"no console is registered under {context.settings().root}; run 'regionctl up'")
    overview = _get(f"{url}/api/overview", "the console")
    if fmt == "json":
        emit({"url": url, **overview}, fmt)
        return
    flags = overview["attention"] or [{"severity": "ok", "what": "nothing needs attention"}]
    emit(flags, fmt, lambda rows: rows_table(rows, title=f"console: {url}"))


def alerts_cmd(all_states: bool = typer.Option(False, "--all", help="pending alerts too, not only firing ones"),
               fmt: str = FormatOption) -> None:
    """The deployment's alerts as its Prometheus evaluates them (the rules shipped in ``<root>/prometheus``):
    what fires now, which database, region or direction, and since when. Exit 0 either way."""
    from regionctl.observe import prometheus
    from regionctl.observe.history import PrometheusReader, alert_rows

    check_format(fmt)
    settings = context.settings()
    reason = prometheus.unavailable(settings)
    if reason:
        raise NotFoundError(reason)
    base = prometheus.url(context.topology().ports)
    if base is None:
        raise NotFoundError(f"no Prometheus is registered under {settings.root}; run 'regionctl up'")
    rows = [r for r in alert_rows(PrometheusReader(lambda: base, 10.0).alerts())
            if all_states or r["state"] == "firing"]
    if fmt == "json":
        emit(rows, fmt)
        return
    shown = [{**r, "labels": " ".join(f"{k}={v}" for k, v in sorted(r["labels"].items()))} for r in rows] or [
        {"alert": "none", "state": "", "summary": "no alert fires"}]
    emit(shown, fmt, lambda table: rows_table(table, title=f"alerts ({base})"))
