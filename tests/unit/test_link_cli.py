"""``regionctl link`` without a running emulator: flags are checked first, and the error says what to do."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regionctl.cli import context
from regionctl.cli.main import app
from regionctl.config import load_settings
from regionctl.errors import ExternalError, InputError
from regionctl.runtime.link import CONTROL_PORT_KEY, link_control_url, link_process_spec


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("REGIONCTL_DATA_DIR", str(tmp_path))
    context.settings.cache_clear()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "ports.json").write_text(json.dumps({CONTROL_PORT_KEY: {"host": "127.0.0.1", "port": port}}))
    yield tmp_path
    context.settings.cache_clear()


def test_the_control_url_comes_from_the_port_registry(deployment: Path) -> None:
    port = json.loads((deployment / "state" / "ports.json").read_text())[CONTROL_PORT_KEY]["port"]
    assert link_control_url(load_settings()) == f"http://127.0.0.1:{port}"


def test_set_without_a_value_is_refused_before_calling_anything(deployment: Path) -> None:
    result = CliRunner().invoke(app, ["link", "set", "--direction", "both"])
    assert isinstance(result.exception, InputError)
    assert "--latency-ms" in str(result.exception)


def test_a_stopped_emulator_is_reported_with_what_to_do(deployment: Path) -> None:
    result = CliRunner().invoke(app, ["link", "partition", "--direction", "us-east-1->us-west-2", "--reset"])
    assert isinstance(result.exception, ExternalError)
    assert "not running" in str(result.exception) and "regionctl up" in str(result.exception)


def test_the_process_spec_runs_serve_with_the_settings_latency() -> None:
    settings = load_settings(link={"latency_ms": 45, "jitter_ms": 3}, control_token="x" * 20)
    spec = link_process_spec(settings, "127.0.0.1", 17999, Path("/data/state/link"))
    assert spec.key == "global/link"
    assert spec.argv[1:4] == ("-m", "regionctl.runtime.link", "serve")
    args = dict(zip(spec.argv[4::2], spec.argv[5::2], strict=True))
    assert args == {"--state-dir": "/data/state/link", "--control": "127.0.0.1:17999",
                    "--regions": "us-east-1,us-west-2", "--latency-ms": "45.0", "--jitter-ms": "3.0"}
    assert spec.health_url == "http://127.0.0.1:17999/health"
    assert "x" * 20 not in " ".join(spec.argv)  # the token goes in the environment, not on the command line
    assert "x" * 20 in spec.env.values()
