"""``regionctl load``: buy watches through a ui (or the global entry) at a fixed rate; log every acknowledged
order with its time to a JSON-lines ack log that drills and benchmarks read."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from regionctl.cli import context
from regionctl.cli.render import FormatOption, check_format, emit
from regionctl.config import Paths, Settings
from regionctl.errors import NotFoundError
from regionctl.runtime.ports import PortRegistry
from regionctl.shop.launch import port_key
from regionctl.shop.loadgen import run_load


def default_endpoint(settings: Settings, region: str | None) -> str:
    """The ui of ``region`` (default: the primary) as ``regionctl up`` registered it; never allocates a port."""
    region = settings.require_region(region or settings.primary_region)
    known = PortRegistry(Paths(settings.root).state / "ports.json", settings.base_port).all()
    if port_key(region, "ui") not in known:
        raise NotFoundError(f"no ui is registered for {region} under {settings.root}; start the shop with "
                            "`regionctl up` or pass --endpoint")
    host, port = known[port_key(region, "ui")]
    return f"http://{host}:{port}"


def load(
    rate: Annotated[float, typer.Option("--rate", help="purchases started per second")],
    duration: Annotated[float, typer.Option("--duration", help="seconds to keep starting purchases")],
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="a ui or the global entry")] = None,
    region: Annotated[str | None, typer.Option("--region", help="whose ui, without --endpoint")] = None,
    ack_log: Annotated[Path | None, typer.Option("--ack-log", help="JSON lines of acknowledged orders")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds per HTTP request")] = 30.0,
    fmt: str = FormatOption,
) -> None:
    """Run the purchase flow at RATE per second for DURATION seconds and report what was acknowledged."""
    check_format(fmt)
    settings = context.settings()
    target = endpoint or default_endpoint(settings, region)
    log = ack_log or Paths(settings.root).state / "acks.jsonl"
    report = asyncio.run(run_load(target, rate, duration, log, timeout_s=timeout))
    emit(report, fmt)
    if report.acknowledged == 0:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("load")(load)
