"""Example-based tests of the safety rules: each verdict carries a reason an operator can act on."""

from __future__ import annotations

import pytest

from regionctl.errors import InputError
from regionctl.routing.model import (
    AT_LEAST_ONE_REGION_RULE,
    AUTOMATION_CONTROL,
    AUTOMATION_GATE_RULE,
    ChangeRequest,
    Panel,
    RuleConfig,
    RuleKind,
    RuleType,
    SafetyRule,
    default_spec,
    new_panel,
    validate_rule,
)
from regionctl.routing.rules import Outcome, evaluate, rule_statuses

EAST, WEST = "us-east-1", "us-west-2"
T0 = 1000.0


def panel() -> Panel:
    return new_panel(default_spec([EAST, WEST]))


def test_failover_turning_one_region_off_is_allowed() -> None:
    decision = evaluate(panel(), ChangeRequest({EAST: False}), T0)
    assert decision.allowed
    assert decision.changed == (EAST,)
    assert decision.after == {EAST: False, WEST: True, AUTOMATION_CONTROL: True}
    assert "every rule holds" in decision.reason


def test_turning_the_last_on_region_off_is_refused_naming_the_rule() -> None:
    after_failover = panel().with_states({EAST: False}, T0)
    decision = evaluate(after_failover, ChangeRequest({WEST: False}), T0 + 60)
    assert not decision.allowed
    assert decision.blocking == (AT_LEAST_ONE_REGION_RULE,)
    assert f"rule '{AT_LEAST_ONE_REGION_RULE}'" in decision.reason
    assert "us-east-1 Off, us-west-2 Off" in decision.reason


def test_both_off_in_one_transaction_is_refused_but_an_override_lets_it_through() -> None:
    request = {EAST: False, WEST: False}
    assert evaluate(panel(), ChangeRequest(request), T0).blocking == (AT_LEAST_ONE_REGION_RULE,)
    decision = evaluate(panel(), ChangeRequest(request, override=frozenset({AT_LEAST_ONE_REGION_RULE})), T0)
    assert decision.allowed
    verdict = next(v for v in decision.verdicts if v.rule == AT_LEAST_ONE_REGION_RULE)
    assert verdict.outcome is Outcome.OVERRIDDEN
    assert "overriding at-least-one-region-on" in decision.reason


def test_a_hasty_failback_inside_the_wait_period_is_refused_with_the_time_left() -> None:
    after_failover = panel().with_states({EAST: False}, T0)
    decision = evaluate(after_failover, ChangeRequest({EAST: True}), T0 + 2)
    assert set(decision.blocking) == {AT_LEAST_ONE_REGION_RULE, AUTOMATION_GATE_RULE}
    assert "wait period of 5 s is running (3.0 s left)" in decision.reason
    assert decision.retry_after_s == 3.0  # only wait periods refuse it: automation may wait and retry
    assert evaluate(after_failover, ChangeRequest({EAST: True}), T0 + 5).allowed


def test_a_change_that_breaks_a_rule_is_not_worth_retrying_even_inside_a_wait_period() -> None:
    after_failover = panel().with_states({EAST: False}, T0)
    decision = evaluate(after_failover, ChangeRequest({WEST: False}), T0 + 2)  # would leave no region On
    assert not decision.allowed and decision.retry_after_s is None
    assert evaluate(panel(), ChangeRequest({EAST: False, WEST: False}), T0).retry_after_s is None


def test_closed_gate_blocks_region_changes_but_not_reopening_it() -> None:
    closed = panel().with_states({AUTOMATION_CONTROL: False}, T0)
    decision = evaluate(closed, ChangeRequest({EAST: False}), T0 + 60)
    assert decision.blocking == (AUTOMATION_GATE_RULE,)
    assert "gate is closed" in decision.reason and "automation Off" in decision.reason
    assert evaluate(closed, ChangeRequest({AUTOMATION_CONTROL: True}), T0 + 60).allowed


def test_opening_the_gate_and_moving_a_target_in_one_transaction_is_refused() -> None:
    closed = panel().with_states({AUTOMATION_CONTROL: False}, T0)
    decision = evaluate(closed, ChangeRequest({AUTOMATION_CONTROL: True, EAST: False}), T0 + 60)
    assert decision.blocking == (AUTOMATION_GATE_RULE,)


def test_setting_a_control_to_its_state_is_a_no_op_even_inside_a_wait_period() -> None:
    after_failover = panel().with_states({EAST: False}, T0)
    decision = evaluate(after_failover, ChangeRequest({EAST: False}), T0 + 1)
    assert decision.allowed and decision.changed == ()
    assert decision.reason == "no change: us-east-1 Off already"


def test_unknown_control_or_rule_is_an_input_error_naming_it() -> None:
    with pytest.raises(InputError, match="unknown routing control 'eu-west-1'"):
        evaluate(panel(), ChangeRequest({"eu-west-1": False}), T0)
    with pytest.raises(InputError, match="cannot override unknown rule 'nope'"):
        evaluate(panel(), ChangeRequest({EAST: False}, override=frozenset({"nope"})), T0)
    with pytest.raises(InputError, match="names no routing control"):
        evaluate(panel(), ChangeRequest({}), T0)


def test_inverted_and_and_rules() -> None:
    # "not both On" (active/passive only): an inverted AND.
    rule = SafetyRule("active-passive", RuleKind.ASSERTION, (EAST, WEST), RuleConfig(RuleType.AND, inverted=True),
                      wait_period_s=0)
    spec = default_spec([EAST, WEST])
    p = new_panel(spec.__class__(controls={EAST: True, WEST: False, AUTOMATION_CONTROL: True},
                                 rules=(*spec.rules, rule)))
    decision = evaluate(p, ChangeRequest({WEST: True}), T0)
    assert decision.blocking == ("active-passive",)
    assert "NOT (all of {us-east-1, us-west-2} On)" in decision.reason
    assert evaluate(p, ChangeRequest({WEST: True, EAST: False}), T0).allowed


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (SafetyRule("r", RuleKind.ASSERTION, (EAST, "nope"), RuleConfig(RuleType.OR)), "unknown control 'nope'"),
        (SafetyRule("r", RuleKind.ASSERTION, (EAST,), RuleConfig(RuleType.ATLEAST, 2)), "threshold 2"),
        (SafetyRule("r", RuleKind.GATING, (EAST,), RuleConfig(RuleType.OR)), "names no target controls"),
        (SafetyRule("r", RuleKind.ASSERTION, (), RuleConfig(RuleType.OR)), "names no asserted controls"),
        (SafetyRule("Bad Name", RuleKind.ASSERTION, (EAST,), RuleConfig(RuleType.OR)), "rule name 'Bad Name'"),
        (SafetyRule("r", RuleKind.ASSERTION, (EAST,), RuleConfig(RuleType.OR), wait_period_s=-1), "wait period"),
    ],
)
def test_invalid_rules_are_refused_naming_the_problem(rule: SafetyRule, message: str) -> None:
    with pytest.raises(InputError, match=message):
        validate_rule(rule, [EAST, WEST])


def test_rule_statuses_report_wait_and_gate() -> None:
    statuses = {s.rule: s for s in rule_statuses(panel().with_states({EAST: False}, T0), T0 + 1)}
    assert statuses[AT_LEAST_ONE_REGION_RULE].holds
    assert statuses[AT_LEAST_ONE_REGION_RULE].wait_remaining_s == pytest.approx(4.0)
    assert statuses[AUTOMATION_GATE_RULE].reason.startswith("gate open")
