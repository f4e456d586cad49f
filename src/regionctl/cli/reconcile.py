"""``regionctl reconcile``: the missing-transaction report of a failover, and its approved replay."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.console import Group
from rich.table import Table

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit, err_console, rows_table
from regionctl.errors import InputError
from regionctl.operators.caller import audit_log, cli_caller
from regionctl.operators.roles import APPROVE
from regionctl.operators.store import Operator
from regionctl.reconcile import external, lens, service
from regionctl.reconcile.model import Report
from regionctl.reconcile.render import FORMATS
from regionctl.runtime.network import deployment_network
from regionctl.runtime.topology import Topology

reconcile_app = typer.Typer(no_args_is_help=True, help="Lost transactions of a failover: report, then replay.")


def _deps() -> tuple[Any, Any]:
    topo = context.topology()
    return topo, deployment_network(topo)


def _summary_table(data: dict[str, Any]) -> Table:
    return rows_table([{"field": k, "value": "" if v is None else str(v)} for k, v in data.items()])


def _report_view(report: Report) -> Group:
    parts: list[Any] = [_summary_table({**report.summary(), "method_trail": "; ".join(report.method_trail)})]
    if report.counts:
        parts.append(rows_table([{"table": t, **c} for t, c in report.counts.items()], title="row changes"))
    for name, docs in report.lenses.items():
        if docs:
            rows = [{k: v for k, v in d.items() if k not in ("lines", "transactions")} | {"lines": len(d["lines"])}
                    for d in docs]
            parts.append(rows_table(rows, title=name))
    if report.conflicts:
        parts.append(rows_table([{"table": c.table, "key": c.key, "new writer": c.new_writer, "why": c.reason}
                                 for c in report.conflicts], title="conflicts"))
    if report.warnings:
        parts.append(rows_table([{"warning": w} for w in report.warnings]))
    return Group(*parts)


@reconcile_app.command("report")
def report(
    database: str = typer.Argument(..., help="the global database, e.g. orders"),
    region: str = typer.Option(..., "--region", help="the former writer whose lost transactions to report"),
    method: str = typer.Option("auto", "--method", help="auto (slot, then wal, then diff), slot, wal or diff"),
    fresh: bool = typer.Option(False, "--fresh", help="build a new report even if this failover has one"),
    keep_instance: bool = typer.Option(False, "--keep-instance", help="leave the reconciliation instance running"),
    fmt: str = FormatOption,
) -> None:
    """Build (or show the existing) missing-transaction report of the last failover away from --region."""
    check_format(fmt)
    topo, network = _deps()
    with err_console.status(f"reconciling {database} (former writer {region})") as status:
        result = service.report(topo, network, database, region, method=method, fresh=fresh,
                                keep_instance=keep_instance, progress=lambda stage: status.update(stage))
    path = topo.paths.root / "reports" / result.id
    emit({**result.summary(), "stored_in": str(path)}, fmt,
         (lambda _: _report_view(result)) if fmt == "table" else None)


@reconcile_app.command("compare")
def compare(
    database: str = typer.Argument(..., help="the database name on both sides, e.g. orders"),
    old_dsn: str = typer.Option(..., "--old-dsn", envvar="REGIONCTL_OLD_DSN",
                                help="a copy of the former writer (e.g. a restored failover snapshot)"),
    new_dsn: str = typer.Option(..., "--new-dsn", envvar="REGIONCTL_NEW_DSN", help="the new writer"),
    divergence_lsn: str = typer.Option(None, "--divergence-lsn",
                                       help="where the timelines forked (default: the new writer's history)"),
    method: str = typer.Option("auto", "--method", help="auto (slot, then diff), slot or diff"),
    fmt: str = FormatOption,
) -> None:
    """The report from two connection strings alone (real regions: no local files). Put passwords in a libpq
    service or password file, or pass the DSNs in $REGIONCTL_OLD_DSN / $REGIONCTL_NEW_DSN: never in argv."""
    check_format(fmt)
    settings = context.settings()
    views = lens.configured(settings.workload.lenses, database)
    with err_console.status(f"comparing {database}") as status:
        result = external.compare(old_dsn, new_dsn, database, settings.root, divergence_lsn=divergence_lsn,
                                  method=method, lenses=views, progress=lambda stage: status.update(stage))
    emit({**result.summary(), "stored_in": str(settings.root / "reports" / result.id)}, fmt,
         (lambda _: _report_view(result)) if fmt == "table" else None)


@reconcile_app.command("show")
def show(
    report_id: str,
    render: str = typer.Option(None, "--render", help="print the stored rendering: json, csv or html"),
    fmt: str = FormatOption,
) -> None:
    """Show a report: a summary table, the whole report with --format json, or a rendering with --render."""
    check_format(fmt)
    topo, _ = _deps()
    if render is not None:
        if render not in FORMATS:
            raise InputError(f"--render must be one of {', '.join(FORMATS)}, not {render!r}")
        from regionctl.reconcile.store import ReportStore

        sys.stdout.write(ReportStore(topo.paths.root).rendering(report_id, render))
        return
    result = service.show(topo, report_id)
    if fmt == "json":
        sys.stdout.write(result.to_json() + "\n")
        return
    emit(result, fmt, lambda r: _report_view(r))


@reconcile_app.command("list")
def list_reports(database: str = typer.Argument(None, help="only this database's reports"),
                 fmt: str = FormatOption) -> None:
    """Stored reports, oldest first."""
    check_format(fmt)
    topo, _ = _deps()
    emit(service.list_reports(topo, database), fmt)


def _approver(topo: Topology) -> Operator:
    """The caller, who must hold the approve permission: a replay changes the writer's data."""
    return cli_caller(topo.settings, APPROVE, "reconcile replay", "reconcile")


@reconcile_app.command("replay")
def replay(
    report_id: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    new_dsn: str = typer.Option(None, "--new-dsn", envvar="REGIONCTL_NEW_DSN",
                                help="replay to this writer instead of the deployment's (a report from 'compare')"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print exactly what would be written, keep nothing"),
    fmt: str = FormatOption,
) -> None:
    """Re-apply the report's lost transactions that do not conflict, and those the merge policies
    (``reconcile.policies``) resolve; idempotent (each replayed transaction is recorded on the writer), recorded
    with the approver: the caller (the operator whose token is in $REGIONCTL_TOKEN or $REGIONCTL_TOKEN_FILE, else
    the admin), who needs the approve permission."""
    check_format(fmt)
    topo = context.topology()
    loaded = service.show(topo, report_id)
    caller = _approver(topo)
    who = caller.name
    if dry_run:
        with err_console.status(f"dry run of {report_id}"):
            outcome = (external.replay_to(new_dsn, topo.paths.root, report_id, who, topo.settings.reconcile.policies,
                                          True) if new_dsn
                       else service.replay(topo, deployment_network(topo), report_id, who, dry_run=True))
        emit(outcome if fmt == "json" else _would_write(outcome), fmt)
        return
    if not yes and not typer.confirm(
        f"replay {len(loaded.transactions)} lost transaction(s) of {report_id} onto the {loaded.database} writer "
        f"as {who}? ({len(loaded.conflicts)} conflict(s) will be refused)"
    ):
        raise typer.Abort()
    with err_console.status(f"replaying {report_id}"):
        outcome = (external.replay_to(new_dsn, topo.paths.root, report_id, who, topo.settings.reconcile.policies)
                   if new_dsn else service.replay(topo, deployment_network(topo), report_id, who))
    audit_log(topo.settings).append(who, caller.role, "reconcile replay", f"reconcile/{report_id}",
                                    {"new_dsn": new_dsn} if new_dsn else {}, "ok", 200)
    summary = {k: v for k, v in outcome.items() if k != "transactions"}
    for counted in ("applied", "resolved", "already_applied"):
        summary[counted] = len(outcome[counted])
    emit(outcome if fmt == "json" else summary, fmt)


def _would_write(outcome: dict[str, Any]) -> Table:
    """Per transaction and change: what the replay would do, the values it would write, and why."""
    table = Table("transaction", "status", "table", "key", "would", "values", "why", title="dry run: nothing kept")
    for tx in outcome["transactions"]:
        if not tx["resolutions"]:
            table.add_row(tx["id"], tx["status"], "", "", "", "", "; ".join(tx["reasons"]))
        for r in tx["resolutions"]:
            table.add_row(tx["id"], tx["status"], r["table"], str(r["key"]),
                          r["action"] if r["outcome"] == "apply" else r["outcome"],
                          ", ".join(f"{k}={v}" for k, v in r["write"].items()), "; ".join(r["why"]))
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(reconcile_app, name="reconcile")
