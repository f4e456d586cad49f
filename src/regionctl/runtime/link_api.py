"""The link emulator's HTTP control API and its ``serve`` entry point (one asyncio loop runs both).

Changes need an operator whose role permits ``operate`` (``operators.gate``) and land in the deployment's audit
log; reads are open. Handlers are ``async def`` on purpose: they touch the engine, which lives in the event
loop and is not thread-safe, so none may run in FastAPI's thread pool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from regionctl.errors import RegionctlError
from regionctl.operators.audit import AuditLog
from regionctl.operators.gate import Authenticator, Gate
from regionctl.operators.roles import OPERATE
from regionctl.operators.store import OperatorStore
from regionctl.runtime import httperrors
from regionctl.runtime.link_engine import LinkEngine
from regionctl.runtime.link_model import MAX_DELAY_MS, LinkStatus, Route

log = logging.getLogger("regionctl.link")

TOKEN_ENV = "REGIONCTL_LINK_TOKEN"  # when set, mutating calls need "Authorization: Bearer <token>"

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DirectionSettings(_Strict):
    latency_ms: float | None = Field(None, ge=0, le=MAX_DELAY_MS, description="one-way latency")
    jitter_ms: float | None = Field(None, ge=0, le=MAX_DELAY_MS, description="uniform 0..jitter added per chunk")


class DirectionChange(DirectionSettings):
    direction: str = Field("both", description="SRC->DST, SRC<->DST (a site may be global) or both (the regions)")


class PartitionRequest(_Strict):
    direction: str = "both"
    reset: bool = Field(False, description="also drop every open connection crossing it with a RST")


class IsolateRequest(_Strict):
    region: str = Field(description="the region cut off from the other region and the global plane")
    reset: bool = Field(False, description="also drop every open connection to or from it with a RST")


class HealRequest(_Strict):
    direction: str = Field("both", description="SRC->DST, SRC<->DST or both (every direction, control path too)")


class RouteRequest(_Strict):
    name: str
    src_region: str
    dst_region: str
    listen_host: str = Field("", description="TCP listen address; not used with listen_path")
    listen_port: int = Field(0, description="TCP listen port; not used with listen_path")
    target_host: str = Field("", description="TCP target address; not used with target_path")
    target_port: int = Field(0, description="TCP target port; not used with target_path")
    listen_path: str | None = Field(None, description="listen on this unix socket (absolute path) instead")
    target_path: str | None = Field(None, description="forward to this unix socket (absolute path) instead")


def _status_json(status: LinkStatus) -> dict[str, Any]:
    return asdict(status)


def create_app(engine: LinkEngine, operators: Authenticator | None = None, audit: AuditLog | None = None
               ) -> FastAPI:
    """``operators`` None: every call is open (an emulator started by hand or by a test, with no token)."""
    app = FastAPI(title="regionctl link emulator", version="1",
                  responses=httperrors.documented(400, 401, 403, 404, 409))
    httperrors.install(app)
    if operators is None:
        changes: list[Any] = []
    else:
        gate = Gate("link", operators, audit)
        gate.install(app)
        changes = [Depends(gate.requires(OPERATE))]

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "routes": len(engine.listeners)}

    @app.get("/status")
    async def status() -> dict[str, Any]:
        return _status_json(engine.status())

    @app.put("/directions", dependencies=changes)
    async def set_directions(body: DirectionChange) -> dict[str, Any]:
        return _status_json(engine.set(body.direction, body.latency_ms, body.jitter_ms))

    @app.put("/directions/{src}/{dst}", dependencies=changes)
    async def set_direction(src: str, dst: str, body: DirectionSettings) -> dict[str, Any]:
        return _status_json(engine.set(f"{src}->{dst}", body.latency_ms, body.jitter_ms))

    @app.post("/partition", dependencies=changes)
    async def partition(body: PartitionRequest) -> dict[str, Any]:
        return _status_json(engine.partition(body.direction, body.reset))

    @app.post("/isolate", dependencies=changes)
    async def isolate(body: IsolateRequest) -> dict[str, Any]:
        return _status_json(engine.isolate(body.region, body.reset))

    @app.post("/heal", dependencies=changes)
    async def heal(body: HealRequest) -> dict[str, Any]:
        return _status_json(engine.heal(body.direction))

    @app.post("/routes", dependencies=changes)
    async def add_route(body: RouteRequest) -> dict[str, Any]:
        return asdict(await engine.ensure_route(Route(**body.model_dump())))

    @app.delete("/routes/{name:path}", dependencies=changes)
    async def remove_route(name: str) -> dict[str, Any]:
        return {"name": name, "removed": await engine.remove_route(name)}

    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` owns SIGTERM/SIGINT so the engine closes cleanly."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(args: argparse.Namespace) -> None:
    host, port = args.control
    engine = LinkEngine(Path(args.state_dir), args.regions, args.latency_ms, args.jitter_ms,
                        args.control_latency_ms, args.control_jitter_ms)
    await engine.start()
    config = uvicorn.Config(
        create_app(engine, _operators(args), AuditLog(Path(args.audit)) if args.audit else None), host=host,
        port=port, log_level="warning",
        access_log=False, lifespan="off", timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stopper(server))
    try:
        await server.serve()
    finally:
        await engine.close()
    if not server.started:
        raise SystemExit(f"link emulator: cannot serve the control API on {host}:{port}")
    log.info("link emulator stopped")


def _operators(args: argparse.Namespace) -> OperatorStore | None:
    """Who may change the link: the deployment's operators when a token is set (``$REGIONCTL_LINK_TOKEN`` is
    the control token, ``--operators`` their file), nobody checked when it is not."""
    token = os.environ.get(TOKEN_ENV)
    if not token:
        return None
    return OperatorStore(Path(args.operators) if args.operators else None, token)


def _stopper(server: uvicorn.Server) -> Callable[[], None]:
    def stop() -> None:
        server.should_exit = True

    return stop


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def _regions(text: str) -> tuple[str, ...]:
    regions = tuple(r.strip() for r in text.split(",") if r.strip())
    if len(regions) < 2 or len(set(regions)) != len(regions):
        raise argparse.ArgumentTypeError(f"{text!r}: need at least two distinct comma-separated regions")
    return regions


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m regionctl.runtime.link", description="the link emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run every route and the control API in one process")
    run.add_argument("--state-dir", required=True, help="where routes and direction states persist")
    run.add_argument("--control", required=True, type=_address, help="HOST:PORT of the control API")
    run.add_argument("--regions", type=_regions, default=("us-east-1", "us-west-2"), help="comma-separated")
    run.add_argument("--latency-ms", type=float, default=30.0, help="initial one-way latency (no state file yet)")
    run.add_argument("--jitter-ms", type=float, default=0.0, help="initial jitter (no state file yet)")
    run.add_argument("--control-latency-ms", type=float, default=0.0,
                     help="initial one-way latency between the global plane and each region (no state yet)")
    run.add_argument("--control-jitter-ms", type=float, default=0.0, help="initial jitter of the control path")
    run.add_argument("--operators", help="the deployment's operators file (tokens of operators who may change it)")
    run.add_argument("--audit", help="the deployment's audit log (one line per change, with who made it)")
    run.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop implementation")
    run.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def _run(main: Awaitable[None], loop: str) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        loop = "asyncio"
    if loop == "asyncio":
        asyncio.run(main)  # type: ignore[arg-type]
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        _run(serve(args), args.loop)
    except RegionctlError as exc:
        raise SystemExit(f"link emulator: {exc}") from None
