"""A two-region shop on one machine for integration and browser tests: PostgreSQL (a writer and a streaming
standby holding the global orders and catalog databases, plus one regional database per region) and the
twelve service processes started from ``shop.launch.process_specs``, exactly as the platform would."""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from regionctl.config import Settings, load_settings
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.postgres import PgInstance
from regionctl.runtime.process import ProcessSpec
from regionctl.shop.launch import DataSources, process_specs, ui_url
from tests.integration.shop.pg import destroy, dsn, multi_host_dsn, scratch_dir, start_primary, start_standby

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[3]
STAND_IN = "tests.integration.shop.pg_regional:PgRegionalStore"


def regional_db(region: str) -> str:
    return "regional_" + region.replace("-", "_")


@dataclass
class Deployment:
    settings: Settings
    ports: PortRegistry
    writer: PgInstance
    standby: PgInstance
    regional: PgInstance  # both regions' regional databases (the stand-in does not replicate)
    root: Path
    specs: list[ProcessSpec] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def ui(self, region: str) -> str:
        return ui_url(self.settings, self.ports, region)

    def url(self, region: str, service: str) -> str:
        spec = next(s for s in self.specs if s.region == region and s.name == service)
        return f"http://{spec.env['HOST']}:{spec.env['PORT']}"

    def log(self, key: str) -> str:
        path = self.root / "logs" / f"{key.replace('/', '-')}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def data_sources(settings: Settings, writer: PgInstance, standby: PgInstance,
                 regional: PgInstance) -> dict[str, DataSources]:
    members = {settings.primary_region: writer, settings.standby_region: standby}
    result = {}
    for region in settings.regions:
        local = members[region]
        result[region] = DataSources(
            orders_writer=multi_host_dsn([writer, standby], "orders"), orders_reader=dsn(local, "orders"),
            catalog_writer=multi_host_dsn([writer, standby], "catalog"), catalog_reader=dsn(local, "catalog"),
            regional=dsn(regional, regional_db(region)),
        )
    return result


def start_process(spec: ProcessSpec, logs: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **spec.env, "REGIONAL_STORE_IMPL": STAND_IN, "PYTHONPATH": str(REPO),
           "DB_RETRY_DEADLINE_S": "15", "OUTBOX_INTERVAL_S": "0.2"}
    log = open(logs / f"{spec.key.replace('/', '-')}.log", "ab")  # noqa: SIM115  # closed with the process
    return subprocess.Popen(spec.argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO),
                            start_new_session=True)


def wait_healthy(deployment: Deployment, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    pending = {s.key: s for s in deployment.specs}
    with httpx.Client(timeout=2.0) as client:
        while pending and time.monotonic() < deadline:
            for key, spec in list(pending.items()):
                if deployment.procs[key].poll() is not None:
                    raise RuntimeError(f"{key} exited: {deployment.log(key)[-2000:]}")
                try:
                    if client.get(str(spec.health_url)).status_code == 200:
                        del pending[key]
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
    if pending:
        details = {k: deployment.log(k)[-800:] for k in pending}
        raise RuntimeError(f"not healthy after {timeout_s}s: {sorted(pending)}; logs: {details}")


def start_deployment() -> Deployment:
    root = scratch_dir("regionctl-shop-stack-")
    settings = load_settings(data_dir=root / "data", base_port=random.randint(20000, 50000))
    writer = start_primary(root, "writer", ("orders", "catalog"))
    standby = start_standby(root, "standby", writer)
    regional = start_primary(root, "regional", tuple(regional_db(r) for r in settings.regions))
    ports = PortRegistry(root / "ports.json", settings.base_port)
    deployment = Deployment(settings, ports, writer, standby, regional, root)
    (root / "logs").mkdir(exist_ok=True)
    deployment.specs = process_specs(settings, ports, data_sources(settings, writer, standby, regional))
    try:
        for spec in deployment.specs:
            deployment.procs[spec.key] = start_process(spec, root / "logs")
        wait_healthy(deployment)
    except BaseException:
        stop_deployment(deployment)
        raise
    return deployment


def stop_deployment(deployment: Deployment) -> None:
    for proc in deployment.procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in deployment.procs.values():
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    destroy([deployment.standby, deployment.writer, deployment.regional], deployment.root)


def eventually(fn: Callable[[], T], timeout_s: float = 20.0) -> T:
    """``fn()`` once it stops raising AssertionError (replication and relays are asynchronous)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
