"""``regionctl chaos``: run a fault experiment against the deployment, watched by its canaries."""

from __future__ import annotations

from typing import Any

import typer

from regionctl.chaos import experiment as model
from regionctl.chaos import records
from regionctl.chaos.live import LiveFaults, LiveWatcher
from regionctl.chaos.runner import ExperimentResult, run
from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit, err_console, rows_table

chaos_app = typer.Typer(no_args_is_help=True, help="Fault experiments with stop conditions; faults always reverted.")


def register(app: typer.Typer) -> None:
    app.add_typer(chaos_app, name="chaos")


@chaos_app.command("list")
def list_cmd(fmt: str = FormatOption) -> None:
    """The experiments, their faults, default duration and stop conditions."""
    check_format(fmt)
    rows = [{"experiment": e.name, "faults": "; ".join(f.describe() for f in e.faults),
             "duration s": e.duration_s, "stops when": "; ".join(c.describe() for c in e.stop_conditions),
             "what it shows": e.description} for e in model.EXPERIMENTS.values()]
    emit(rows, fmt)


@chaos_app.command("run")
def run_cmd(name: str = typer.Argument(..., help="an experiment from 'regionctl chaos list'"),
            duration: float = typer.Option(None, "--duration", "-d", help="seconds the faults stay in place"),
            yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
            fmt: str = FormatOption) -> None:
    """Inject the experiment's faults, watch the canaries until it ends or a stop condition fires, revert, and
    measure how long the canaries take to pass again. Exit code 1 when it ended in an error or Ctrl-C, a revert
    failed, or the canaries did not pass again within 60 s."""
    check_format(fmt)
    chosen = model.experiment(name).with_duration(duration)
    settings = context.settings()
    if not yes and not typer.confirm(f"run {chosen.name} for {chosen.duration_s:g} s: "
                                     f"{'; '.join(f.describe() for f in chosen.faults)}?"):
        raise typer.Abort()
    with err_console.status(f"{chosen.name}: starting") as status:
        result = run(chosen, LiveFaults(settings), LiveWatcher(settings), progress=status.update)
    records.save(context.topology(), result)  # the console draws it on its charts
    emit(result, fmt, _table)
    if not result.clean:
        raise typer.Exit(1)


def _table(result: ExperimentResult) -> Any:
    rows = [{"field": "experiment", "value": result.experiment},
            {"field": "faults in place", "value": f"{result.duration_s:g} s"},
            {"field": "stopped by", "value": result.stopped_by},
            {"field": "injected", "value": "; ".join(result.injected)},
            {"field": "reverted", "value": "; ".join(result.reverted)},
            {"field": "most failing canaries", "value": ", ".join(f"{k} {v}" for k, v in result.most_failing.items())},
            {"field": "canaries pass again after",
             "value": "not within the limit" if result.recovered_after_s is None else f"{result.recovered_after_s} s"}]
    rows += [{"field": "REVERT FAILED", "value": error} for error in result.revert_errors]
    return rows_table(rows, title="chaos experiment")
