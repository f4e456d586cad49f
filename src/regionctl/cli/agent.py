"""``regionctl agent``: run a region's agent on its host, and see what each agent reports."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit
from regionctl.globaldb.member import Agents
from regionctl.runtime.network import deployment_network

agent_app = typer.Typer(no_args_is_help=True, help="The per-region agents that own each region's databases.")


@agent_app.command("serve")
def serve(region: str = typer.Option(..., "--region", help="the region this host serves"),
          listen: str = typer.Option(None, "--listen", help="HOST:PORT (default: the inventory's address)")) -> None:
    """Serve one region's agent in the foreground (``up`` starts them itself on one machine)."""
    from regionctl.agent.serve import serve as run

    context.settings().require_region(region)
    run(region, listen)


@agent_app.command("status")
def status(region: str = typer.Argument(None, help="one region (default: all)"), fmt: str = FormatOption) -> None:
    """Each agent: reachable or not, its members and the operations under way (long calls show here)."""
    check_format(fmt)
    settings = context.settings()
    topo = context.topology()
    agents = Agents(topo, deployment_network(topo))
    regions = [settings.require_region(region)] if region else list(settings.regions)
    emit([agents.view(r) for r in regions], fmt, table=_table)


def _table(views: list[dict[str, Any]]) -> Table:
    table = Table("region", "agent", "state", "members (running)", "operations")
    for view in views:
        members = ", ".join(f"{m['database']}{'' if m['running'] else ' (stopped)'}" for m in view["members"])
        ops = ", ".join(f"{o['kind']} {o['database']} {o['seconds']}s" for o in view["operations"]) or "-"
        table.add_row(view["region"], view["url"], "reachable" if view["reachable"] else "UNREACHABLE",
                      members or "-", ops)
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")
