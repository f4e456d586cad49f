"""``regionctl db``: the global databases (status, switchover, failover, preserve, rebuild, snapshot, restore)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit, err_console
from regionctl.errors import InputError, RegionctlError
from regionctl.globaldb.service import GlobalDatabases
from regionctl.globaldb.status import DatabaseStatus
from regionctl.jsonable import to_jsonable
from regionctl.runtime.network import deployment_network

db_app = typer.Typer(no_args_is_help=True, help="Global databases: one writer region, an async standby.")
ToOption = typer.Option(..., "--to", help="the region to move the writer to")


def _gdbs() -> GlobalDatabases:
    topo = context.topology()
    return GlobalDatabases(topo, deployment_network(topo))


def _status_table(statuses: list[DatabaseStatus]) -> Table:
    table = Table(title="global databases")
    for column in ("database", "region", "role", "intended", "timeline", "lsn", "lag bytes", "lag ms", "notes"):
        table.add_column(column)
    for st in statuses:
        for m in st.members:
            notes = "; ".join(p for p in st.problems if m.name in p) or ("ok" if st.healthy else "")
            table.add_row(st.name, m.region, m.role, m.intended, str(m.timeline or ""), m.lsn or "",
                          "" if m.lag_bytes is None else str(m.lag_bytes),
                          "" if m.lag_ms is None else f"{m.lag_ms:.1f}", notes)
        recon = st.recon_slot or {}
        if recon:
            table.add_row(st.name, "", "recon slot", "", "", str(recon.get("confirmed_flush_lsn") or "missing"),
                          str(recon.get("behind_standby_bytes") or ""), "", str(recon.get("wal_status") or ""))
    return table


@db_app.command("status")
def status(
    name: str = typer.Argument(None, help="orders or catalog; all when omitted"), fmt: str = FormatOption
) -> None:
    """Per member: role, timeline, LSNs, lag in bytes and ms, slot health."""
    check_format(fmt)
    gdbs = _gdbs()
    names = [gdbs.cluster(name).name] if name else list(gdbs.names)
    emit([gdbs.status(n) for n in names], fmt, _status_table)


@db_app.command("psql", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def psql(ctx: typer.Context, name: str = typer.Argument(..., help="orders or catalog"),
         region: str = typer.Option(None, "--region", help="a member other than the writer (read only)")) -> None:
    """psql as PostgreSQL's superuser on the writer (or ``--region``'s member): the documented way in, for an
    admin. The password stays in the deployment's file (SCRAM; nothing else on the machine gets in), the session
    is audited; arguments after the name go to psql (``-- -c 'select 1'``)."""
    import os

    from regionctl.operators.caller import audit_log, cli_caller
    from regionctl.operators.roles import ADMIN

    topo = context.topology()
    gdbs = _gdbs()
    cluster = gdbs.cluster(name)
    member = cluster.member(region or gdbs.state(cluster.name).writer)
    who = cli_caller(topo.settings, ADMIN, "db psql", f"db/{cluster.name}")
    audit_log(topo.settings).append(who.name, who.role, "db psql", f"db/{cluster.name}/{member.region}",
                                    {"psql_arguments": len(ctx.args)}, "session opened", 200)  # never their text
    binary = topo.bins("psql")
    os.execv(binary, [binary, "--no-psqlrc", member.conninfo(cluster.name, application_name="regionctl-psql"),
                      *ctx.args])


@db_app.command("switchover")
def switchover(name: str, to: str = ToOption, fmt: str = FormatOption) -> None:
    """Planned move of the writer with RPO 0; the old writer rejoins as a standby."""
    check_format(fmt)
    with err_console.status(f"switching {name} over to {to}"):
        emit(_gdbs().switchover(name, to), fmt)


@db_app.command("failover")
def failover(name: str, to: str = ToOption, yes: bool = typer.Option(False, "--yes", "-y"),
             fmt: str = FormatOption) -> None:
    """Unplanned promotion of the standby (data loss allowed) once it holds the writer lease: at once when the old
    writer's agent stops it, else after the old lease expired (its writer fenced itself first)."""
    check_format(fmt)
    if not yes and not typer.confirm(f"fail {name} over to {to}? {_at_risk_now(name)}"):
        raise typer.Abort()
    with err_console.status(f"failing {name} over to {to}"):
        emit(_gdbs().failover(name, to), fmt)


def _at_risk_now(name: str) -> str:
    """What the confirmation says a failover right now would lose (or why that cannot be told)."""
    from regionctl.reconcile.service import at_risk

    try:
        risk = at_risk(context.topology(), deployment_network(context.topology()), name)
    except RegionctlError as exc:
        return f"what it would lose cannot be read now ({exc}); transactions not yet replicated will be lost"
    if not risk.count:
        return "the standby has replayed everything: nothing would be lost"
    return (f"{risk.count} transactions ({risk.window_bytes:,} bytes, the oldest {risk.window_s} s old) would be "
            f"lost; see `regionctl db at-risk {name}`")


@db_app.command("at-risk")
def at_risk(name: str, fmt: str = FormatOption) -> None:
    """Name what a failover right now would lose: the transactions the standby has not replayed, decoded from
    the writer's reconciliation slot without consuming it, with the report's lenses (orders with email and
    total)."""
    from regionctl.reconcile.service import at_risk as read

    check_format(fmt)
    risk = read(context.topology(), deployment_network(context.topology()), name)
    emit({**to_jsonable(risk), "count": risk.count}, fmt, table=_at_risk_table)


def _at_risk_table(data: dict[str, Any]) -> Table:
    table = Table("commit LSN", "committed at", "changes", "tables",
                  title=f"{data['database']}: {data['reason']} (window {data['window_bytes']:,} bytes, "
                        f"{data['window_s']} s)")
    for tx in data["transactions"]:
        table.add_row(tx["commit_lsn"], str(tx["commit_time"]), str(tx["changes"]), ", ".join(tx["tables"]))
    return table


@db_app.command("preserve")
def preserve(name: str, region: str, fmt: str = FormatOption) -> None:
    """Keep a diverged former writer's data directory as a named failover copy."""
    check_format(fmt)
    emit(_gdbs().preserve(name, region), fmt)


@db_app.command("preserved")
def preserved(name: str, fmt: str = FormatOption) -> None:
    """List the kept failover copies."""
    check_format(fmt)
    emit(_gdbs().preserved(name), fmt)


@db_app.command("rebuild")
def rebuild(name: str, region: str, fmt: str = FormatOption) -> None:
    """Bring a former writer back as a streaming standby (pg_rewind, else a base backup); preserves it first."""
    check_format(fmt)
    with err_console.status(f"rebuilding {name} in {region}"):
        emit(_gdbs().rebuild(name, region), fmt)


@db_app.command("snapshot")
def snapshot(name: str, fmt: str = FormatOption) -> None:
    """Take a base backup of the writer and copy it to the other region."""
    check_format(fmt)
    with err_console.status(f"snapshot of {name}"):
        emit(_gdbs().snapshot(name), fmt)


@db_app.command("snapshots")
def snapshots(name: str, fmt: str = FormatOption) -> None:
    """List snapshots and the regions holding them."""
    check_format(fmt)
    emit(_gdbs().snapshots(name), fmt)


def parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--time {text!r} is not an ISO 8601 time like 2026-11-29T15:04:05+00:00") from None


@db_app.command("restore")
def restore(
    name: str,
    time: str = typer.Option(None, "--time", help="ISO 8601 with a timezone"),
    lsn: str = typer.Option(None, "--lsn"),
    region: str = typer.Option(None, "--region", help="where to run the restored instance (default: writer's)"),
    fmt: str = FormatOption,
) -> None:
    """Point-in-time restore into a new instance on a free port that never archives and never replicates."""
    check_format(fmt)
    target_time = parse_time(time) if time else None
    with err_console.status(f"restoring {name}"):
        emit(_gdbs().restore(name, target_time, lsn, region), fmt)


@db_app.command("restores")
def restores(name: str, fmt: str = FormatOption) -> None:
    """List restored instances."""
    check_format(fmt)
    result: list[dict[str, Any]] = _gdbs().restores(name)
    emit(result, fmt)


@db_app.command("drop-restore")
def drop_restore(name: str, restore_id: str, yes: bool = typer.Option(False, "--yes", "-y"),
                 fmt: str = FormatOption) -> None:
    """Stop a restored instance and delete its data."""
    check_format(fmt)
    if not yes and not typer.confirm(f"delete restored instance {restore_id}?"):
        raise typer.Abort()
    emit({"dropped": _gdbs().drop_restore(name, restore_id)}, fmt)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
