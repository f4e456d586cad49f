"""The engine as a deployment process: its ProcessSpec, the control token, the CLI's local commands."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regionctl.cli import context
from regionctl.cli.main import app
from regionctl.config import Paths, load_settings
from regionctl.runbooks.launch import PORT_KEY, engine_url, process_spec
from regionctl.runtime.ports import PortRegistry
from regionctl.runtime.process import GLOBAL_PLANE
from regionctl.runtime.secrets import control_token, token_path


def test_process_spec_is_a_global_plane_process_on_its_registered_port(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, base_port=31000)
    paths = Paths(settings.root)
    registry = PortRegistry(paths.state / "ports.json", settings.base_port)
    assert engine_url(settings) is None
    spec = process_spec(settings, registry, paths)
    port = registry.get(PORT_KEY, "127.0.0.1")
    assert (spec.name, spec.region, spec.key) == ("runbooks", GLOBAL_PLANE, "global/runbooks")
    assert spec.argv[1:] == ("-m", "regionctl.runbooks.server", "--host", "127.0.0.1", "--port", str(port))
    assert spec.health_url == f"http://127.0.0.1:{port}/healthz"
    assert spec.env["REGIONCTL_DATA_DIR"] == str(tmp_path) and spec.env["PRIMARY_REGION"] == "us-east-1"
    assert engine_url(settings) == f"http://127.0.0.1:{port}"
    assert process_spec(settings, registry, paths) == spec  # the same port every time


def test_control_token_is_generated_once_privately_unless_configured(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    first = control_token(settings)
    assert len(first) >= 32 and control_token(settings) == first
    assert stat.S_IMODE(token_path(settings).stat().st_mode) == 0o600
    configured = load_settings(data_dir=tmp_path, control_token="a-configured-token-of-length")
    assert control_token(configured) == "a-configured-token-of-length"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REGIONCTL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REGIONCTL_BASE_PORT", "31500")
    context.settings.cache_clear()
    yield CliRunner()
    context.settings.cache_clear()


def test_cli_lists_and_validates_without_an_engine(cli: CliRunner, tmp_path: Path) -> None:
    listed = cli.invoke(app, ["runbook", "list", "--format", "json"])
    assert listed.exit_code == 0
    assert {r["name"] for r in json.loads(listed.output)} >= {"RegionFailover", "Failback", "DisableApplication"}
    shown = cli.invoke(app, ["runbook", "show", "RegionFailover", "-f", "json"])
    assert json.loads(shown.output)["parameters"]["region"]["required"] is True
    bad = tmp_path / "Bad.yaml"
    bad.write_text("description: bad\nsteps:\n  - name: A\n    action: db.failover\n    inputs: {database: orders}\n")
    result = cli.invoke(app, ["runbook", "validate", str(bad), "-f", "json"])
    assert result.exit_code == 2
    assert json.loads(result.output) == [{"file": str(bad), "valid": False, "problems": [
        f"{bad}:5: steps.A.inputs.to_region: db.failover needs input 'to_region'"]}]


def test_cli_says_when_the_engine_is_not_running(cli: CliRunner) -> None:
    result = cli.invoke(app, ["runbook", "status"])
    assert result.exit_code != 0
    assert "has not been started in this deployment" in str(result.exception)
