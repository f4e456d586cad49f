"""``regionctl link``: the emulated network between the sites (the regions and the global plane): latency,
jitter, partitions and isolation."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Group
from rich.table import Table

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit
from regionctl.errors import InputError
from regionctl.operators.caller import caller_token
from regionctl.runtime.link import LinkClient, LinkStatus, link_client
from regionctl.runtime.link_model import check_isolate_region

DirectionOption = typer.Option("both", "--direction", "-d", help="SRC->DST (e.g. us-east-1->us-west-2 or "
                               "global->us-east-1), SRC<->DST, or both (every direction between the regions; "
                               "not the control path)")
HealDirectionOption = typer.Option("both", "--direction", "-d", help="SRC->DST, SRC<->DST (a site may be global), "
                                   "or both (every direction of the link, the control path's too)")

link_app = typer.Typer(no_args_is_help=True, help="The emulated network between the regions and the global plane.")


def _client() -> LinkClient:
    """As the caller (``$REGIONCTL_TOKEN[_FILE]``): a change is audited under the operator who made it."""
    settings = context.settings()
    return link_client(settings, token=caller_token(settings))


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


@link_app.command("isolate")
def isolate(
    region: str = typer.Argument(..., help="the region to cut off from the other region and the global plane"),
    reset: bool = typer.Option(False, "--reset", help="also drop its open connections with a RST"),
    fmt: str = FormatOption,
) -> None:
    """Partition every direction to and from REGION (the other region's and the control path's); its own
    services still reach each other. `link heal` ends it."""
    check_format(fmt)
    check_isolate_region(region, context.settings().regions)
    with _client() as client:
        emit(client.isolate(region, reset=reset), fmt, table=status_table)


@link_app.command("heal")
def heal(direction: str = HealDirectionOption, fmt: str = FormatOption) -> None:
    """End a partition (by default every one, an isolation too); held bytes flow again."""
    check_format(fmt)
    with _client() as client:
        emit(client.heal(direction), fmt, table=status_table)


def status_table(status: LinkStatus) -> Any:
    isolated = f"isolated: [red]{', '.join(status.isolated)}[/red]" if status.isolated else "isolated: none"
    directions = Table(title="directions", caption=isolated)
    for column in ("direction", "path", "latency ms", "jitter ms", "state"):
        directions.add_column(column)
    for d in status.directions:
        directions.add_row(d.name, "control" if d.control_path else "data", f"{d.latency_ms:g}", f"{d.jitter_ms:g}",
                           "[red]partitioned[/red]" if d.partitioned else "up")
    routes = Table(title="routes")
    for column in ("route", "listen", "target", "open/total", "bytes ->", "bytes <-", "held ->", "held <-", "error"):
        routes.add_column(column)
    for r in status.routes:
        route = r.route
        routes.add_row(
            f"{route.name} ({route.src_region}->{route.dst_region})",
            route.listen_address, route.target_address,  # a unix socket end shows its path
            f"{r.connections_open}/{r.connections_total}", str(r.bytes_src_to_dst), str(r.bytes_dst_to_src),
            str(r.held_src_to_dst), str(r.held_dst_to_src), r.error or ("" if r.listening else "not listening"),
        )
    return Group(directions, routes)


def register(app: typer.Typer) -> None:
    app.add_typer(link_app, name="link")
