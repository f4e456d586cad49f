from __future__ import annotations

from pathlib import Path

import pytest

from regionctl.config import load_settings
from regionctl.errors import ConfigError, InputError


def test_defaults_follow_the_reference_makefile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("ENV", "PRIMARY_REGION", "STANDBY_REGION"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings()
    assert settings.regions == ("us-east-1", "us-west-2")
    assert settings.root == tmp_path / ".regionctl" / "dev"
    assert settings.region_address("us-east-1") == "127.0.1.1"
    assert settings.region_address("us-west-2") == "127.0.2.1"
    assert settings.link.latency_ms == 30


def test_environment_and_toml_choose_regions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "regionctl.toml").write_text('standby_region = "eu-west-1"\n[link]\nlatency_ms = 5\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PRIMARY_REGION", "eu-central-1")
    monkeypatch.setenv("ENV", "staging")
    settings = load_settings()
    assert settings.regions == ("eu-central-1", "eu-west-1")
    assert settings.link.latency_ms == 5
    assert settings.root.name == "staging"
    assert settings.other_region("eu-west-1") == "eu-central-1"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"primary_region": "mars"}, "primary_region"),
        ({"primary_region": "us-west-2"}, "standby_region"),
        ({"env": "Bad Env"}, "env"),
        ({"link": {"latency_ms": -1}}, "link.latency_ms"),
        ({"base_port": 80}, "base_port"),
        ({"control_token": "changeme"}, "control_token"),
        ({"unknown_knob": 1}, "unknown_knob"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    assert field.split(".")[0] in str(info.value)


def test_malformed_toml_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "regionctl.toml").write_text("primary_region = \n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="regionctl.toml"):
        load_settings()


def test_unknown_region_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown region 'ap-south-1'"):
        load_settings().region_address("ap-south-1")


def test_reconciliation_lenses_come_from_settings_and_bad_ones_are_refused(tmp_path: Path) -> None:
    from regionctl.reconcile.lens import configured

    default = load_settings(data_dir=tmp_path)
    assert [c.root_table for c in configured(default.workload.lenses, "orders")] == ["customer_order"]
    assert configured(default.workload.lenses, "catalog") == ()
    mine = {"name": "products", "database": "catalog", "root_table": "inventory.product", "root_key": "sku",
            "fields": ["name", "price"]}
    custom = load_settings(data_dir=tmp_path, workload={"lenses": [mine]})
    (lens,) = configured(custom.workload.lenses, "catalog")
    assert (lens.name, lens.root_table, lens.fields, lens.child_table) == ("products", "inventory.product",
                                                                           ("name", "price"), None)
    for bad, field in [({**mine, "database": "carts"}, "database"), ({**mine, "child_table": "x"}, "child_fk"),
                       ({**mine, "colour": "red"}, "colour"), ({**mine, "root_table": "my table"}, "root_table"),
                       ({**mine, "fields": ["name", "status"]}, "status"),
                       ({**mine, "child_fields": ["qty"]}, "child_fields need a child_table")]:
        with pytest.raises(ConfigError, match=field):
            load_settings(data_dir=tmp_path, workload={"lenses": [bad]})
    with pytest.raises(ConfigError, match="catalog/products"):
        load_settings(data_dir=tmp_path, workload={"lenses": [mine, {**mine, "root_table": "other"}]})
