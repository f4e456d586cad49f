"""provider = "aws" settings are refused at start when they would send a runbook to the wrong place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regionctl.errors import ConfigError
from tests.support.aws_world import AwsWorld


def settings(tmp_path: Path, **aws: Any) -> Any:
    return AwsWorld().settings(tmp_path, **aws)


def test_the_aws_provider_needs_its_settings(tmp_path: Path) -> None:
    from regionctl.config import load_settings

    with pytest.raises(ConfigError, match="provider is 'aws' but no \\[aws\\] settings"):
        load_settings(data_dir=tmp_path, provider="aws")
    with pytest.raises(ConfigError, match="provider: Value error, must be one of local, aws, not 'gcp'"):
        load_settings(data_dir=tmp_path, provider="gcp")


def test_every_region_and_database_is_named_and_clusters_sit_in_their_regions(tmp_path: Path) -> None:
    world = AwsWorld()
    good = world.settings(tmp_path).aws
    assert good is not None
    regions = good.model_dump()["regions"]
    with pytest.raises(ConfigError, match="aws.regions must name exactly us-east-1, us-west-2, not us-east-1"):
        settings(tmp_path, regions={"us-east-1": regions["us-east-1"]})
    databases = good.model_dump()["databases"]
    with pytest.raises(ConfigError, match="aws.databases lacks catalog"):
        settings(tmp_path, databases={"orders": databases["orders"]})
    swapped = {**databases, "orders": {**databases["orders"], "clusters": {
        "us-east-1": world.cluster_arn("orders", "us-west-2"), "us-west-2": world.cluster_arn("orders", "us-east-1")}}}
    with pytest.raises(ConfigError, match="aws.databases.orders.clusters.us-east-1 is a cluster in us-west-2"):
        settings(tmp_path, databases=swapped)


def test_a_password_in_a_connection_string_is_refused(tmp_path: Path) -> None:
    world = AwsWorld()
    good = world.settings(tmp_path).aws
    assert good is not None
    databases = good.model_dump()["databases"]
    leaky = {**databases, "orders": {**databases["orders"], "dsn": {"us-east-1": "host=x password=hunter2"}}}
    with pytest.raises(ConfigError, match="holds a password") as refused:
        settings(tmp_path, databases=leaky)
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ConfigError, match="holds a password"):
        settings(tmp_path, reconcile={"connect_options": "user=postgres password=hunter2"})


def test_a_routing_control_arn_of_another_kind_is_refused(tmp_path: Path) -> None:
    world = AwsWorld()
    good = world.settings(tmp_path).aws
    assert good is not None
    regions = good.model_dump()["regions"]
    regions["us-west-2"]["routing_control_arn"] = world.cluster_arn("orders", "us-west-2")
    with pytest.raises(ConfigError, match="aws.regions.us-west-2.routing_control_arn"):
        settings(tmp_path, regions=regions)
