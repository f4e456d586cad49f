"""Property tests of the safety rules over random panels, random rules and random sequences of changes.

The engine's verdicts are compared with an independent, naive oracle written here, and the safety invariants are
checked over the committed history: no assertion rule goes from holding to broken without an override, no target
of a gating rule flips while its gate is closed, no guarded control flips inside a wait period.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from regionctl.routing.model import (
    AT_LEAST_ONE_REGION_RULE,
    AUTOMATION_CONTROL,
    ChangeRequest,
    PanelSpec,
    RuleConfig,
    RuleKind,
    RuleType,
    SafetyRule,
    default_spec,
    new_panel,
)
from regionctl.routing.rules import Outcome, evaluate

START = 1000.0


def condition(states: dict[str, bool], controls: tuple[str, ...], config: RuleConfig) -> bool:
    """The oracle's own reading of a rule config (deliberately written differently from the engine's)."""
    flags = [states[c] for c in controls]
    if config.type is RuleType.AND:
        value = all(flags)
    elif config.type is RuleType.OR:
        value = any(flags)
    else:
        value = len([f for f in flags if f]) >= config.threshold
    return value != config.inverted


def guarded(rule: SafetyRule) -> set[str]:
    return set(rule.watched) if rule.kind is RuleKind.ASSERTION else set(rule.targets)


@dataclass
class World:
    """The oracle's own record of the panel: states and when each control last flipped."""

    states: dict[str, bool]
    flipped_at: dict[str, float | None]

    def expected_failures(self, rules: list[SafetyRule], request: dict[str, bool], now: float) -> set[str]:
        changed = {c for c, on in request.items() if self.states[c] != on}
        after = {**self.states, **request}
        failing = set()
        for rule in rules:
            if not changed & guarded(rule):
                continue
            times = [t for c in guarded(rule) if (t := self.flipped_at[c]) is not None]
            in_wait = bool(times) and now - max(times) < rule.wait_period_s
            if rule.kind is RuleKind.ASSERTION:
                broken = not condition(after, rule.watched, rule.config)
            else:
                broken = not condition(self.states, rule.watched, rule.config)
            if in_wait or broken:
                failing.add(rule.name)
        return failing


@st.composite
def rule_configs(draw: st.DrawFn, size: int) -> RuleConfig:
    kind = draw(st.sampled_from(list(RuleType)))
    threshold = draw(st.integers(1, size)) if kind is RuleType.ATLEAST else 1
    return RuleConfig(kind, threshold=threshold, inverted=draw(st.booleans()))


@st.composite
def panels(draw: st.DrawFn) -> tuple[PanelSpec, list[SafetyRule]]:
    names = [f"c{i}" for i in range(draw(st.integers(2, 5)))]
    states = {name: draw(st.booleans()) for name in names}
    subsets = st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True).map(tuple)
    rules = []
    for index in range(draw(st.integers(0, 4))):
        watched = draw(subsets)
        wait = draw(st.sampled_from([0.0, 1.0, 5.0, 30.0]))
        if draw(st.booleans()):
            rules.append(SafetyRule(f"a{index}", RuleKind.ASSERTION, watched, draw(rule_configs(len(watched))),
                                    wait_period_s=wait))
        else:
            rules.append(SafetyRule(f"g{index}", RuleKind.GATING, watched, draw(rule_configs(len(watched))),
                                    targets=draw(subsets), wait_period_s=wait))
    return PanelSpec(controls=states, rules=tuple(rules)), rules


@st.composite
def steps(draw: st.DrawFn, names: list[str], rule_names: list[str]) -> list[tuple[float, dict[str, bool], frozenset]]:
    result = []
    for _ in range(draw(st.integers(1, 25))):
        dt = draw(st.sampled_from([0.0, 0.5, 1.0, 4.9, 5.0, 6.0, 31.0]))
        request = draw(st.dictionaries(st.sampled_from(names), st.booleans(), min_size=1))
        override = frozenset(draw(st.lists(st.sampled_from(rule_names), unique=True))) if rule_names and draw(
            st.integers(0, 4)) == 0 else frozenset()
        result.append((dt, request, override))
    return result


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_engine_matches_oracle_and_invariants_hold_over_random_sequences(data: st.DataObject) -> None:
    spec, rules = data.draw(panels())
    names = sorted(spec.controls)
    panel = new_panel(spec)
    world = World(states=dict(spec.controls), flipped_at={n: None for n in names})
    now = START
    for dt, request, override in data.draw(steps(names, [r.name for r in rules])):
        now += dt
        expected = world.expected_failures(rules, request, now)
        decision = evaluate(panel, ChangeRequest(states=request, override=override), now)

        # The verdicts are the oracle's: refused exactly when a rule not overridden fails, naming those rules.
        assert set(decision.blocking) == expected - override
        assert decision.allowed == (not expected - override)
        assert {v.rule for v in decision.verdicts if v.outcome is Outcome.OVERRIDDEN} == expected & override
        if not decision.allowed:
            for rule in decision.blocking:
                assert f"rule {rule!r}" in decision.reason
            continue

        changed = {c for c, on in request.items() if world.states[c] != on}
        after = {**world.states, **request}
        for rule in rules:
            if rule.name in override or not changed & guarded(rule):
                continue
            if rule.kind is RuleKind.ASSERTION:
                # No assertion rule is broken by a change without an override.
                assert condition(after, rule.watched, rule.config), rule
            else:
                # Gating holds: targets flip only while the gate (read before the change) is open.
                assert condition(world.states, rule.watched, rule.config), rule
            # Wait periods hold: no guarded control flips inside the rule's wait period.
            times = [t for c in guarded(rule) if (t := world.flipped_at[c]) is not None]
            assert not times or now - max(times) >= rule.wait_period_s, rule

        panel = panel.with_states(request, now)
        for control in changed:
            world.flipped_at[control] = now
        world.states = after
        assert panel.states() == world.states


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0, 5.0, 10.0]),
                          st.dictionaries(st.sampled_from(["us-east-1", "us-west-2", AUTOMATION_CONTROL]),
                                          st.booleans(), min_size=1)), max_size=30))
def test_default_rules_never_leave_every_region_off_without_override(sequence: list) -> None:
    panel = new_panel(default_spec(["us-east-1", "us-west-2"]))
    now = START
    for dt, request in sequence:
        now += dt
        decision = evaluate(panel, ChangeRequest(states=request), now)
        after = {**panel.states(), **request}
        if not after["us-east-1"] and not after["us-west-2"]:
            assert not decision.allowed
            assert AT_LEAST_ONE_REGION_RULE in decision.blocking
        if decision.allowed:
            panel = panel.with_states(request, now)
        assert panel.states()["us-east-1"] or panel.states()["us-west-2"]
