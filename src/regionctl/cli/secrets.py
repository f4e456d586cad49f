"""``regionctl secrets``: the workload's database credentials, and their rotation (values are never printed)."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit, err_console
from regionctl.credentials import service
from regionctl.errors import InputError
from regionctl.globaldb.service import GlobalDatabases
from regionctl.runtime.network import deployment_network

NAMES = typer.Argument(None, help="global databases to rotate (or --all)")
secrets_app = typer.Typer(no_args_is_help=True, help="Database credentials of the workload and their rotation.")


def register(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")


def _since(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


@secrets_app.command("list")
def list_cmd(fmt: str = FormatOption) -> None:
    """Each credential: its current login user and version, since when, whether a rotation is pending or due."""
    check_format(fmt)
    settings = context.settings()
    due = set(service.due(settings))
    emit([{"secret": i.name, "user": i.username, "version": i.current, "current since": _since(i.current_since),
           "pending": i.pending, "previous": i.previous, "rotation due": i.name in due}
          for i in service.describe(settings)], fmt)


@secrets_app.command("rotate")
def rotate_cmd(names: list[str] = NAMES,
               rotate_all: bool = typer.Option(False, "--all", help="rotate every database credential"),
               fmt: str = FormatOption) -> None:
    """Alternating-users rotation: a new password for the user not in use, set on the writer, tested on every
    member, then made current. Clients pick it up at their next connection; nobody is locked out."""
    check_format(fmt)
    topo = context.topology()
    gdbs = GlobalDatabases(topo, deployment_network(topo))
    if bool(names) == rotate_all:
        raise InputError("name the databases to rotate, or pass --all (not both)")
    chosen = list(gdbs.names) if rotate_all else [gdbs.cluster(n).name for n in names]
    results = []
    with err_console.status("rotating") as status:
        for name in chosen:
            results.append(service.rotate_database(gdbs, name, progress=status.update))
    emit(results, fmt)
