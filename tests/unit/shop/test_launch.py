"""The shop's process specs: one per service per region, each wired to its own region only."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionctl.config import load_settings
from regionctl.errors import ConfigError
from regionctl.runtime.ports import PortRegistry
from regionctl.shop import SERVICES
from regionctl.shop.launch import DataSources, process_specs


def sources(tag: str) -> DataSources:
    return DataSources(f"ow-{tag}", f"or-{tag}", f"cw-{tag}", f"cr-{tag}", f"rg-{tag}")


def test_one_spec_per_service_per_region_wired_within_the_region(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, base_port=23000)
    ports = PortRegistry(tmp_path / "ports.json", settings.base_port)
    specs = process_specs(settings, ports, {"us-east-1": sources("e"), "us-west-2": sources("w")})
    assert [(s.region, s.name) for s in specs] == [(r, s) for r in settings.regions for s in SERVICES]
    by_key = {s.key: s for s in specs}
    ui = by_key["us-west-2/ui"]
    assert ui.env["HOST"] == "127.0.2.1" and ui.env["REGION"] == "us-west-2"
    catalog_port = ports.get("us-west-2/catalog", "127.0.2.1")
    assert ui.env["ENDPOINTS_CATALOG"] == f"http://127.0.2.1:{catalog_port}"
    assert ui.health_url == f"http://127.0.2.1:{ui.env['PORT']}/actuator/health"
    assert by_key["us-east-1/catalog"].health_url.endswith("/health")
    assert by_key["us-east-1/orders"].env["ORDERS_READER_DSN"] == "or-e"
    assert by_key["us-west-2/checkout"].env["REGIONAL_DSN"] == "rg-w"
    assert "ORDERS_WRITER_DSN" not in by_key["us-east-1/ui"].env
    assert ports.get("us-east-1/ui", "127.0.1.1") == int(by_key["us-east-1/ui"].env["PORT"])


def test_a_region_without_data_sources_is_refused_by_name(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    with pytest.raises(ConfigError, match="us-west-2"):
        process_specs(settings, PortRegistry(tmp_path / "p.json", 23100), {"us-east-1": sources("e")})


def test_workers_share_the_service_address_each_with_a_port_of_its_own(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, base_port=23200, workload={"workers": {"ui": 3}})
    ports = PortRegistry(tmp_path / "ports.json", settings.base_port)
    specs = process_specs(settings, ports, {"us-east-1": sources("e"), "us-west-2": sources("w")})
    assert len(specs) == 2 * (len(SERVICES) + 2)
    ui = [s for s in specs if s.region == "us-east-1" and s.env.get("WORKER_PORT")]
    assert [s.name for s in ui] == ["ui", "ui-2", "ui-3"]  # the first keeps the name chaos and status know
    assert {s.env["PORT"] for s in ui} == {str(ports.get("us-east-1/ui", "127.0.1.1"))}
    own = [s.env["WORKER_PORT"] for s in ui]
    assert len(set(own)) == 3 and ui[0].env["PORT"] not in own
    assert [s.health_url for s in ui] == [f"http://127.0.1.1:{p}/actuator/health" for p in own]
    assert [s.metrics_url for s in ui] == [f"http://127.0.1.1:{p}/metrics" for p in own]
    catalog = next(s for s in specs if s.key == "us-east-1/catalog")
    assert "WORKER_PORT" not in catalog.env and catalog.health_url.endswith(f":{catalog.env['PORT']}/health")
    again = process_specs(settings, ports, {"us-east-1": sources("e"), "us-west-2": sources("w")})
    assert [s.env for s in again] == [s.env for s in specs]  # a second up reuses the workers' ports


def test_workers_of_an_unknown_service_are_refused_naming_it(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, workload={"workers": {"payments": 2}})
    with pytest.raises(ConfigError, match="workload.workers names 'payments', not a shop service"):
        process_specs(settings, PortRegistry(tmp_path / "p.json", 23300), {"us-east-1": sources("e"),
                                                                          "us-west-2": sources("w")})


@pytest.mark.parametrize("count", [0, 17, "two"])
def test_a_bad_worker_count_is_refused_at_load_naming_the_field(tmp_path: Path, count: object) -> None:
    with pytest.raises(ConfigError, match=r"workload\.workers\.ui"):
        load_settings(data_dir=tmp_path, workload={"workers": {"ui": count}})
