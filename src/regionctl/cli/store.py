"""``regionctl store``: the multi-active regional store (carts, checkout state) and its replication."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit
from regionctl.errors import InputError
from regionctl.regionalstore import Direction, control, endpoints, status
from regionctl.regionalstore.store import RegionalStore

store_app = typer.Typer(no_args_is_help=True, help="The multi-active regional store and its replication.")


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")


def _directions(source: str | None, target: str | None) -> list[Direction]:
    """Both directions by default; one with --from and/or --to."""
    settings = context.settings()
    if source is None and target is None:
        return [Direction(r, settings.other_region(r)) for r in settings.regions]
    src = settings.require_region(source) if source else settings.other_region(settings.require_region(target or ""))
    dst = settings.require_region(target) if target else settings.other_region(src)
    return [Direction(src, dst)]


def _status_table(result: status.ReplicationStatus) -> Table:
    table = Table(title="regional store replication")
    for column in ("direction", "state", "shipped", "backlog", "lag p50 ms", "lag p99 ms", "applied", "conflicts",
                   "seen", "problems"):
        table.add_column(column)
    for d in result.directions:
        state = "unknown" if d.paused is None else f"paused ({d.pause_reason})" if d.paused else "running"
        seen = d.replicator_seen_at.strftime("%H:%M:%S") if d.replicator_seen_at else "never"
        problems = "; ".join([*d.problems, *([d.replicator_error] if d.replicator_error else [])])
        table.add_row(d.direction, state, _s(d.last_shipped_seq), _s(d.backlog), _s(d.lag_p50_ms), _s(d.lag_p99_ms),
                      _s(d.applied_total), _s(d.conflicts_total), seen, problems)
    for problem in result.problems:
        table.add_row("-", "unknown", "", "", "", "", "", "", "", problem)
    return table


def _s(value: Any) -> str:
    return "" if value is None else str(value)


@store_app.command("status")
def status_cmd(fmt: str = FormatOption) -> None:
    """Per direction: shipped cursor, backlog, lag p50/p99, paused or not, conflicts."""
    check_format(fmt)
    settings = context.settings()
    a, b = settings.regions
    emit(status.replication_status(endpoints.dsn(settings, a), endpoints.dsn(settings, b)), fmt, _status_table)


@store_app.command("pause")
def pause_cmd(source: str = typer.Option(None, "--from", help="source region (default: both directions)"),
              target: str = typer.Option(None, "--to", help="target region"),
              reason: str = typer.Option("paused by operator", "--reason"),
              fmt: str = FormatOption) -> None:
    """Stop shipping changes (per direction; survives replicator restarts). Writes keep working locally."""
    check_format(fmt)
    settings = context.settings()
    emit([control.pause(endpoints.dsn(settings, d.source), d, reason) for d in _directions(source, target)], fmt)


@store_app.command("resume")
def resume_cmd(source: str = typer.Option(None, "--from", help="source region (default: both directions)"),
               target: str = typer.Option(None, "--to", help="target region"),
               fmt: str = FormatOption) -> None:
    """Ship again; the backlog built up while paused follows, nothing is lost."""
    check_format(fmt)
    settings = context.settings()
    emit([control.resume(endpoints.dsn(settings, d.source), d) for d in _directions(source, target)], fmt)


@store_app.command("conflicts")
def conflicts_cmd(region: str = typer.Option(None, "--region", help="where detected (default: every region)"),
                  table: str = typer.Option(None, "--table"), key: str = typer.Option(None, "--key"),
                  limit: int = typer.Option(50, "--limit", min=1, max=10_000),
                  fmt: str = FormatOption) -> None:
    """Concurrent writes met by replication, newest first, with both versions and the winner."""
    check_format(fmt)
    settings = context.settings()
    regions = [settings.require_region(region)] if region else list(settings.regions)
    found = [c for r in regions for c in status.list_conflicts(endpoints.dsn(settings, r), limit, table, key)]
    found.sort(key=lambda c: c.detected_at, reverse=True)
    if fmt == "json":
        emit(found[:limit], fmt)
        return
    emit([{"detected_at": c.detected_at.isoformat(timespec="milliseconds"), "region": c.region,
           "item": f"{c.table}/{c.key}", "winner": c.winner, "reason": c.reason} for c in found[:limit]], fmt)


@store_app.command("purge-tombstones")
def purge_cmd(older_than_hours: float = typer.Option(..., "--older-than-hours", help="minimum tombstone age"),
              region: str = typer.Option(None, "--region", help="default: every region"),
              yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
              fmt: str = FormatOption) -> None:
    """Delete old tombstones (never ones a target has not acknowledged yet)."""
    check_format(fmt)
    if older_than_hours <= 0:
        raise InputError(f"--older-than-hours must be positive, not {older_than_hours}")
    settings = context.settings()
    regions = [settings.require_region(region)] if region else list(settings.regions)
    if not yes:
        typer.confirm(f"Delete tombstones older than {older_than_hours} h in {', '.join(regions)}?", abort=True)
    purged = {}
    for r in regions:
        with RegionalStore(endpoints.dsn(settings, r), r, pool_size=1) as store:
            purged[r] = store.purge_tombstones(older_than_hours)
    emit({"purged": purged, "older_than_hours": older_than_hours}, fmt)
