"""``regionctl store ...`` against two real stores and replicators, read back as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regionctl.cli import context
from regionctl.cli.main import app
from regionctl.config import load_settings
from regionctl.regionalstore import RegionalStore, endpoints

from .conftest import ReplicatorProcs, eventually

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"


@pytest.fixture
def cli(dsns: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setattr(context, "settings", lambda: load_settings(data_dir=tmp_path))
    previous = endpoints.use_resolver(lambda settings, region: dsns[region])
    yield CliRunner()
    endpoints.use_resolver(previous)


def run(cli: CliRunner, *args: str) -> object:
    result = cli.invoke(app, ["store", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_status_pause_resume_and_conflicts_from_the_command_line(
        cli: CliRunner, stores: dict[str, RegionalStore], replicators: ReplicatorProcs) -> None:
    paused = run(cli, "pause", "--from", EAST, "--reason", "drill")
    assert paused == [{"direction": f"{EAST}->{WEST}", "paused": True, "changed": True, "drained": True,
                       "reason": f"{EAST}->{WEST} paused"}]
    assert run(cli, "status")["directions"][1]["paused"] is False  # type: ignore[index]
    run(cli, "pause", "--to", EAST)
    stores[EAST].put("carts", "c1:w1", {"quantity": 1})
    stores[WEST].put("carts", "c1:w1", {"quantity": 2})
    east_west, west_east = run(cli, "status")["directions"]  # type: ignore[index]
    assert (east_west["paused"], east_west["pause_reason"], east_west["backlog"]) == (True, "drill", 1)
    assert (west_east["paused"], west_east["pause_reason"], west_east["backlog"]) == (True, "paused by operator", 1)
    resumed = run(cli, "resume")  # both directions
    assert [r["paused"] for r in resumed] == [False, False]  # type: ignore[union-attr]
    eventually(lambda: stores[EAST].get("carts", "c1:w1") == stores[WEST].get("carts", "c1:w1"),
               what="convergence")
    eventually(lambda: len(run(cli, "conflicts")) >= 1, what="the conflict to be logged")  # type: ignore[arg-type]
    [conflict, *_] = run(cli, "conflicts", "--key", "c1:w1")  # type: ignore[misc]
    assert conflict["table"] == "carts" and conflict["reason"].startswith("concurrent writes")
    assert {conflict["incoming"]["value"]["quantity"], conflict["local"]["value"]["quantity"]} == {1, 2}


def test_bad_region_is_a_clear_error(cli: CliRunner) -> None:
    result = cli.invoke(app, ["store", "pause", "--from", "eu-west-9"])
    assert result.exit_code != 0
    assert "unknown region 'eu-west-9'" in str(result.exception)
