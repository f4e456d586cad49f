"""``regionctl link``: the emulated network between regions (latency, jitter, partitions)."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Group
from rich.table import Table

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit
from regionctl.errors import InputError
from regionctl.runtime.link import LinkClient, LinkStatus, link_client

DirectionOption = typer.Option("both", "--direction", "-d", help="SRC->DST (e.g. us-east-1->us-west-2), SRC<->DST "
                               "or both")

link_app = typer.Typer(no_args_is_help=True, help="The emulated network between regions.")


def _client() -> LinkClient:
    return link_client(context.settings())


@link_app.command("status")
def status(fmt: str = FormatOption) -> None:
    """Show each direction's latency, jitter and state, and each route's counters."""
    check_format(fmt)
    with _client() as client:
        emit(client.status(), fmt, table=status_table)


@link_app.command("set")
def set_direction(
    direction: str = DirectionOption,
    latency_ms: float | None = typer.Option(None, "--latency-ms", help="one-way latency in ms"),
    jitter_ms: float | None = typer.Option(None, "--jitter-ms", help="uniform 0..jitter ms added per chunk"),
    fmt: str = FormatOption,
) -> None:
    """Change latency and/or jitter of a direction (or both)."""
    check_format(fmt)
    if latency_ms is None and jitter_ms is None:
        raise InputError("link set: give --latency-ms and/or --jitter-ms")
    with _client() as client:
        emit(client.set(direction, latency_ms=latency_ms, jitter_ms=jitter_ms), fmt, table=status_table)


@link_app.command("partition")
def partition(
    direction: str = DirectionOption,
    reset: bool = typer.Option(False, "--reset", help="also drop open connections with a RST"),
    fmt: str = FormatOption,
) -> None:
    """Blackhole a direction (or both): bytes are held until heal; --reset also cuts open connections."""
    check_format(fmt)
    with _client() as client:
        emit(client.partition(direction, reset=reset), fmt, table=status_table)


@link_app.command("heal")
def heal(direction: str = DirectionOption, fmt: str = FormatOption) -> None:
    """End a partition; held bytes flow again."""
    check_format(fmt)
    with _client() as client:
        emit(client.heal(direction), fmt, table=status_table)


def status_table(status: LinkStatus) -> Any:
    directions = Table(title="directions")
    for column in ("direction", "latency ms", "jitter ms", "state"):
        directions.add_column(column)
    for d in status.directions:
        directions.add_row(d.name, f"{d.latency_ms:g}", f"{d.jitter_ms:g}",
                           "[red]partitioned[/red]" if d.partitioned else "up")
    routes = Table(title="routes")
    for column in ("route", "listen", "target", "open/total", "bytes ->", "bytes <-", "held ->", "held <-", "error"):
        routes.add_column(column)
    for r in status.routes:
        route = r.route
        routes.add_row(
            f"{route.name} ({route.src_region}->{route.dst_region})",
            f"{route.listen_host}:{route.listen_port}", f"{route.target_host}:{route.target_port}",
            f"{r.connections_open}/{r.connections_total}", str(r.bytes_src_to_dst), str(r.bytes_dst_to_src),
            str(r.held_src_to_dst), str(r.held_dst_to_src), r.error or ("" if r.listening else "not listening"),
        )
    return Group(directions, routes)


def register(app: typer.Typer) -> None:
    app.add_typer(link_app, name="link")
