"""The whole deployment `up` starts: every component answers and cross-region paths go through the link."""

from __future__ import annotations

import time

import pytest

from regionctl.deploy.components import regional_dsn
from regionctl.regionalstore import RegionalStore
from regionctl.routing.client import ControlClient
from regionctl.runtime.network import deployment_network
from regionctl.runtime.status import deployment_status
from tests.support.deploy import RunningDeployment

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"


def test_every_supervised_component_is_up(deployment: RunningDeployment) -> None:
    rows = deployment_status(deployment.topo)
    down = [(r.region, r.component, r.state) for r in rows if r.state in ("down", "unhealthy", "unreachable")]
    assert not down
    names = {r.component for r in rows}
    assert {"link", "reconslot", "routing-api", "entry", "dns", "runbooks", "store-replicator"} <= names


def test_a_cart_written_in_one_region_is_visible_in_the_other_through_the_link(
    deployment: RunningDeployment,
) -> None:
    topo = deployment.topo
    network = deployment_network(topo)
    with RegionalStore(regional_dsn(topo, network, EAST, EAST), EAST) as east, \
            RegionalStore(regional_dsn(topo, network, WEST, WEST), WEST) as west:
        east.put("carts", "visitor-1:watch-1", {"quantity": 2})
        deadline = time.monotonic() + 30
        while west.get("carts", "visitor-1:watch-1") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        item = west.get("carts", "visitor-1:watch-1")
        assert item is not None and item.value == {"quantity": 2} and item.origin == EAST
    routes = {r.route.name for r in deployment.link.status().routes}
    assert {f"{EAST}/{WEST}/pg/regional", f"{WEST}/{EAST}/pg/regional"} <= routes


def test_both_routing_controls_start_on(deployment: RunningDeployment) -> None:
    state = ControlClient.from_settings(deployment.settings).state()
    assert state["controls"][EAST] == "On" and state["controls"][WEST] == "On"
