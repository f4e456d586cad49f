"""One contract for the runbooks' ports, run against both providers: ``local`` (the shared deployment: real
PostgreSQL, agents, control API) and ``aws`` (the AWS provider against the simulated AWS, every request and answer
checked against botocore's service models). Each test leaves the world as it found it.

Failover itself is not here: on the local provider it needs a region cut off (the drills do that), and on AWS
the runbook tests drive it (tests/unit/aws/test_runbooks_on_aws.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from regionctl.errors import ConflictError, InputError, RetryLater
from regionctl.runbooks.ports import Ports
from regionctl.runbooks.wiring import bind
from tests.support.aws_world import AwsWorld
from tests.support.deploy import RunningDeployment

pytestmark = pytest.mark.integration
DATABASE = "catalog"  # the smaller of the two: the switchovers here are quicker


@dataclass
class Provider:
    name: str
    ports: Ports
    regions: tuple[str, str]


@pytest.fixture(params=["local", "aws"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provider]:
    if request.param == "local":
        deployment: RunningDeployment = request.getfixturevalue("deployment")
        yield Provider("local", bind(deployment.settings), deployment.settings.regions)
        return
    from regionctl.providers.aws.ports import bind as bind_aws

    world = AwsWorld()
    yield Provider("aws", bind_aws(world.settings(tmp_path), world.factory), world.regions)


def settled(provider: Provider, database: str, timeout_s: float = 60.0) -> Any:
    """The status once there is a writer and the other member streams from it (a switchover's old writer
    rejoins a moment after the promotion)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = provider.ports.databases.status(database)
        others = [m for r, m in status.members.items() if r != status.writer]
        if status.writer is not None and all(m.role == "standby" and m.streaming for m in others):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"{database} did not settle: {status}")
        time.sleep(0.5)


def change(provider: Provider, states: dict[str, str]) -> Any:
    """A routing change, waiting out a running wait period (the local panel has them; ARC's rules would too)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return provider.ports.routing.set_states(states, [], "contract-test", "contract")
        except RetryLater as wait:
            if time.monotonic() > deadline:
                raise
            time.sleep(wait.retry_after_s + 0.1)


def test_status_names_one_writer_and_a_standby_streaming_with_a_measured_lag(provider: Provider) -> None:
    status = settled(provider, DATABASE)
    assert status.writer in provider.regions
    (standby,) = [m for r, m in status.members.items() if r != status.writer]
    assert standby.lag_bytes is not None or standby.lag_ms is not None


def test_an_unknown_database_is_refused_by_name(provider: Provider) -> None:
    with pytest.raises(InputError, match="'no-such-db'"):
        provider.ports.databases.status("no-such-db")


def test_a_switchover_to_the_writer_changes_nothing(provider: Provider) -> None:
    writer = settled(provider, DATABASE).writer
    provider.ports.databases.switchover(DATABASE, writer)
    assert settled(provider, DATABASE).writer == writer


def test_a_switchover_moves_the_writer_and_the_old_writer_follows_it(provider: Provider) -> None:
    writer = settled(provider, DATABASE).writer
    other = next(r for r in provider.regions if r != writer)
    try:
        provider.ports.databases.switchover(DATABASE, other)
        after = settled(provider, DATABASE)
        assert after.writer == other and after.member(writer).role == "standby"
    finally:
        provider.ports.databases.switchover(DATABASE, writer)
    assert settled(provider, DATABASE).writer == writer


def test_routing_reads_every_region_and_asking_for_the_current_states_changes_nothing(provider: Provider) -> None:
    states = dict(provider.ports.routing.states())
    assert set(states) == set(provider.regions) and set(states.values()) <= {"On", "Off"}
    change(provider, states)
    assert dict(provider.ports.routing.states()) == states


def test_leaving_no_region_on_is_refused_naming_the_rule_and_nothing_changes(provider: Provider) -> None:
    before = dict(provider.ports.routing.states())
    with pytest.raises(ConflictError, match="at-least-one-region-on"):
        provider.ports.routing.set_states({r: "Off" for r in provider.regions}, [], "contract-test", "both off")
    assert dict(provider.ports.routing.states()) == before


def test_a_region_taken_out_and_back_reads_as_asked(provider: Provider) -> None:
    first = provider.regions[0]
    assert provider.ports.routing.states()[first] == "On"
    try:
        change(provider, {first: "Off"})
        assert provider.ports.routing.states()[first] == "Off" and not provider.ports.routing.healthy(first)
    finally:
        change(provider, {first: "On"})
    assert provider.ports.routing.states()[first] == "On"


def test_an_unknown_rule_to_override_is_refused_by_name(provider: Provider) -> None:
    with pytest.raises(InputError, match="'no-such-rule'"):
        provider.ports.routing.set_states({provider.regions[0]: "Off"}, ["no-such-rule"], "contract-test", "")
