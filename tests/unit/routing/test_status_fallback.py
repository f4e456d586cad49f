"""``regionctl routing status`` while the control API is down: the global entry's view, or the API's error when
the entry does not answer either."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regionctl.cli import context
from regionctl.cli.main import app
from regionctl.config import load_settings
from regionctl.errors import ExternalError
from regionctl.routing.client import entry_status
from regionctl.routing.plane import PORT_KEYS

EAST, WEST = "us-east-1", "us-west-2"
ENTRY_VIEW = {
    "routing": "routing to us-west-2 only", "healthy": [WEST], "controls": {EAST: "Off", WEST: "On"},
    "controls_version": 7, "controls_source_up": False,
    "controls_note": "control API unreachable; serving the last known state",
    "regions": [{"region": EAST, "routable": False, "reason": "control Off", "health": "health check passing"},
                {"region": WEST, "routable": True, "reason": "On and healthy", "health": "health check passing"}],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens here once the socket is closed


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("REGIONCTL_DATA_DIR", str(tmp_path))
    context.settings.cache_clear()
    (tmp_path / "state").mkdir()
    yield tmp_path
    context.settings.cache_clear()


def register(root: Path, ports: dict[str, int]) -> None:
    (root / "state" / "ports.json").write_text(json.dumps(
        {PORT_KEYS[name]: {"host": "127.0.0.1", "port": port} for name, port in ports.items()}))


@pytest.fixture
def entry() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = json.dumps(ENTRY_VIEW).encode() if self.path == "/_entry/status" else b"{}"
            self.send_response(200 if self.path == "/_entry/status" else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()


def test_with_the_api_down_status_shows_the_entrys_view(root: Path, entry: int) -> None:
    register(root, {"api": free_port(), "entry": entry})
    result = CliRunner().invoke(app, ["routing", "status", "--format", "json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["source"] == "global entry" and "not reachable" in shown["note"]
    assert "last known state" in shown["note"] and shown["rules"] == [] and shown["version"] == 7
    assert shown["controls"] == [{"name": EAST, "state": "Off"}, {"name": WEST, "state": "On"}]
    assert [(r["region"], r["control"], r["routable"], r["health"]["detail"]) for r in shown["regions"]] == [
        (EAST, "Off", False, "health check passing"), (WEST, "On", True, "health check passing")]
    table = CliRunner().invoke(app, ["routing", "status"])
    assert table.exit_code == 0 and "global entry" in table.output


def test_with_the_api_and_the_entry_down_the_apis_error_is_reported(root: Path) -> None:
    register(root, {"api": free_port(), "entry": free_port()})
    assert entry_status(load_settings(), "api down") is None
    result = CliRunner().invoke(app, ["routing", "status"])
    assert isinstance(result.exception, ExternalError) and "control API" in str(result.exception)


def test_an_entry_never_started_gives_no_view(root: Path) -> None:
    register(root, {"api": free_port()})
    assert entry_status(load_settings(), "api down") is None
