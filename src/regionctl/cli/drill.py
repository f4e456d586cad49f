"""``regionctl drill``: a failover drill with a verdict (``regionctl.drill``), and the stored drills."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import typer

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit, err_console, rows_table
from regionctl.drill import records
from regionctl.drill.faults import FAULTS
from regionctl.drill.run import Drill, DrillSpec, recheck

drill_app = typer.Typer(no_args_is_help=True, help="Failover drills: load, a fault, the runbook, and an account of "
                                                  "every acknowledged write.")


def register(app: typer.Typer) -> None:
    app.add_typer(drill_app, name="drill")


@drill_app.command("run")
def run_cmd(fault: str = typer.Option("partition", "--fault", help=f"one of: {', '.join(FAULTS)}"),
            runbook: str = typer.Option("RegionFailover", "--runbook"),
            mode: str = typer.Option("ungraceful", "--mode", help="graceful (switchover) or ungraceful (failover)"),
            region: str = typer.Option(None, "--region", help="the region to leave (default: the orders writer's)"),
            failback: bool = typer.Option(True, "--failback/--no-failback", help="run Failback afterwards"),
            load_rate: float = typer.Option(4.0, "--load-rate", help="purchases per second (and ledger writes per "
                                                                    "second per region and database)"),
            duration: float = typer.Option(20.0, "--duration", help="seconds of load before the fault and after "
                                                                   "the runbook, together"),
            seed: int = typer.Option(None, "--seed", help="fixes the fault's moment and the load's choices"),
            repeat: int = typer.Option(1, "--repeat", min=1, max=100, help="run N drills, each with its own seed"),
            approver: str = typer.Option(None, "--approver", help="an operator who approves the replay of what "
                                         "was lost (its token in $REGIONCTL_APPROVER_TOKEN or ..._FILE)"),
            fmt: str = FormatOption) -> None:
    """Load on, inject the fault, run the runbook as an operator does, revert, optionally fail back; then account
    for every acknowledged write. Exit code 1 when a drill FAILs."""
    check_format(fmt)
    topo = context.topology()
    from regionctl.globaldb.service import GlobalDatabases
    from regionctl.runtime.network import deployment_network

    gdbs = GlobalDatabases(topo, deployment_network(topo))
    base = random.Random(seed).randrange(1 << 30) if seed is not None else random.randrange(1 << 30)
    results = []
    for n in range(repeat):
        spec = DrillSpec(fault=fault, runbook=runbook, mode=mode, region=region, failback=failback,
                         load_rate=load_rate, duration_s=duration, seed=base + n, approver=approver).checked()
        drill_id = records.new_drill_id()
        prefix = f"[{n + 1}/{repeat}]"

        def progress(line: str, prefix: str = prefix) -> None:
            err_console.print(f"{prefix} {line}")

        drill = Drill(topo, gdbs, spec, records.drills_dir(topo) / drill_id, drill_id, progress=progress)
        record = drill.run()
        path = records.save(topo, record)
        err_console.print(f"[{n + 1}/{repeat}] {record['verdict']}: {record['reason']} (page: "
                          f"{path.with_suffix('.html')})")
        results.append(record)
    if repeat == 1:
        emit(_brief(results[0]), fmt, _table)
    else:
        emit([_summary_row(r) for r in results], fmt)
    if any(r["verdict"] != "PASS" for r in results):
        raise typer.Exit(1)


@drill_app.command("list")
def list_cmd(limit: int = typer.Option(20, "--limit", min=1, max=1000), fmt: str = FormatOption) -> None:
    """The stored drills, newest first, with their verdicts."""
    check_format(fmt)
    emit(records.listing(context.topology(), limit), fmt)


@drill_app.command("show")
def show_cmd(drill_id: str, fmt: str = FormatOption) -> None:
    """One drill: verdict, figures, the accounting; its HTML page (with the timeline) sits next to the record."""
    check_format(fmt)
    topo = context.topology()
    record = records.load(topo, drill_id)
    emit(record if fmt == "json" else _brief(record), fmt, _table)
    if fmt != "json":
        err_console.print(f"page: {Path(records.drills_dir(topo)) / (drill_id + '.html')}")


@drill_app.command("check")
def check_cmd(drill_id: str, fmt: str = FormatOption) -> None:
    """Account for a stored drill's acknowledged writes again, against the deployment as it is now (after a
    rebuild, a replay, or someone's hand on the data). Exit code 1 on FAIL."""
    check_format(fmt)
    topo = context.topology()
    from regionctl.globaldb.service import GlobalDatabases
    from regionctl.runtime.network import deployment_network

    record = records.load(topo, drill_id)
    verdict = recheck(topo, GlobalDatabases(topo, deployment_network(topo)), record,
                      records.drills_dir(topo) / drill_id)
    emit({"id": drill_id, **verdict.as_dict()}, fmt)
    if not verdict.passed:
        raise typer.Exit(1)


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("id", "verdict", "reason", "region", "to_region", "spec", "figures", "check",
                                   "runbook", "failback", "reports", "errors")}


def _summary_row(r: dict[str, Any]) -> dict[str, Any]:
    f = r["figures"]
    return {"id": r["id"], "verdict": r["verdict"], "acknowledged": f.get("acknowledged"), "lost": f.get("lost"),
            "unreported": r["check"]["counts"].get("unreported"), "recovery_s": f.get("recovery_s"),
            "write_outage_s": f.get("write_outage_s")}


def _table(record: dict[str, Any]) -> Any:
    f = record["figures"]
    rows = [("drill", record["id"]), ("verdict", f"{record['verdict']}: {record['reason']}"),
            ("fault", f"{record['spec']['fault']} in {record['region']}"),
            ("runbook", f"{record['spec']['runbook']} ({record['spec']['mode']}) -> {record['to_region']}: "
                        f"{(record['runbook'] or {}).get('status')}"),
            ("acknowledged writes", f.get("acknowledged")),
            ("accounted", ", ".join(f"{k} {v}" for k, v in record["check"]["counts"].items() if k != "acknowledged")),
            ("recovery from the runbook start", f.get("recovery_s")),
            ("recovery from the fault", f.get("recovery_from_fault_s")),
            ("clients' longest write outage", f.get("write_outage_s")),
            ("surviving writes per s", f.get("surviving_writes_per_s")),
            ("failback", (record["failback"] or {}).get("status")), ("failback lost", f.get("failback_lost")),
            ("errors", record["errors"])]
    return rows_table([{"field": k, "value": v if isinstance(v, str) else json.dumps(v)} for k, v in rows],
                      title="drill")
