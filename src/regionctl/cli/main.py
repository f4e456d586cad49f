"""The ``regionctl`` entry point: builds the Typer app from one module per command group."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from regionctl.cli import context
from regionctl.cli.render import FormatOption, emit, err_console
from regionctl.errors import RegionctlError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Run, break and heal a two-region shop.",
)


@app.callback()
def _root() -> None:
    """Run, break and heal a two-region shop."""


@app.command("config")
def show_config(fmt: str = FormatOption) -> None:
    """Show the effective settings (secrets masked)."""
    settings = context.settings()
    data = settings.model_dump(mode="json")
    data["data_dir"] = str(settings.root)
    data["regions"] = {r: settings.region_address(r) for r in settings.regions}
    emit(data, fmt)


def _register() -> None:
    """Attach every command group; each module exposes ``register(app)``."""
    from regionctl.cli import (
        agent,
        aws,
        chaos,
        db,
        deployment,
        drill,
        link,
        load,
        observe,
        operators,
        reconcile,
        routing,
        runbook,
        secrets,
        store,
    )

    for module in (deployment, agent, db, link, store, routing, runbook, reconcile, load, observe, chaos, drill,
                   operators, secrets, aws):
        module.register(app)


_register()


def main() -> None:
    """Run the CLI; our own errors print one clear line and exit with their code, never a traceback."""
    try:
        app()
    except RegionctlError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
