"""ARC routing controls through botocore's Stubber: the calls are the ones the service model accepts, in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionctl.errors import ConflictError, InputError, Unreachable
from regionctl.providers.aws.arc import ArcRouting
from tests.support.aws_world import ARC_CLUSTER, ARC_ENDPOINTS, ArcRule, AwsWorld
from tests.unit.aws.stubbed import StubbedClients, stubbed

EAST, WEST = "us-east-1", "us-west-2"
SERVICE = "route53-recovery-cluster"


@pytest.fixture
def world() -> AwsWorld:
    """Used here only for resource names and settings; the Stubber answers."""
    return AwsWorld(arc_rules=[ArcRule("min-one-on", "arn:aws:route53-recovery-control::123456789012:controlpanel/"
                                       "0123456789abcdef0123456789abcdef/safetyrule/" + "a" * 32, lambda _: True)])


def routing(world: AwsWorld, tmp_path: Path, clients: StubbedClients, **aws: object) -> ArcRouting:
    return ArcRouting(world.settings(tmp_path, **aws), clients)


def state_answer(world: AwsWorld, region: str, state: str) -> dict[str, str]:
    return {"RoutingControlArn": world.control_arn(region), "RoutingControlState": state}


def expect_states(clients: StubbedClients, world: AwsWorld, endpoint: str, east: str, west: str) -> None:
    stub = clients.stub(SERVICE, EAST, endpoint)
    for region, state in ((EAST, east), (WEST, west)):
        stub.add_response("get_routing_control_state", state_answer(world, region, state),
                          {"RoutingControlArn": world.control_arn(region)})


def test_an_endpoint_that_times_out_is_skipped_and_the_next_one_answers(world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        first, second = ARC_ENDPOINTS[EAST], ARC_ENDPOINTS[WEST]
        clients.timeout(SERVICE, EAST, first)
        for region, state in ((EAST, "Off"), (WEST, "On")):
            clients.stub(SERVICE, WEST, second).add_response("get_routing_control_state",
                                                             state_answer(world, region, state),
                                                             {"RoutingControlArn": world.control_arn(region)})
        assert routing(world, tmp_path, clients).states()[EAST] == "Off"
        assert clients.timed_out == [first]


def test_a_read_no_endpoint_answers_is_reported_never_guessed(world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        for region, url in ARC_ENDPOINTS.items():
            clients.timeout(SERVICE, region, url)
        with pytest.raises(Unreachable, match="no ARC cluster endpoint answered") as refused:
            routing(world, tmp_path, clients).states()
        assert all(region in str(refused.value) for region in ARC_ENDPOINTS)
        assert clients.timed_out == list(ARC_ENDPOINTS.values())


def test_several_controls_change_in_one_call_with_arc_rules_overridden_by_name(world: AwsWorld,
                                                                               tmp_path: Path) -> None:
    with stubbed() as clients:
        endpoint = ARC_ENDPOINTS[EAST]
        expect_states(clients, world, endpoint, "Off", "On")
        clients.stub(SERVICE, EAST, endpoint).add_response("update_routing_control_states", {}, {
            "UpdateRoutingControlStateEntries": [
                {"RoutingControlArn": world.control_arn(EAST), "RoutingControlState": "On"},
                {"RoutingControlArn": world.control_arn(WEST), "RoutingControlState": "Off"}],
            "SafetyRulesToOverride": [world.arc_rules[0].arn]})
        result = routing(world, tmp_path, clients).set_states({EAST: "On", WEST: "Off"}, ["min-one-on"], "ops",
                                                              "failback")
        assert result["sent"] and result["changed"] == [EAST, WEST] and result["arc_rules_overridden"] == ["min-one-on"]


def test_a_refusal_by_an_arc_safety_rule_says_so_and_is_not_retried_elsewhere(world: AwsWorld,
                                                                              tmp_path: Path) -> None:
    with stubbed() as clients:
        endpoint = ARC_ENDPOINTS[EAST]
        expect_states(clients, world, endpoint, "On", "On")
        clients.stub(SERVICE, EAST, endpoint).add_client_error(
            "update_routing_control_states", "ConflictException", "violates safety rule min-one-on", 409,
            service_error_meta={"resourceId": "x", "resourceType": "SafetyRule"})
        with pytest.raises(ConflictError, match="ARC refused: ConflictException: violates safety rule min-one-on"):
            routing(world, tmp_path, clients).set_states({EAST: "Off"}, [], "ops", "drill")


def test_our_rule_refuses_leaving_no_region_on_before_anything_is_sent(world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        expect_states(clients, world, ARC_ENDPOINTS[EAST], "Off", "On")
        with pytest.raises(ConflictError, match="at-least-one-region-on"):
            routing(world, tmp_path, clients).set_states({WEST: "Off"}, [], "ops", "drill")
    # no update was queued: had one been sent, the Stubber would have refused it


def test_asking_for_the_states_there_already_are_sends_nothing(world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        expect_states(clients, world, ARC_ENDPOINTS[EAST], "On", "Off")
        result = routing(world, tmp_path, clients).set_states({WEST: "Off"}, [], "ops", "again")
        assert result["sent"] is False and result["changed"] == []


def test_bad_changes_and_unknown_rules_are_refused_by_name_before_any_call(world: AwsWorld, tmp_path: Path) -> None:
    with stubbed() as clients:
        arc = routing(world, tmp_path, clients)
        with pytest.raises(InputError, match="unknown routing control 'eu-west-1'"):
            arc.set_states({"eu-west-1": "Off"}, [], "ops", "")
        with pytest.raises(InputError, match="neither On nor Off"):
            arc.set_states({EAST: "off"}, [], "ops", "")
        with pytest.raises(InputError, match="cannot override unknown rule 'no-such-rule'; rules are"):
            arc.set_states({EAST: "Off"}, ["no-such-rule"], "ops", "")


def test_endpoints_not_configured_are_read_from_the_cluster_in_arcs_region_order(world: AwsWorld,
                                                                                tmp_path: Path) -> None:
    with stubbed() as clients:
        listed = [{"Endpoint": ARC_ENDPOINTS[r], "Region": r} for r in ("eu-west-1", WEST, EAST)]
        clients.stub("route53-recovery-control-config", WEST).add_response(
            "describe_cluster", {"Cluster": {"ClusterArn": ARC_CLUSTER, "ClusterEndpoints": listed}},
            {"ClusterArn": ARC_CLUSTER})
        arc = routing(world, tmp_path, clients, arc_endpoints={})
        assert [region for region, _ in arc.endpoints()] == [EAST, WEST, "eu-west-1"]
