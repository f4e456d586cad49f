"""What a runbook drill needs around a running deployment: shoppers buying through the global entry, the
runbook engine driven as an operator drives it (CLI and API), its process killed mid-run, and the facts a
drill checks afterwards (writers, acknowledged orders, promotions). Shared by the drill tests and
``benchmarks/runbooks.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from regionctl.errors import ExternalError, RegionctlError
from regionctl.globaldb.service import GlobalDatabases
from regionctl.routing.client import ControlClient
from regionctl.runbooks.client import RunbookClient
from regionctl.runbooks.wiring import entry_url
from regionctl.runtime.supervisor import read_processes
from regionctl.shop.loadgen import Ack, read_acks, run_load
from tests.support.deploy import RunningDeployment

REGIONCTL = str(Path(sys.executable).with_name("regionctl"))
ENGINE_KEY = "global/runbooks"
FINISHED = ("succeeded", "failed", "cancelled")


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --- shoppers -------------------------------------------------------------------------------------------------


@dataclass
class Shoppers:
    """The shop's load generator buying through the global entry until stopped; every acknowledged order is
    appended to ``ack_log`` (the ground truth a drill compares the databases with)."""

    endpoint: str
    ack_log: Path
    rate: float = 2.0
    chunk_s: float = 3.0
    errors: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def through_the_global_entry(cls, deployment: RunningDeployment, ack_log: Path, rate: float = 2.0) -> Shoppers:
        return cls(entry_url(deployment.settings), ack_log, rate)

    def start(self) -> Shoppers:
        self._thread = threading.Thread(target=self._run, name="shoppers", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():  # open-loop chunks; a chunk waits for its slow purchases (timeout 20 s)
            report = asyncio.run(run_load(self.endpoint, self.rate, self.chunk_s, self.ack_log, timeout_s=20.0))
            for kind, count in report.errors.items():
                self.errors[kind] = self.errors.get(kind, 0) + count

    def stop(self) -> list[Ack]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=90)
        return self.acks()

    def acks(self) -> list[Ack]:
        return read_acks(self.ack_log)

    def wait_for_orders(self, count: int, after: float = 0.0, timeout: float = 60.0) -> None:
        """Until ``count`` orders whose purchase started at or after ``after`` (epoch seconds) are acknowledged."""
        wait_for(lambda: sum(started(a) >= after for a in self.acks()) >= count, timeout,
                 f"{count} orders acknowledged through the global entry", interval=0.2)


def started(ack: Ack) -> float:
    """When the purchase of an acknowledged order started (epoch seconds): its order was committed later."""
    return ack.ts - ack.latency_ms / 1000


# --- the runbook engine, as an operator drives it -------------------------------------------------------------


def regionctl(deployment: RunningDeployment, *args: str, token: str | None = None) -> Any:
    """Run the CLI against the deployment (as the operator holding ``token``, else as its admin); return its JSON
    output."""
    env = deployment.cli_env if token is None else {**deployment.cli_env, "REGIONCTL_TOKEN": token}
    result = subprocess.run([REGIONCTL, *args, "--format", "json"], env=env, capture_output=True,
                            text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"regionctl {' '.join(args)} -> {result.returncode}: {result.stderr}{result.stdout}")
    return json.loads(result.stdout)


def operator_token(deployment: RunningDeployment, name: str, role: str) -> str:
    """A token of operator ``name`` (added with ``role``, or rotated when it exists), made through the CLI."""
    listed = {row["name"]: row for row in regionctl(deployment, "operators", "list")}
    if name in listed and listed[name].get("revoked_at") is None:
        return str(regionctl(deployment, "operators", "rotate", name)["token"])
    return str(regionctl(deployment, "operators", "add", name, "--role", role)["token"])


def start_runbook(deployment: RunningDeployment, runbook: str, **params: str) -> str:
    """``regionctl runbook start`` (without --wait, as an operator who then watches it); returns the id."""
    pairs = [arg for name, value in params.items() for arg in ("-p", f"{name}={value}")]
    return str(regionctl(deployment, "runbook", "start", runbook, *pairs)["id"])


def engine(deployment: RunningDeployment) -> RunbookClient:
    return RunbookClient.for_settings(deployment.settings)


def engine_pid(deployment: RunningDeployment) -> int:
    return read_processes(deployment.topo.paths.state)[ENGINE_KEY].pid


def execution(deployment: RunningDeployment, execution_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """The execution's view; waits out an engine that is restarting."""
    deadline = time.monotonic() + timeout
    while True:
        client = engine(deployment)
        try:
            return dict(client.execution(execution_id))
        except ExternalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        finally:
            client.close()


def kill_engine_while_promoting(deployment: RunningDeployment, database: str, timeout: float = 120.0) -> int:
    """SIGKILL the engine process while it promotes ``database`` (the promotion's intent is recorded and the
    operation has not finished); the deployment's supervisor starts a new engine, which resumes the execution
    from its journal. Returns the killed pid."""
    store = deployment.gdbs.store  # read straight from the file: a promotion takes well under a second

    def promoting() -> bool:
        state = store.load(database)
        return state is not None and state.interrupted() is not None

    wait_for(promoting, timeout, f"a promotion of {database} to start", interval=0.005)
    pid = engine_pid(deployment)
    os.kill(pid, signal.SIGKILL)  # the engine alone: the global plane's process group holds the link and entry
    wait_for(lambda: engine_pid(deployment) != pid, 30, "the supervisor to start a new engine", interval=0.1)
    return pid


def wait_settled(deployment: RunningDeployment, execution_id: str, timeout: float = 300.0) -> dict[str, Any]:
    """Until the execution has finished or waits for an approver; returns its view."""
    view: dict[str, Any] = {}

    def settled() -> bool:
        nonlocal view
        view = execution(deployment, execution_id)
        return view["status"] in FINISHED or bool(view["waiting"])

    wait_for(settled, timeout, f"execution {execution_id} to finish or wait for an approver", interval=0.2)
    return view


def step_outputs(view: dict[str, Any], step: str) -> dict[str, Any]:
    """The outputs of the last run of ``step`` (top level or inside a parallel block)."""
    runs = [run for top in view["steps"] for run in (top, *top["parallel"]) if run["step"] == step]
    if not runs:
        raise AssertionError(f"execution {view['id']} has not run step {step}")
    return dict(runs[-1]["outputs"] or {})


def history_kinds(deployment: RunningDeployment, execution_id: str) -> list[str]:
    client = engine(deployment)
    try:
        return [e["kind"] for e in client.history(execution_id)]
    finally:
        client.close()


# --- facts ----------------------------------------------------------------------------------------------------


def writer_region(deployment: RunningDeployment, database: str) -> str | None:
    status = deployment.gdbs.status(database)
    return next((m.region for m in status.members if m.role == "writer"), None)


def promotions(deployment: RunningDeployment, database: str) -> list[tuple[str, str, str]]:
    """(kind, from, to) of every promotion the database has had."""
    return [(r.kind, r.from_region, r.to_region) for r in deployment.gdbs.state(database).history]


def orders_held_in(deployment: RunningDeployment, region: str) -> set[str]:
    """Ids of the orders held by the orders database member in ``region``."""
    member = deployment.gdbs.cluster("orders").member(region)
    return {str(row["id"]) for row in member.query("select id from customer_order", dbname="orders")}


def lost_orders_in_report(deployment: RunningDeployment, report_id: str) -> set[str]:
    """Ids of the orders a missing-transaction report lists (its orders lens)."""
    from regionctl.reconcile import service

    report = service.show(deployment.topo, report_id)
    return {str(doc["id"]) for doc in report.lenses.get("orders", [])}


def routing_controls(deployment: RunningDeployment) -> dict[str, str]:
    client = ControlClient.from_settings(deployment.settings)
    try:
        return dict(client.state()["controls"])
    finally:
        client.close()


# --- leaving the deployment as the other tests expect it ------------------------------------------------------


def leave_healthy(deployment: RunningDeployment, home: str, timeout: float = 180.0) -> None:
    """Writers back in ``home``, every routing control On, every standby streaming: whatever a failed drill
    left behind (best effort, straight through the platform's operations, not through the engine)."""
    deployment.link.heal("both")
    gdbs = deployment.gdbs
    for name in gdbs.names:
        _heal_database(deployment, name, home)
    client = ControlClient.from_settings(deployment.settings)
    try:
        controls = client.state()["controls"]
        off = {region: True for region, state in controls.items() if state != "On"}
        if off:
            client.change(off, (), "drill cleanup", "leave the deployment healthy")
    finally:
        client.close()
    for name in gdbs.names:
        wait_for(partial(_healthy, gdbs, name), timeout, f"{name} healthy", interval=0.5)


def _healthy(gdbs: GlobalDatabases, name: str) -> bool:
    return gdbs.status(name).healthy


def _heal_database(deployment: RunningDeployment, name: str, home: str) -> None:
    gdbs = deployment.gdbs
    try:
        state = gdbs.state(name)
        interrupted = state.interrupted()
        if interrupted is not None:
            getattr(gdbs, interrupted.kind)(name, interrupted.to_region)
            state = gdbs.state(name)
        for region in state.diverged:
            gdbs.preserve(name, region)
            gdbs.rebuild(name, region)
        if gdbs.state(name).writer != home:
            wait_for(lambda: bool(gdbs.status(name).member(home).streaming), 60, f"{name} in {home} streaming")
            gdbs.switchover(name, home)
    except RegionctlError as exc:
        raise AssertionError(f"could not heal {name}: {exc}") from exc
