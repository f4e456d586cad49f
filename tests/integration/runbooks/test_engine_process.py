"""A real engine process (``python -m regionctl.runbooks.server``) killed with SIGKILL mid-runbook, twice, and
restarted: the execution completes, completed steps never ran again, the in-flight one ran again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from regionctl.cli import context
from regionctl.cli.main import app
from regionctl.config import Paths, load_settings
from regionctl.runbooks.client import RunbookClient
from regionctl.runbooks.launch import process_spec
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.secrets import control_token
from tests.support.ports import deployment_base_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]

KILL = """
description: survives its engine being killed
steps:
  - name: One
    action: python
    inputs: {function: append, args: {line: one}}
  - name: Block
    action: python
    inputs: {function: block_once, args: {marker: blocked}}
    timeoutSeconds: 120
  - name: Two
    action: python
    inputs: {function: append, args: {line: two}}
  - name: Nap
    action: sleep
    inputs: {seconds: 3}
  - name: Three
    action: python
    inputs: {function: append, args: {line: three}}
"""


class Server:
    def __init__(self, root: Path) -> None:
        self.settings = load_settings(data_dir=root, base_port=deployment_base_port())
        paths = Paths(self.settings.root)
        self.spec = process_spec(self.settings, PortRegistry(paths.state / "ports.json", self.settings.base_port),
                                 paths)
        self.journal = paths.state / "runbooks.sqlite"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **self.spec.env, "PYTHONPATH": str(REPO)}
        argv = [*self.spec.argv, "--bind", "tests.integration.runbooks.procports:bind"]
        self.proc = subprocess.Popen(argv, env=env, cwd=REPO, start_new_session=True)
        wait_for(lambda: _healthy(self.spec.health_url or ""), 30, "engine healthy")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def step_status(self, execution_id: str, step: str) -> str | None:
        with sqlite3.connect(self.journal) as db:
            row = db.execute("SELECT status FROM step_runs WHERE execution_id = ? AND step = ? ORDER BY seq DESC",
                             (execution_id, step)).fetchone()
        return None if row is None else str(row[0])


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "Kill.yaml").write_text(KILL)
    srv = Server(tmp_path)
    yield srv
    srv.stop()


def test_a_killed_engine_resumes_and_runs_no_completed_step_twice(server: Server, tmp_path: Path) -> None:
    server.start()
    client = RunbookClient(server.spec.health_url.removesuffix("/healthz"), control_token(server.settings))
    execution_id = client.start("Kill", {})["id"]

    wait_for(lambda: (tmp_path / "blocked").exists(), 30, "the Block step to run")
    server.kill()  # dies inside Block
    assert server.step_status(execution_id, "One") == "succeeded"
    assert server.step_status(execution_id, "Block") == "running"

    server.start()
    wait_for(lambda: server.step_status(execution_id, "Nap") == "running", 30, "the Nap step")
    server.kill()  # dies inside Nap

    server.start()
    wait_for(lambda: client.execution(execution_id)["status"] == "succeeded", 30, "the execution to finish")
    assert (tmp_path / "effects.txt").read_text().splitlines() == ["one", "two", "three"]
    # One and Two completed before a kill: once each; Block was in flight at the first kill: twice
    assert sorted((tmp_path / "calls.txt").read_text().splitlines()) == ["block", "block", "one", "three", "two"]
    history = [e["kind"] for e in client.history(execution_id)]
    assert history.count("execution.resumed") == 2
    client.close()


def test_the_cli_drives_the_engine(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.start()
    monkeypatch.setenv("REGIONCTL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REGIONCTL_BASE_PORT", str(server.settings.base_port))
    context.settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["runbook", "start", "RegionFailover", "-p", "region=us-east-1", "-p",
                                     "mode=graceful", "--wait", "-f", "json"])
        assert result.exit_code == 0, result.output
        view = json.loads(result.output)
        assert view["status"] == "succeeded" and view["recovery_s"] is not None
        listed = json.loads(runner.invoke(app, ["runbook", "status", "-f", "json"]).output)
        assert [row["id"] for row in listed] == [view["id"]]
        refused = runner.invoke(app, ["runbook", "pause", view["id"]])
        assert "only a running one can pause" in str(refused.exception)
    finally:
        context.settings.cache_clear()
