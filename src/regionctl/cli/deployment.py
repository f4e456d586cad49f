"""``regionctl up``, ``down``, ``status`` and ``region``: the whole deployment."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

import typer

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, console, emit, err_console
from regionctl.deploy.local import Deployment
from regionctl.deploy.regions import kill_region, start_region
from regionctl.runtime.status import deployment_status

region_app = typer.Typer(no_args_is_help=True, help="Break and heal a whole region.")


def up(fmt: str = FormatOption) -> None:
    """Start both regions and the global plane, and supervise them in the foreground until Ctrl-C."""
    check_format(fmt)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    deployment = Deployment(context.topology())
    stopping = {"now": False}

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping["now"] = True

    deployment.claim()
    signal.signal(signal.SIGTERM, request_stop)
    supervisor = None
    try:
        with err_console.status("starting") as spinner:
            supervisor = deployment.start(lambda step: spinner.update(f"starting {step}"))
        emit(deployment_status(deployment.topo), fmt)
        if fmt == "table":
            console.print(f"[green]up[/green]; data in {deployment.topo.paths.root}. Ctrl-C (or `regionctl down`) "
                          "stops everything and keeps the data.")
        signal.signal(signal.SIGINT, request_stop)
        deployment.supervise(supervisor, lambda: stopping["now"])
    finally:
        with err_console.status("stopping"):
            stopped = deployment.stop_everything(supervisor)
        err_console.print(f"stopped {len(stopped)} components; data kept in {deployment.topo.paths.root}")


def down(
    purge: bool = typer.Option(False, "--purge", help="also delete all data of this deployment"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask before --purge"),
    fmt: str = FormatOption,
) -> None:
    """Stop everything; keep the data unless --purge."""
    check_format(fmt)
    deployment = Deployment(context.topology())
    if purge and not yes and not typer.confirm(f"delete everything under {deployment.topo.paths.root}?"):
        raise typer.Abort()
    emit(deployment.down(purge=purge), fmt)


def status(fmt: str = FormatOption) -> None:
    """Every component of the deployment: region, address, state."""
    check_format(fmt)
    deployment = Deployment(context.topology())
    rows = deployment_status(deployment.topo)
    result: Any = {"up_pid": deployment.running_pid(), "data_dir": str(deployment.topo.paths.root),
                   "components": rows}
    emit(result if fmt == "json" else rows, fmt)


@region_app.command("kill")
def region_kill(region: str, fmt: str = FormatOption) -> None:
    """Kill every process of a region at once (SIGKILL its process groups) and keep it down."""
    check_format(fmt)
    killed = kill_region(context.topology(), region)
    emit({"region": region, "killed": killed, "marked_down": True}, fmt)


@region_app.command("start")
def region_start(region: str, fmt: str = FormatOption) -> None:
    """Let the supervisor bring a killed region back (databases return in their recorded roles)."""
    check_format(fmt)
    start_region(context.topology(), region)
    emit({"region": region, "marked_down": False, "note": "the running `up` restarts its processes"}, fmt)


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)
    app.add_typer(region_app, name="region")
