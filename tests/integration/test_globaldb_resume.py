"""A promotion whose process dies half-way is finished by running the operation again, never repeated.

The process dying is simulated by an exception nothing catches, raised at the worst moment: after the intent
is recorded and before the promotion (failover), and after the promotion and before the new writer is recorded
(switchover). The supervisor's ``ensure`` runs in between, as it does every second in a deployment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from regionctl.globaldb import failover, switchover
from tests.support.deploy import RunningDeployment

pytestmark = pytest.mark.integration
EAST, WEST = "us-east-1", "us-west-2"


class ProcessDied(BaseException):
    """Stands in for SIGKILL: no ``except Exception`` sees it, locks and files are left as they are."""


def dies_once(real: Callable[..., Any]) -> Callable[..., Any]:
    calls = {"n": 0}

    def maybe_die(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ProcessDied
        return real(*args, **kwargs)

    return maybe_die


def promotions(deployment: RunningDeployment, name: str) -> list[tuple[str, str, str]]:
    return [(r.kind, r.from_region, r.to_region) for r in deployment.gdbs.state(name).history]


def test_an_interrupted_failover_and_switchover_finish_with_one_promotion_each(
    deployment: RunningDeployment, monkeypatch: pytest.MonkeyPatch,
) -> None:
    gdbs = deployment.gdbs
    before = promotions(deployment, "orders")

    monkeypatch.setattr(failover, "_promote", dies_once(failover._promote))
    with pytest.raises(ProcessDied):
        gdbs.failover("orders", WEST)
    state = gdbs.state("orders")
    assert state.writer == WEST and state.interrupted() is not None  # the intent, recorded before acting
    assert gdbs.cluster("orders").member(WEST).in_recovery()  # ... and not acted on yet
    gdbs.ensure("orders")  # the supervisor meanwhile: fences the old writer, promotes nothing

    result = gdbs.failover("orders", WEST)
    assert "resumed failover" in result.reason and result.divergence_lsn != "unknown"
    assert gdbs.status("orders").member(WEST).role == "writer"
    assert gdbs.state("orders").interrupted() is None
    assert promotions(deployment, "orders") == [*before, ("failover", EAST, WEST)]

    gdbs.preserve("orders", EAST)
    gdbs.rebuild("orders", EAST)
    monkeypatch.setattr(switchover, "_finish", dies_once(switchover._finish))
    with pytest.raises(ProcessDied):
        gdbs.switchover("orders", EAST)
    assert not gdbs.cluster("orders").member(EAST).in_recovery()  # promoted, but not recorded as the writer
    ensured = gdbs.ensure("orders")  # the recorded writer (us-west-2) must not start again: two writers
    assert ensured is not None and ensured.actions[0].action == "held"
    assert not gdbs.cluster("orders").member(WEST).running

    back = gdbs.switchover("orders", EAST)
    assert "resumed switchover" in back.reason and back.replayed_everything and back.old_writer_streaming
    status = gdbs.status("orders")
    assert status.healthy, status.problems
    assert status.member(EAST).role == "writer" and status.member(WEST).streaming
    assert promotions(deployment, "orders") == [*before, ("failover", EAST, WEST), ("switchover", WEST, EAST)]
