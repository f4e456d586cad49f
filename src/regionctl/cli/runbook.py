"""``regionctl runbook``: list, show and validate runbooks locally; start and steer executions through the engine.

    regionctl runbook list | show NAME | validate FILE...
    regionctl runbook start RegionFailover -p region=us-east-1 [-p mode=graceful] [--wait]
    regionctl runbook status [ID] [--follow] | history ID
    regionctl runbook approve|decline ID [--comment TEXT]      (as the caller: $REGIONCTL_TOKEN[_FILE])
    regionctl runbook pause|resume|cancel ID | retry|skip ID [--step NAME]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, console, emit, rows_table
from regionctl.errors import InputError, RegionctlError
from regionctl.runbooks.actions import default_registry
from regionctl.runbooks.loader import LIBRARY, DocumentError, RunbookCatalog, load_file
from regionctl.runbooks.views import runbook_view

app = typer.Typer(no_args_is_help=True, help="Runbooks: fail a region over and back, durably and step by step.")
FINISHED = ("succeeded", "failed", "cancelled")
STOPPED = (*FINISHED, "paused")
EMPTY = '""'
MARKS = {"succeeded": ("✓", "green"), "failed": ("✗", "red"), "running": ("●", "yellow"),
         "waiting": ("⏸", "cyan"), "pending": ("·", "dim"), "skipped": ("↷", "magenta"),
         "cancelled": ("⊘", "red"), "pausing": ("‖", "yellow"), "paused": ("‖", "cyan"),
         "cancelling": ("⊘", "yellow")}


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="runbook")


def _catalog() -> RunbookCatalog:
    settings = context.settings()
    return RunbookCatalog(default_registry(), [LIBRARY, settings.root / "runbooks"])


def _client() -> Any:
    from regionctl.runbooks.client import RunbookClient

    return RunbookClient.for_settings(context.settings())


# --- local: list, show, validate --------------------------------------------------------------------------------


@app.command("list")
def list_runbooks(fmt: str = FormatOption) -> None:
    """The bundled runbooks and the deployment's own (<data dir>/runbooks/*.yaml)."""
    emit(_catalog().summaries(), fmt)


@app.command("show")
def show(name: str = typer.Argument(..., help="runbook name"), fmt: str = FormatOption) -> None:
    """A runbook's parameters and steps."""
    doc = _catalog().get(name)
    emit(runbook_view(doc.runbook), fmt, table=_runbook_table)


def _runbook_table(view: dict[str, Any]) -> Group:
    params = rows_table([{"parameter": k, "type": p["type"], "default": "" if p["required"] else p["default"],
                          "description": p["description"]} for k, p in view["parameters"].items()])
    steps = Table(title=None)
    for column in ("step", "does", "attempts", "timeout", "on failure", "then"):
        steps.add_column(column, no_wrap=column in ("step", "does"))
    for step in view["steps"]:
        steps.add_row(*_step_row(step, ""))
        for child in step.get("parallel") or ():
            steps.add_row(*_step_row(child, "  ├ "))
    return Group(Text(f"{view['name']}: {' '.join(view['description'].split())}", style="bold"), params, steps)


def _step_row(step: dict[str, Any], indent: str) -> list[str]:
    then = "end" if step["isEnd"] else step["nextStep"] or ""
    if step["kind"] == "branch":
        branch = step["branch"]
        then = ", ".join(f"{k or EMPTY}->{v}" for k, v in branch["cases"].items())
        then += f", else {branch['default']}" if branch.get("default") else ""
    timeout = "" if step["timeoutSeconds"] is None else f"{step['timeoutSeconds']:g}s"
    return [indent + step["name"], step["kind"], str(step["maxAttempts"]), timeout, step["onFailure"], then]


@app.command("validate")
def validate(files: Annotated[list[Path], typer.Argument(help="runbook YAML files")], fmt: str = FormatOption) -> None:
    """Check runbook files against the action registry; every problem names file, line and field."""
    check_format(fmt)
    catalog = _catalog()
    results: list[dict[str, Any]] = []
    failed = False
    for path in files:
        try:
            load_file(path, catalog.registry, catalog.env)
            results.append({"file": str(path), "valid": True, "problems": []})
        except RegionctlError as exc:
            failed = True
            problems = [str(p) for p in exc.problems] if isinstance(exc, DocumentError) else [str(exc)]
            results.append({"file": str(path), "valid": False, "problems": problems})
    if fmt == "json":
        emit(results, fmt)
    else:
        for row in results:
            if row["valid"]:
                console.print(f"[green]✓[/green] {row['file']}")
            for problem in row["problems"]:
                console.print(f"[red]✗[/red] {problem}", highlight=False)
    if failed:
        raise typer.Exit(2)


# --- through the engine -----------------------------------------------------------------------------------------


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param {pair!r}: write NAME=VALUE")
        params[key.strip()] = value
    return params


@app.command("start")
def start(
    name: str = typer.Argument(..., help="runbook name"),
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE, repeatable")] = None,
    wait: bool = typer.Option(False, "--wait", "-w", help="follow the steps live until the execution stops"),
    fmt: str = FormatOption,
) -> None:
    """Start an execution (needs the engine: `regionctl up`)."""
    check_format(fmt)
    client = _client()
    view = client.start(name, _parse_params(param or []))
    if wait:
        view = _follow(client, view["id"], fmt)
    emit(view, fmt, table=_execution_table)
    _exit_for(view, wait)


@app.command("status")
def status(
    execution_id: str = typer.Argument(None, help="execution id (omit for the recent ones)"),
    follow: bool = typer.Option(False, "--follow", "-F", help="live step progress until it stops"),
    fmt: str = FormatOption,
) -> None:
    """Recent executions, or one execution's steps, attempts, timings and recovery time."""
    check_format(fmt)
    client = _client()
    if execution_id is None:
        emit(client.executions(), fmt, table=_executions_table)
        return
    view = _follow(client, execution_id, fmt) if follow else client.execution(execution_id)
    emit(view, fmt, table=_execution_table)
    _exit_for(view, follow)


def _executions_table(rows: list[dict[str, Any]]) -> Table:
    table = Table()
    for column in ("id", "runbook", "status", "step", "started", "took", "recovery", "error"):
        table.add_column(column, no_wrap=column in ("id", "runbook", "started"))
    for row in rows:
        took = "" if row["duration_s"] is None else f"{row['duration_s']:.2f}s"
        recovery = "" if row["recovery_s"] is None else f"{row['recovery_s']:.3f}s"
        started = time.strftime("%m-%d %H:%M:%S", time.localtime(row["created_at"]))
        table.add_row(row["id"], row["runbook"], Text.assemble(_mark(row["status"]), " ", row["status"]),
                      row["current_step"] or "", started, took, recovery, (row["error"] or "")[:60])
    return table


def _exit_for(view: dict[str, Any], waited: bool) -> None:
    if waited and view["status"] in ("failed", "cancelled"):
        raise typer.Exit(1)


@app.command("history")
def history(execution_id: str = typer.Argument(...), fmt: str = FormatOption) -> None:
    """Every journaled transition of an execution."""
    events = _client().history(execution_id)
    start_at = events[0]["at"] if events else 0.0
    rows = [{"t+s": f"{e['at'] - start_at:.3f}", "event": e["kind"], "message": e["message"]} for e in events]
    emit(events, fmt, table=lambda _data: rows_table(rows))


@app.command("approve")
def approve(execution_id: str = typer.Argument(...), comment: str = typer.Option("", "--comment", "-m"),
            step: str = typer.Option(None, "--step"), fmt: str = FormatOption) -> None:
    """Approve the step the execution waits at, as the caller (the operator whose token is in $REGIONCTL_TOKEN or
    the file $REGIONCTL_TOKEN_FILE names; without either, the deployment's admin)."""
    emit(_client().decide(execution_id, True, comment, step), fmt, table=_execution_table)


@app.command("decline")
def decline(execution_id: str = typer.Argument(...),
            comment: str = typer.Option(..., "--comment", "-m", help="why"), step: str = typer.Option(None, "--step"),
            fmt: str = FormatOption) -> None:
    """Decline the step the execution waits at, as the caller (the step fails; its onFailure decides what
    follows)."""
    emit(_client().decide(execution_id, False, comment, step), fmt, table=_execution_table)


def _control(verb: str, execution_id: str, fmt: str, step: str | None = None) -> None:
    emit(_client().control(execution_id, verb, step), fmt, table=_execution_table)


@app.command("pause")
def pause(execution_id: str = typer.Argument(...), fmt: str = FormatOption) -> None:
    """Stop at the next step boundary (a waiting step stops at once and runs again on resume)."""
    _control("pause", execution_id, fmt)


@app.command("resume")
def resume(execution_id: str = typer.Argument(...), fmt: str = FormatOption) -> None:
    """Carry on a paused execution."""
    _control("resume", execution_id, fmt)


@app.command("cancel")
def cancel(execution_id: str = typer.Argument(...), yes: bool = typer.Option(False, "--yes", "-y"),
           fmt: str = FormatOption) -> None:
    """Stop an execution for good."""
    if not yes:
        typer.confirm(f"Cancel execution {execution_id}? It cannot be resumed", abort=True)
    _control("cancel", execution_id, fmt)


@app.command("retry")
def retry(execution_id: str = typer.Argument(...), step: str = typer.Option(None, "--step"),
          fmt: str = FormatOption) -> None:
    """Run the failed step again (a fresh round of maxAttempts) and carry on."""
    _control("retry", execution_id, fmt, step)


@app.command("skip")
def skip(execution_id: str = typer.Argument(...), step: str = typer.Option(None, "--step"),
         yes: bool = typer.Option(False, "--yes", "-y"), fmt: str = FormatOption) -> None:
    """Treat the failed step as done (it produces no outputs) and carry on."""
    if not yes:
        typer.confirm(f"Skip the failed step of {execution_id} and carry on?", abort=True)
    _control("skip", execution_id, fmt, step)


# --- live progress ----------------------------------------------------------------------------------------------


def _follow(client: Any, execution_id: str, fmt: str, interval: float = 0.4) -> dict[str, Any]:
    """Poll until the execution stops; draw the steps live in a terminal (JSON output just waits)."""
    view: dict[str, Any] = client.execution(execution_id)
    if fmt == "json" or not console.is_terminal:
        while view["status"] not in STOPPED:
            time.sleep(interval)
            view = client.execution(execution_id)
        return view
    try:
        with Live(_execution_table(view), console=console, refresh_per_second=8, transient=True) as live:
            while view["status"] not in STOPPED:
                time.sleep(interval)
                view = client.execution(execution_id)
                live.update(_execution_table(view))
    except KeyboardInterrupt:
        console.print(f"stopped following; the execution goes on (regionctl runbook status {execution_id} -F)")
    return view


def _execution_table(view: dict[str, Any]) -> Group:
    head = Text.assemble((f"{view['runbook']} ", "bold"), (view["id"], "dim"), "  ", _mark(view["status"]),
                         f" {view['status']}")
    if view.get("duration_s") is not None:
        head.append(f"  {view['duration_s']:.2f}s")
    if view.get("recovery_s") is not None:
        head.append(f"  recovery {view['recovery_s']:.3f}s", style="green")
    table = Table(show_header=True, box=None, padding=(0, 1))
    for column in ("", "step", "attempt", "time", "detail"):
        table.add_column(column)
    children = {c.get("parent_seq"): c for c in view.get("children", [])}
    for step in view.get("steps", []):
        _add_step(table, step, "")
        for sub in step.get("parallel") or ():
            _add_step(table, sub, "  ├ ")
        for sub in children.get(step["seq"], {}).get("steps", []):
            _add_step(table, sub, "  │ ")
    parts: list[Any] = [head, table]
    for wait in view.get("waiting", []):
        approvers = ", ".join(wait.get("approvers", []))
        parts.append(Text(f"⏸ {wait['step']} waits for {approvers}: {wait.get('message', '')}\n"
                          f"  regionctl runbook approve {view['id']}  |  decline ... -m WHY (as that operator)",
                          style="cyan"))
    if view.get("error"):
        parts.append(Text(f"error: {view['error']}", style="red"))
    return Group(*parts)


def _add_step(table: Table, step: dict[str, Any], indent: str) -> None:
    detail = step.get("error") or ""
    if not detail and step.get("outputs"):
        detail = ", ".join(f"{k}={v}" for k, v in step["outputs"].items() if k not in ("next",))[:80]
    duration = step.get("duration_s")
    table.add_row(_mark(step["status"]), indent + step["step"], str(step["attempt"] or ""),
                  "" if duration is None else f"{duration:.2f}s", detail)


def _mark(status: str) -> Text:
    mark, style = MARKS.get(status, ("?", ""))
    return Text(mark, style=style)
