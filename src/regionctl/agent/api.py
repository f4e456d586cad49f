"""The agent's HTTP API: one region's instances, operated by the global plane over the network.

Every ``/v1`` call carries the deployment's agent token (``Authorization: Bearer``); ``/health`` says only that
the agent runs. Operations on one database run one at a time (a lock per database), and ``/v1/operations``
shows the ones under way with their phase and age: the progress of long calls (rewinds, clones, restores).
"""

from __future__ import annotations

import hmac
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from regionctl.agent import backups, members, scratch
from regionctl.agent.client import AgentClient
from regionctl.agent.host import RegionHost, check_database
from regionctl.agent.lease import LeaseKeeper
from regionctl.agent.members import Done, Role
from regionctl.errors import ConflictError, RegionctlError
from regionctl.runtime import httperrors
from regionctl.runtime.httperrors import error_response
from regionctl.runtime.topology import REGIONAL_DB

LSN = r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartBody(_Strict):
    role: Role
    primary_conninfo: str | None = None
    slot: str | None = Field(None, pattern=r"^[a-z0-9_]{1,63}$")


class StopBody(_Strict):
    mode: str = Field("fast", pattern="^(smart|fast|immediate)$")


class SourceBody(_Strict):
    source_conninfo: str = Field(min_length=1)
    slot: str | None = Field(None, pattern=r"^[a-z0-9_]{1,63}$")


class PreserveBody(_Strict):
    name: str
    meta: dict[str, Any] = Field(default_factory=dict)


class SnapshotBody(_Strict):
    id: str
    label: str | None = None


class PullBody(_Strict):
    origin: str = Field(min_length=1)
    source_url: str = Field(pattern=r"^https?://")


class RestoreBody(_Strict):
    id: str
    snapshot: str
    target: dict[str, Any]


class ReconBody(_Strict):
    name: str
    copy_name: str


class WaldumpBody(_Strict):
    kind: str = Field(pattern="^(restores|recon)$")
    name: str
    copy_name: str | None = None
    start: str = Field(pattern=LSN)
    timeline: int = Field(ge=1)


class Operations:
    """Calls under way (for progress) and one lock per database (so two calls never race on a member)."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._running: dict[str, dict[str, Any]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def run(self, kind: str, database: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(database, threading.Lock())
        op_id = uuid.uuid4().hex[:8]
        self._running[op_id] = {"id": op_id, "kind": kind, "database": database, "phase": "waiting for the lock",
                                "started_at": time.time()}
        try:
            with lock:
                self._running[op_id]["phase"] = "running"
                yield
        finally:
            self._running.pop(op_id, None)

    def list(self) -> list[dict[str, Any]]:
        now = time.time()
        return [{**op, "seconds": round(now - op["started_at"], 1)} for op in list(self._running.values())]


def create_app(host: RegionHost, token: str, keeper: LeaseKeeper | None = None) -> FastAPI:
    """``keeper`` holds the writer leases (None only in tests of the API alone: no writer may start then)."""
    app = FastAPI(title=f"regionctl agent ({host.region})", version="1")
    ops = Operations()
    _install_errors(app, token)
    _install_members(app, host, ops, keeper)
    _install_backups(app, host, ops, token)
    _install_scratch(app, host, ops)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "region": host.region}

    @app.get("/v1/status")
    def status() -> dict[str, Any]:
        dbs = sorted(p.name for p in (host.topo.paths.region(host.region) / "pg").glob("*") if p.is_dir())
        return {"region": host.region, "members": [members.status(host, d) for d in dbs if _known(d)],
                "operations": ops.list(), "leases": keeper.describe() if keeper else {}}

    @app.get("/v1/operations")
    def operations() -> list[dict[str, Any]]:
        return ops.list()

    return app


def _known(name: str) -> bool:
    try:
        check_database(name)
    except RegionctlError:
        return False
    return True


def _install_errors(app: FastAPI, token: str) -> None:
    @app.middleware("http")
    async def authorize(request: Request, call_next: Any) -> Any:
        if request.url.path.startswith("/v1"):
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return error_response(401, "a valid agent token is required", headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    httperrors.install(app)


def _done(result: Done) -> dict[str, Any]:
    return asdict(result)


def _may_write(keeper: LeaseKeeper | None, database: str) -> None:
    """A writer starts or is promoted here only while the lease names this region (or no lease applies)."""
    if database == REGIONAL_DB:
        return
    if keeper is None:
        raise ConflictError(f"{database}: this agent keeps no writer lease, so it starts no writer")
    keeper.claim(database)


def _install_members(app: FastAPI, host: RegionHost, ops: Operations, keeper: LeaseKeeper | None) -> None:
    @app.get("/v1/members/{database}")
    def member_status(database: str) -> dict[str, Any]:
        return members.status(host, check_database(database))

    @app.post("/v1/members/{database}/init")
    def init(database: str) -> dict[str, Any]:
        with ops.run("init", check_database(database)):
            return _done(members.init(host, database))

    @app.post("/v1/members/{database}/start")
    def start(database: str, body: StartBody) -> dict[str, Any]:
        with ops.run("start", check_database(database)):
            if body.role is not Role.STANDBY:
                _may_write(keeper, database)
            done = members.start(host, database, body.role, body.primary_conninfo, body.slot)
            if keeper is not None and body.role is Role.WRITER:
                keeper.guard(database)
            return _done(done)

    @app.post("/v1/members/{database}/stop")
    def stop(database: str, body: StopBody) -> dict[str, Any]:
        check_database(database)
        if body.mode == "immediate":  # a fence never waits behind a long call (a rewind, a clone)
            return _done(members.stop(host, database, body.mode))
        with ops.run("stop", database):
            return _done(members.stop(host, database, body.mode))

    @app.post("/v1/members/{database}/promote")
    def promote(database: str) -> dict[str, Any]:
        with ops.run("promote", check_database(database)):
            _may_write(keeper, database)
            done = members.promote(host, database)
            if keeper is not None:
                keeper.guard(database)
            return _done(done)

    @app.get("/v1/members/{database}/control-data")
    def control_data(database: str) -> dict[str, str]:
        return members.read_control_data(host, check_database(database))

    @app.post("/v1/members/{database}/rewind")
    def rewind(database: str, body: SourceBody) -> dict[str, Any]:
        with ops.run("rewind", check_database(database)):
            return _done(members.rewind(host, database, body.source_conninfo))

    @app.post("/v1/members/{database}/base-backup")
    def base_backup(database: str, body: SourceBody) -> dict[str, Any]:
        with ops.run("base-backup", check_database(database)):
            return _done(members.base_backup(host, database, body.source_conninfo, body.slot or "standby"))

    @app.post("/v1/members/{database}/preserve")
    def preserve(database: str, body: PreserveBody) -> dict[str, Any]:
        with ops.run("preserve", check_database(database)):
            return members.preserve(host, database, body.name, body.meta)

    @app.get("/v1/members/{database}/copies")
    def copies(database: str) -> list[dict[str, Any]]:
        return members.copies(host, check_database(database))


def _install_backups(app: FastAPI, host: RegionHost, ops: Operations, token: str) -> None:
    @app.post("/v1/members/{database}/snapshots")
    def snapshot(database: str, body: SnapshotBody) -> dict[str, Any]:
        with ops.run("snapshot", check_database(database)):
            return backups.take_snapshot(host, database, body.id, body.label)

    @app.get("/v1/members/{database}/snapshots")
    def snapshots(database: str) -> list[dict[str, Any]]:
        return backups.list_snapshots(host, check_database(database))

    @app.get("/v1/members/{database}/snapshots/{snap_id}/tar")
    def snapshot_tar(database: str, snap_id: str) -> StreamingResponse:
        return StreamingResponse(backups.snapshot_tar(host, check_database(database), snap_id),
                                 media_type="application/x-tar")

    @app.post("/v1/members/{database}/snapshots/{snap_id}/pull")
    def pull_snapshot(database: str, snap_id: str, body: PullBody) -> dict[str, Any]:
        with ops.run("pull-snapshot", check_database(database)), \
                AgentClient(body.origin, body.source_url, token) as source:
            return _done(backups.pull_snapshot(host, database, snap_id, source))

    @app.get("/v1/members/{database}/archive")
    def archive(database: str) -> dict[str, Any]:
        return {"files": backups.archive_files(host, check_database(database))}

    @app.get("/v1/members/{database}/archive/{name}")
    def archive_file(database: str, name: str) -> FileResponse:
        return FileResponse(backups.archive_file(host, check_database(database), name))

    @app.post("/v1/members/{database}/archive/pull")
    def pull_archive(database: str, body: PullBody) -> dict[str, Any]:
        with ops.run("pull-archive", check_database(database) + "/archive"), \
                AgentClient(body.origin, body.source_url, token) as source:
            return _done(backups.pull_archive(host, database, body.origin, source))


def _install_scratch(app: FastAPI, host: RegionHost, ops: Operations) -> None:
    @app.post("/v1/members/{database}/restores")
    def restore(database: str, body: RestoreBody) -> dict[str, Any]:
        with ops.run("restore", check_database(database) + "/restores"):
            return scratch.restore(host, database, body.id, body.snapshot, body.target)

    @app.get("/v1/members/{database}/restores")
    def restores(database: str) -> list[dict[str, Any]]:
        return scratch.list_restores(host, check_database(database))

    @app.post("/v1/members/{database}/recon")
    def recon(database: str, body: ReconBody) -> dict[str, Any]:
        with ops.run("recon", check_database(database) + "/recon"):
            return scratch.start_recon(host, database, body.copy_name, body.name)

    @app.delete("/v1/scratch/{kind}/{name}")
    def drop(kind: str, name: str) -> dict[str, Any]:
        return _done(scratch.drop(host, kind, name))

    @app.post("/v1/members/{database}/waldump")
    def waldump(database: str, body: WaldumpBody) -> StreamingResponse:
        lines = scratch.waldump(host, check_database(database), body.kind, body.name, body.copy_name, body.start,
                                body.timeline)
        return StreamingResponse((line.encode() for line in lines), media_type="text/plain")
