"""Chaos experiments: stop conditions, and a runner that always reverts what it injected, in reverse order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regionctl.chaos.experiment import (
    EXPERIMENTS,
    USERS_AFFECTED,
    Experiment,
    Fault,
    Observation,
    experiment,
    stop_reason,
)
from regionctl.chaos.live import LiveFaults
from regionctl.chaos.runner import Clock, run
from regionctl.cli.main import app
from regionctl.config import load_settings
from regionctl.errors import ExternalError, InputError
from regionctl.runtime.link import LinkStatus
from regionctl.runtime.link_engine import LinkEngine

HEALTHY = {"local": 0, "remote": 0, "global": 0}


def seen(failing: dict[str, int] | None = None, routable: list[str] | None = None, pending: int = 0) -> Observation:
    return Observation(at=0.0, failing=HEALTHY if failing is None else failing,
                       routable=["us-east-1", "us-west-2"] if routable is None else routable, pending=pending)


def test_users_affected_stops_an_experiment_only_when_users_would_notice() -> None:
    assert stop_reason(USERS_AFFECTED, seen({"local": 0, "remote": 8, "global": 0}, ["us-east-1"])) is None
    assert stop_reason(USERS_AFFECTED, seen(routable=[])) == "no region receives traffic"
    assert stop_reason(USERS_AFFECTED, seen({"remote": 8, "global": 1})) == "1 or more global canaries fail"
    unread = Observation(at=0.0, failing=None, routable=None)
    assert stop_reason(USERS_AFFECTED, unread) is None  # what cannot be read never stops it


def test_experiments_are_found_by_name_and_durations_are_checked() -> None:
    assert experiment("cross-region-connectivity").faults == (Fault("link-partition"), Fault("store-pause"))
    with pytest.raises(InputError, match="no experiment named 'nope'; there are cross-region-connectivity"):
        experiment("nope")
    with pytest.raises(InputError, match="--duration must be between 1 and 86400 seconds, not 0.5"):
        EXPERIMENTS["slow-link"].with_duration(0.5)
    assert EXPERIMENTS["slow-link"].with_duration(30).duration_s == 30


class FakeClock(Clock):
    def __init__(self) -> None:
        self.t = 0.0
        super().__init__(now=lambda: self.t, wall=lambda: 1e9 + self.t, sleep=self.advance)

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeFaults:
    def __init__(self, fail_inject: str | None = None, fail_revert: str | None = None,
                 revert_error: BaseException | None = None) -> None:
        self.log: list[str] = []
        self.fail_inject, self.fail_revert = fail_inject, fail_revert
        self.revert_error = revert_error or RuntimeError(f"cannot revert {fail_revert}")

    def inject(self, fault: Fault) -> str:
        if fault.kind == self.fail_inject:
            raise RuntimeError(f"cannot inject {fault.kind}")
        self.log.append(f"+{fault.kind}")
        return f"{fault.kind} on"

    def revert(self, fault: Fault) -> str:
        self.log.append(f"-{fault.kind}")
        if fault.kind == self.fail_revert:
            raise self.revert_error
        return f"{fault.kind} off"


class FakeWatcher:
    """Plays a script of observations; the faults' state decides nothing here, the script does."""

    def __init__(self, script: Iterator[Observation]) -> None:
        self.script = script
        self.since: list[float] = []

    def observe(self, since: float) -> Observation:
        self.since.append(since)
        return next(self.script)


def script(during: int, *after: Observation) -> Iterator[Observation]:
    for _ in range(during):
        yield seen({"local": 0, "remote": 8, "global": 0})
    yield from after
    while True:
        yield seen()


EXPERIMENT = Experiment("test", "two faults", (Fault("link-partition"), Fault("store-pause")), 5.0, USERS_AFFECTED)


def test_a_full_run_injects_in_order_reverts_in_reverse_and_measures_recovery() -> None:
    faults, clock = FakeFaults(), FakeClock()
    not_yet = seen(pending=4)  # after the revert, some canaries have not run again yet: not recovered
    watcher = FakeWatcher(script(5, seen({"remote": 2}), not_yet))
    result = run(EXPERIMENT, faults, watcher, clock=clock)
    assert faults.log == ["+link-partition", "+store-pause", "-store-pause", "-link-partition"]
    assert result.stopped_by == "duration" and result.duration_s == 5.0
    assert result.most_failing == {"local": 0, "remote": 8, "global": 0}
    assert result.recovered_after_s == 2.0 and result.clean
    assert watcher.since[0] == 1e9 and watcher.since[-1] == 1e9 + 5  # runs since the injection, then the revert


def test_a_stop_condition_ends_the_experiment_early_and_still_reverts() -> None:
    faults = FakeFaults()
    result = run(EXPERIMENT, faults, FakeWatcher(script(2, seen({"global": 3}))), clock=FakeClock())
    assert result.stopped_by == "stop condition: 1 or more global canaries fail"
    assert result.duration_s == 2.0 and faults.log[-2:] == ["-store-pause", "-link-partition"]


def test_a_failed_injection_is_reverted_too_with_everything_before_it() -> None:
    faults = FakeFaults(fail_inject="store-pause")  # it may have paused one direction before failing
    result = run(EXPERIMENT, faults, FakeWatcher(script(0)), clock=FakeClock())
    assert faults.log == ["+link-partition", "-store-pause", "-link-partition"]
    assert result.stopped_by == "error: cannot inject store-pause" and not result.clean


def test_ctrl_c_reverts_every_fault_and_says_it_was_interrupted() -> None:
    class Interrupted:
        def observe(self, since: float) -> Observation:
            raise KeyboardInterrupt

    faults = FakeFaults()
    result = run(EXPERIMENT, faults, Interrupted(), clock=FakeClock())
    assert faults.log == ["+link-partition", "+store-pause", "-store-pause", "-link-partition"]
    assert result.stopped_by == "interrupted" and result.recovered_after_s is None and not result.clean


def test_a_second_ctrl_c_during_a_revert_is_reported_and_the_other_reverts_still_run() -> None:
    faults = FakeFaults(fail_revert="store-pause", revert_error=KeyboardInterrupt())
    result = run(EXPERIMENT, faults, FakeWatcher(script(5)), clock=FakeClock())
    assert faults.log[-2:] == ["-store-pause", "-link-partition"]
    assert result.revert_errors == ["store-pause: KeyboardInterrupt"] and not result.clean


def test_a_failed_revert_is_reported_the_others_still_run_and_recovery_is_not_claimed() -> None:
    faults = FakeFaults(fail_revert="store-pause")
    result = run(EXPERIMENT, faults, FakeWatcher(script(5)), clock=FakeClock())
    assert faults.log[-2:] == ["-store-pause", "-link-partition"]
    assert result.revert_errors == ["store-pause: cannot revert store-pause"]
    assert result.reverted == ["link-partition off"] and not result.clean and result.recovered_after_s is None


def test_canaries_that_never_recover_are_reported_as_such() -> None:
    never = iter(lambda: seen({"remote": 8}), None)
    result = run(EXPERIMENT, FakeFaults(), FakeWatcher(never), recovery_timeout_s=10, clock=FakeClock())
    assert result.recovered_after_s is None and not result.clean and not result.revert_errors


# --- region isolation ------------------------------------------------------------------------------------------


def test_region_isolation_isolates_the_primary_region_and_stops_when_users_would_notice() -> None:
    chosen = experiment("region-isolation")
    assert chosen.faults == (Fault("link-isolate"),) and chosen.stop_conditions == USERS_AFFECTED
    assert "the primary region" in chosen.faults[0].describe()
    assert "us-west-2" in Fault("link-isolate", region="us-west-2").describe()
    with pytest.raises(InputError, match="region goes with link-isolate"):
        Fault("link-partition", region="us-east-1")


def test_chaos_list_shows_region_isolation() -> None:
    result = CliRunner().invoke(app, ["chaos", "list", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["experiment"]: row for row in json.loads(result.output)}
    assert "isolate the primary region" in rows["region-isolation"]["faults"]
    assert rows["region-isolation"]["stops when"] == "no region receives traffic; 1 or more global canaries fail"


class EngineLink:
    """The faults' view of the link on an in-process engine; ``lose_isolate_answer``: the isolate applies, then
    its answer is lost (as when the HTTP call times out)."""

    def __init__(self, engine: LinkEngine, lose_isolate_answer: bool = False) -> None:
        self.engine = engine
        self.lose_isolate_answer = lose_isolate_answer

    def __enter__(self) -> EngineLink:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def status(self) -> LinkStatus:
        return self.engine.status()

    def set(self, direction: str, latency_ms: float | None = None, jitter_ms: float | None = None) -> LinkStatus:
        return self.engine.set(direction, latency_ms, jitter_ms)

    def partition(self, direction: str = "both", reset: bool = False) -> LinkStatus:
        return self.engine.partition(direction, reset)

    def isolate(self, region: str, reset: bool = False) -> LinkStatus:
        status = self.engine.isolate(region, reset)
        if self.lose_isolate_answer:
            raise ExternalError("the link emulator did not answer in time")
        return status

    def heal(self, direction: str = "both") -> LinkStatus:
        return self.engine.heal(direction)


def cut(link: EngineLink) -> set[str]:
    return {d.name for d in link.status().directions if d.partitioned}


@pytest.fixture
def link(tmp_path: Path) -> EngineLink:
    return EngineLink(LinkEngine(tmp_path, ("us-east-1", "us-west-2"), latency_ms=30.0, jitter_ms=0.0))


def test_link_isolate_cuts_the_primary_and_its_revert_heals_only_what_it_cut(link: EngineLink) -> None:
    link.partition("global->us-east-1")  # cut before the experiment: stays cut after it
    link.partition("us-west-2->global")  # not touching the primary: never touched
    faults = LiveFaults(load_settings(), links=lambda: link)
    said = faults.inject(Fault("link-isolate"))
    assert link.status().isolated == ("us-east-1",)
    assert said == "us-east-1 isolated (us-east-1->us-west-2, us-west-2->us-east-1, us-east-1->global)"
    assert faults.revert(Fault("link-isolate")).startswith("link healed (us-east-1->us-west-2")
    assert cut(link) == {"global->us-east-1", "us-west-2->global"}
    assert faults.revert(Fault("link-isolate")) == "link healed (nothing was cut)"  # a second revert: nothing


def test_link_isolate_is_reverted_even_when_the_answer_to_the_isolate_was_lost(tmp_path: Path) -> None:
    link = EngineLink(LinkEngine(tmp_path, ("us-east-1", "us-west-2"), 30.0, 0.0), lose_isolate_answer=True)
    faults = LiveFaults(load_settings(), links=lambda: link)
    with pytest.raises(ExternalError):
        faults.inject(Fault("link-isolate", region="us-west-2"))
    assert link.status().isolated == ("us-west-2",)
    faults.revert(Fault("link-isolate", region="us-west-2"))
    assert cut(link) == set()


def test_link_isolate_of_an_unknown_region_changes_nothing(link: EngineLink) -> None:
    faults = LiveFaults(load_settings(), links=lambda: link)
    with pytest.raises(InputError, match="eu-west-1"):
        faults.inject(Fault("link-isolate", region="eu-west-1"))
    assert cut(link) == set() and faults.revert(Fault("link-isolate")) == "link healed (nothing was cut)"


def test_the_faults_between_the_regions_leave_the_control_path_alone(link: EngineLink) -> None:
    faults = LiveFaults(load_settings(), links=lambda: link)
    faults.inject(Fault("link-partition"))
    assert cut(link) == {"us-east-1->us-west-2", "us-west-2->us-east-1"}
    faults.inject(Fault("link-latency", latency_ms=300.0))
    assert {d.name for d in link.status().directions if d.latency_ms == 300.0} == cut(link)
    faults.revert(Fault("link-latency", latency_ms=300.0))
    faults.revert(Fault("link-partition"))
    assert cut(link) == set() and {d.latency_ms for d in link.status().directions if not d.control_path} == {30.0}
