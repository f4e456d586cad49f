"""Pure evaluation of a change against the safety rules: every rule gives a verdict with a reason.

Semantics (ARC's, made precise):
- A rule *guards* controls: an assertion rule its asserted controls, a gating rule its target controls. A rule
  judges a change only if the change flips a control it guards; a request that sets a control to the state it
  already has flips nothing (idempotent, so runbooks may repeat it).
- Assertion rule: its condition must hold over the *end* state of the transaction.
- Gating rule: its condition over the gating controls must hold *before* the change. Opening the gate and moving
  its targets in one transaction is therefore refused: opening the gate is a deliberate, separate act.
- Wait period: after any guarded control of a rule flipped, further flips of its guarded controls are refused
  until the period has passed (against flapping, and against a hasty failback right after a failover).
- Override: a change may name rules to bypass; a failing rule so named is recorded as overridden, not failed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from regionctl.errors import InputError
from regionctl.routing.model import ChangeRequest, Panel, RuleKind, SafetyRule


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    OVERRIDDEN = "overridden"
    NOT_AFFECTED = "not-affected"


@dataclass(frozen=True)
class RuleVerdict:
    rule: str
    kind: RuleKind
    outcome: Outcome
    reason: str
    waiting_s: float | None = None  # a FAIL only because its wait period runs: the seconds left of it


@dataclass(frozen=True)
class Decision:
    """Whether a change may commit, the states before and after it, and every rule's verdict."""

    allowed: bool
    changed: tuple[str, ...]
    before: Mapping[str, bool]
    after: Mapping[str, bool]
    verdicts: tuple[RuleVerdict, ...]
    reason: str

    @property
    def blocking(self) -> tuple[str, ...]:
        return tuple(v.rule for v in self.verdicts if v.outcome is Outcome.FAIL)

    @property
    def retry_after_s(self) -> float | None:
        """When only running wait periods refuse the change: how long until the same change can commit."""
        failing = [v for v in self.verdicts if v.outcome is Outcome.FAIL]
        if not failing or any(v.waiting_s is None for v in failing):
            return None
        return max(v.waiting_s for v in failing if v.waiting_s is not None)


@dataclass(frozen=True)
class RuleStatus:
    """How a rule reads the panel right now (for listings): does its condition hold, and how long it still waits."""

    rule: str
    kind: RuleKind
    description: str
    holds: bool
    wait_remaining_s: float
    reason: str


def states_text(states: Mapping[str, bool], names: tuple[str, ...] | None = None) -> str:
    chosen = sorted(states) if names is None else names
    return ", ".join(f"{name} {'On' if states[name] else 'Off'}" for name in chosen)


def validate_request(panel: Panel, request: ChangeRequest) -> None:
    """Refuse malformed requests before any rule is read; the error names the unknown control or rule."""
    if not request.states:
        raise InputError("the change names no routing control")
    for name in request.states:
        if name not in panel.controls:
            raise InputError(f"unknown routing control {name!r}; controls are {', '.join(sorted(panel.controls))}")
    for name in request.override:
        if name not in panel.rules:
            raise InputError(f"cannot override unknown rule {name!r}; rules are {', '.join(sorted(panel.rules))}")


def wait_remaining(rule: SafetyRule, panel: Panel, now: float) -> float:
    """Seconds left in the rule's wait period (0 when none runs). A clock that went backwards counts as no time."""
    last = max((panel.controls[name].changed_at for name in rule.guarded), default=0.0)
    if last <= 0.0:
        return 0.0
    return max(0.0, rule.wait_period_s - max(0.0, now - last))


def judge(
    rule: SafetyRule, panel: Panel, after: Mapping[str, bool], changed: frozenset[str], now: float
) -> RuleVerdict:
    """One rule's verdict on a change flipping ``changed``; ``after`` is the panel's state if it commits."""
    touched = tuple(sorted(changed & rule.guarded))
    if not touched:
        return RuleVerdict(rule.name, rule.kind, Outcome.NOT_AFFECTED, "the change flips none of its controls")
    problems = []
    left = wait_remaining(rule, panel, now)
    if left > 0.0:
        problems.append(
            f"its wait period of {rule.wait_period_s:g} s is running ({left:.1f} s left) since a change to "
            f"{{{', '.join(sorted(rule.guarded))}}}"
        )
    if rule.kind is RuleKind.ASSERTION and not rule.config.holds(after, rule.watched):
        problems.append(
            f"the end state would break '{rule.describe()}' ({states_text(after, rule.watched)})"
        )
    if rule.kind is RuleKind.GATING and not rule.config.holds(panel.states(), rule.watched):
        problems.append(
            f"the gate is closed: {rule.config.describe(rule.watched)} does not hold "
            f"({states_text(panel.states(), rule.watched)})"
        )
    if problems:
        return RuleVerdict(rule.name, rule.kind, Outcome.FAIL, f"changing {', '.join(touched)}: " + "; ".join(problems),
                           waiting_s=round(left, 3) if len(problems) == 1 and left > 0.0 else None)
    return RuleVerdict(rule.name, rule.kind, Outcome.PASS, f"holds for {', '.join(touched)}: {rule.describe()}")


def evaluate(panel: Panel, request: ChangeRequest, now: float) -> Decision:
    """Decide a change without doing it. Raises InputError for unknown controls or rules; a refusal is a Decision."""
    validate_request(panel, request)
    before = panel.states()
    after = {**before, **request.states}
    changed = frozenset(name for name, on in request.states.items() if before[name] != on)
    verdicts = []
    for name in sorted(panel.rules):
        verdict = judge(panel.rules[name], panel, after, changed, now)
        if verdict.outcome is Outcome.FAIL and name in request.override:
            verdict = RuleVerdict(verdict.rule, verdict.kind, Outcome.OVERRIDDEN, "overridden: " + verdict.reason)
        verdicts.append(verdict)
    decision_changed = tuple(sorted(changed))
    failing = [v for v in verdicts if v.outcome is Outcome.FAIL]
    if not changed:
        reason = f"no change: {states_text(before, tuple(sorted(request.states)))} already"
    elif failing:
        reason = "refused by " + "; ".join(f"rule {v.rule!r}: {v.reason}" for v in failing)
    else:
        overridden = [v.rule for v in verdicts if v.outcome is Outcome.OVERRIDDEN]
        reason = f"set {states_text(after, decision_changed)}"
        reason += f", overriding {', '.join(overridden)}" if overridden else "; every rule holds"
    return Decision(
        allowed=not failing,
        changed=decision_changed,
        before=before,
        after=after,
        verdicts=tuple(verdicts),
        reason=reason,
    )


def rule_statuses(panel: Panel, now: float) -> list[RuleStatus]:
    """Each rule as it reads the current state: for listings and the status page."""
    states = panel.states()
    result = []
    for name in sorted(panel.rules):
        rule = panel.rules[name]
        holds = rule.config.holds(states, rule.watched)
        left = wait_remaining(rule, panel, now)
        if rule.kind is RuleKind.ASSERTION:
            reason = "holds" if holds else "VIOLATED (only an override can have caused this)"
        else:
            reason = "gate open" if holds else "gate closed: its targets cannot change without an override"
        if left > 0:
            reason += f"; wait period running, {left:.1f} s left"
        result.append(RuleStatus(name, rule.kind, rule.describe(), holds, round(left, 3), reason))
    return result


def decision_summary(decision: Decision) -> dict[str, object]:
    """Plain data for audit entries and API answers."""
    return {
        "allowed": decision.allowed,
        "changed": list(decision.changed),
        "before": {k: "On" if v else "Off" for k, v in decision.before.items()},
        "after": {k: "On" if v else "Off" for k, v in decision.after.items()},
        "verdicts": [
            {"rule": v.rule, "kind": v.kind.value, "outcome": v.outcome.value, "reason": v.reason}
            for v in decision.verdicts
        ],
        "reason": decision.reason,
    }
