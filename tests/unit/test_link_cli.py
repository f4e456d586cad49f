"""``regionctl link`` without a running emulator: flags are checked first, and the error says what to do."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from regionctl.cli import context
from regionctl.cli.link import status_table
from regionctl.cli.main import app
from regionctl.config import Paths, load_settings
from regionctl.errors import ConfigError, ExternalError, InputError
from regionctl.runtime.link import (
    CONTROL_PORT_KEY,
    LinkStatus,
    Route,
    RouteStatus,
    link_control_url,
    link_process_spec,
)
from regionctl.runtime.link_model import apply_partition, initial_directions, isolation_pairs


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


@pytest.mark.parametrize(("region", "named"), [("eu-west-1", "unknown region 'eu-west-1'"),
                                                ("global", "global plane, not a region")])
def test_isolate_refuses_what_is_not_a_region_before_calling_anything(
    deployment: Path, region: str, named: str
) -> None:
    result = CliRunner().invoke(app, ["link", "isolate", region, "--format", "json"])
    assert isinstance(result.exception, InputError)  # not ExternalError: the emulator was never asked
    assert str(result.exception).startswith("region: ") and named in str(result.exception)


def test_isolate_of_a_region_asks_the_emulator(deployment: Path) -> None:
    result = CliRunner().invoke(app, ["link", "isolate", "us-west-2", "--reset"])
    assert isinstance(result.exception, ExternalError) and "not running" in str(result.exception)


def render(status: LinkStatus) -> str:
    console = Console(record=True, width=200)
    console.print(status_table(status))
    return console.export_text()


def test_the_status_table_names_the_isolated_region_and_the_control_path() -> None:
    start = initial_directions(("us-east-1", "us-west-2"), 30.0, 0.0)
    assert "isolated: none" in render(LinkStatus(start, ()))
    cut = apply_partition(start, isolation_pairs("us-west-2", ("us-east-1", "us-west-2")), True)
    text = render(LinkStatus(cut, ()))
    assert "isolated: us-west-2" in text
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]
    rows = {row[0]: row[1:] for row in cells if "->" in row[0]}
    assert rows["global->us-west-2"] == ["control", "0", "0", "partitioned"]
    assert rows["us-west-2->global"] == ["control", "0", "0", "partitioned"]
    assert rows["global->us-east-1"] == ["control", "0", "0", "up"]
    assert rows["us-east-1->us-west-2"] == ["data", "30", "0", "partitioned"]


def test_the_status_table_shows_the_path_of_a_unix_socket_end_and_host_port_of_a_tcp_one() -> None:
    start = initial_directions(("us-east-1", "us-west-2"), 30.0, 0.0)
    unix = Route("etcd/b", "us-east-1", "us-west-2", listen_path="/run/a/etcd-b:2380",
                 target_path="/run/b/etcd-b:2380")
    mixed = Route("pg", "us-east-1", "us-west-2", "127.0.1.1", 17100, target_path="/run/b/.s.PGSQL.5432")
    counters = dict(listening=True, error=None, connections_open=1, connections_total=2, connect_errors=0,
                    bytes_src_to_dst=10, bytes_dst_to_src=20, queued_src_to_dst=0, queued_dst_to_src=0,
                    held_src_to_dst=0, held_dst_to_src=0)
    text = render(LinkStatus(start, (RouteStatus(unix, **counters), RouteStatus(mixed, **counters))))  # type: ignore[arg-type]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]
    rows = {row[0].split()[0]: row[1:3] for row in cells if row and row[0].split()[0] in ("etcd/b", "pg")}
    assert rows["etcd/b"] == ["/run/a/etcd-b:2380", "/run/b/etcd-b:2380"]
    assert rows["pg"] == ["127.0.1.1:17100", "/run/b/.s.PGSQL.5432"]
    assert ":0" not in text


def test_the_control_path_settings_are_checked_like_the_others() -> None:
    for bad in ({"control_latency_ms": -1}, {"control_jitter_ms": 10_001}, {"control_latency_ms": "slow"}):
        with pytest.raises(ConfigError, match=f"link.{next(iter(bad))}"):
            load_settings(link=bad)
    assert load_settings().link.control_latency_ms == 0.0 and load_settings().link.control_jitter_ms == 0.0


def test_the_process_spec_runs_serve_with_the_settings_latency() -> None:
    settings = load_settings(link={"latency_ms": 45, "jitter_ms": 3, "control_latency_ms": 1.5},
                             control_token="x" * 20)
    spec = link_process_spec(settings, "127.0.0.1", 17999, Path("/data/state/link"))
    assert spec.key == "global/link"
    assert spec.argv[1:4] == ("-m", "regionctl.runtime.link", "serve")
    args = dict(zip(spec.argv[4::2], spec.argv[5::2], strict=True))
    assert args == {"--state-dir": "/data/state/link", "--control": "127.0.0.1:17999",
                    "--regions": "us-east-1,us-west-2", "--latency-ms": "45.0", "--jitter-ms": "3.0",
                    "--control-latency-ms": "1.5", "--control-jitter-ms": "0.0",
                    "--operators": str(Paths(settings.root).operators), "--audit": str(Paths(settings.root).audit)}
    assert spec.health_url == "http://127.0.0.1:17999/health"
    assert "x" * 20 not in " ".join(spec.argv)  # the token goes in the environment, not on the command line
    assert "x" * 20 in spec.env.values()
