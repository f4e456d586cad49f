"""How a deployment finds and runs the regional store: DSN lookup, replicator process specs, directions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from regionctl.config import Paths, Settings, load_settings
from regionctl.errors import ConfigError, InputError, NotFoundError
from regionctl.regionalstore import Direction, endpoints, launch
from regionctl.regionalstore.replicator import parse_args
from regionctl.runtime.ports import PortRegistry

EAST, WEST = "us-east-1", "us-west-2"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path, base_port=31000)


def test_dsn_comes_from_the_port_registry_without_allocating(settings: Settings) -> None:
    registry = PortRegistry(Paths(settings.root).state / "ports.json", settings.base_port)
    with pytest.raises(NotFoundError, match="us-east-1/pg/regional"):
        endpoints.dsn(settings, EAST)
    assert registry.all() == {}  # the failed lookup allocated nothing
    port = registry.get(f"{WEST}/pg/regional", settings.region_address(WEST))
    assert endpoints.dsn(settings, WEST) == (f"host=127.0.2.1 port={port} user=postgres dbname=regional "
                                             f"passfile={settings.root / 'pgpass' / 'superuser'}")
    with pytest.raises(InputError, match="unknown region"):
        endpoints.dsn(settings, "eu-west-1")


def test_the_resolver_can_be_repointed(settings: Settings) -> None:
    previous = endpoints.use_resolver(lambda s, region: f"dbname=elsewhere-{region}")
    try:
        assert endpoints.dsns(settings) == {EAST: "dbname=elsewhere-us-east-1", WEST: "dbname=elsewhere-us-west-2"}
    finally:
        endpoints.use_resolver(previous)


def test_one_replicator_per_direction_in_its_source_region(settings: Settings) -> None:
    local = {EAST: "dbname=regional host=127.0.1.1", WEST: "dbname=regional host=127.0.2.1"}
    remote = {(EAST, WEST): "host=127.0.1.1 port=9001", (WEST, EAST): "host=127.0.2.1 port=9002"}
    specs = launch.process_specs(settings, local, remote)
    assert [(s.region, s.name) for s in specs] == [(EAST, "store-replicator"), (WEST, "store-replicator")]
    east = specs[0]
    assert east.env == {"REGIONALSTORE_SOURCE_DSN": local[EAST], "REGIONALSTORE_TARGET_DSN": remote[(EAST, WEST)]}
    assert east.argv[:3] == (sys.executable, "-m", "regionctl.regionalstore.replicator")
    args = parse_args(list(east.argv[3:]) + ["--source", "x", "--target", "y"])
    assert (args.source_region, args.target_region, args.metrics_host) == (EAST, WEST, "127.0.1.1")
    assert east.health_url == f"http://127.0.1.1:{args.metrics_port}/metrics"
    assert launch.process_specs(settings, local, remote)[0].argv == east.argv  # ports are remembered
    assert all(local[EAST] not in arg for arg in east.argv)  # DSNs stay out of the process listing
    with pytest.raises(ConfigError, match="us-west-2's store as reached from us-east-1"):
        launch.process_specs(settings, local, {(WEST, EAST): "x"})


def test_directions_parse_and_refuse_nonsense() -> None:
    assert Direction.parse("us-east-1->us-west-2") == Direction(EAST, WEST)
    assert str(Direction.parse("us-west-2:us-east-1")) == "us-west-2->us-east-1"
    for bad in ("us-east-1", "us-east-1->us-east-1", "->x", "a->b->c"):
        with pytest.raises(InputError):
            Direction.parse(bad)


def test_replicator_arguments_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGIONALSTORE_SOURCE_DSN", raising=False)
    with pytest.raises(SystemExit):
        parse_args(["--source-region", EAST, "--target-region", WEST, "--target", "x"])  # no source DSN
    with pytest.raises(SystemExit):
        parse_args(["--source-region", EAST, "--target-region", EAST, "--source", "x", "--target", "y"])
    monkeypatch.setenv("REGIONALSTORE_SOURCE_DSN", "dbname=a")
    assert parse_args(["--source-region", EAST, "--target-region", WEST, "--target", "y"]).source == "dbname=a"
