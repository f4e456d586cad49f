"""The routing model: a control panel of On/Off routing controls and the safety rules that guard them.

These are plain frozen values (as in Route 53 ARC: a control panel, routing controls, assertion and gating rules
with a rule config ``ATLEAST n | AND | OR``, optionally inverted, and a wait period). Nothing here does I/O, so
the same model serves the local SQLite store and a future AWS ARC provider.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from regionctl.errors import InputError

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEFAULT_WAIT_PERIOD_S = 5.0
AUTOMATION_CONTROL = "automation"  # the default gating control: On = routing of regions may be changed
AT_LEAST_ONE_REGION_RULE = "at-least-one-region-on"
AUTOMATION_GATE_RULE = "automation-gate"


class RuleKind(enum.StrEnum):
    ASSERTION = "assertion"  # a condition over the end state of the asserted controls
    GATING = "gating"  # target controls may change only while the gating controls' condition holds


class RuleType(enum.StrEnum):
    ATLEAST = "ATLEAST"  # at least ``threshold`` of the controls are On
    AND = "AND"  # all On
    OR = "OR"  # at least one On


@dataclass(frozen=True)
class RuleConfig:
    """How a rule reads a set of controls: a type, its threshold (ATLEAST only) and whether it is inverted."""

    type: RuleType
    threshold: int = 1
    inverted: bool = False

    def holds(self, states: Mapping[str, bool], controls: tuple[str, ...]) -> bool:
        on = sum(1 for name in controls if states[name])
        if self.type is RuleType.ATLEAST:
            result = on >= self.threshold
        elif self.type is RuleType.AND:
            result = on == len(controls)
        else:
            result = on >= 1
        return not result if self.inverted else result

    def describe(self, controls: Iterable[str]) -> str:
        names = ", ".join(sorted(controls))
        if self.type is RuleType.ATLEAST:
            text = f"at least {self.threshold} of {{{names}}} On"
        elif self.type is RuleType.AND:
            text = f"all of {{{names}}} On"
        else:
            text = f"any of {{{names}}} On"
        return f"NOT ({text})" if self.inverted else text


@dataclass(frozen=True)
class SafetyRule:
    """An assertion rule (``watched`` = asserted controls, which are also its targets) or a gating rule
    (``watched`` = gating controls, ``targets`` = the controls it guards)."""

    name: str
    kind: RuleKind
    watched: tuple[str, ...]
    config: RuleConfig
    targets: tuple[str, ...] = ()
    wait_period_s: float = DEFAULT_WAIT_PERIOD_S

    @property
    def guarded(self) -> frozenset[str]:
        """The controls whose changes this rule checks (and whose changes start its wait period)."""
        return frozenset(self.watched if self.kind is RuleKind.ASSERTION else self.targets)

    def describe(self) -> str:
        condition = self.config.describe(self.watched)
        if self.kind is RuleKind.ASSERTION:
            return f"assert {condition}"
        return f"{{{', '.join(sorted(self.targets))}}} may change only while {condition}"


@dataclass(frozen=True)
class RoutingControl:
    name: str
    on: bool
    changed_at: float = 0.0  # epoch seconds of the last state change (0 = never changed)

    @property
    def state(self) -> str:
        return "On" if self.on else "Off"


@dataclass(frozen=True)
class Panel:
    """One consistent snapshot of the control panel: every control and rule, and a version that grows on commit."""

    controls: Mapping[str, RoutingControl]
    rules: Mapping[str, SafetyRule]
    version: int = 0

    def states(self) -> dict[str, bool]:
        return {name: control.on for name, control in self.controls.items()}

    def with_states(self, states: Mapping[str, bool], now: float) -> Panel:
        """The panel after setting ``states``; only controls whose state really changes get a new timestamp."""
        controls = dict(self.controls)
        for name, on in states.items():
            if controls[name].on != on:
                controls[name] = replace(controls[name], on=on, changed_at=now)
        return replace(self, controls=controls, version=self.version + 1)


@dataclass(frozen=True)
class ChangeRequest:
    """A transaction over one or more controls, with the rules an operator chose to override for it."""

    states: Mapping[str, bool]
    override: frozenset[str] = frozenset()
    actor: str = "unknown"
    reason: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """What a new panel starts with."""

    controls: Mapping[str, bool]
    rules: tuple[SafetyRule, ...] = field(default_factory=tuple)


def parse_state(text: str) -> bool:
    value = text.strip().lower()
    if value in ("on", "true", "1"):
        return True
    if value in ("off", "false", "0"):
        return False
    raise InputError(f"state {text!r} is neither On nor Off")


def check_name(kind: str, name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InputError(f"{kind} name {name!r} must be lower-case letters, digits and dashes (1-63 characters)")
    return name


def validate_rule(rule: SafetyRule, controls: Iterable[str]) -> SafetyRule:
    """Refuse a rule that names unknown controls or cannot be evaluated; the error names the problem."""
    known = set(controls)
    check_name("rule", rule.name)
    if not rule.watched:
        raise InputError(f"rule {rule.name!r} names no {'asserted' if rule.kind is RuleKind.ASSERTION else 'gating'} "
                         "controls")
    if rule.kind is RuleKind.GATING and not rule.targets:
        raise InputError(f"gating rule {rule.name!r} names no target controls")
    if rule.kind is RuleKind.ASSERTION and rule.targets:
        raise InputError(f"assertion rule {rule.name!r} takes no target controls (its asserted controls are its "
                         "targets)")
    for name in (*rule.watched, *rule.targets):
        if name not in known:
            raise InputError(
                f"rule {rule.name!r} names unknown control {name!r}; controls are {', '.join(sorted(known))}"
            )
    if len(set(rule.watched)) != len(rule.watched) or len(set(rule.targets)) != len(rule.targets):
        raise InputError(f"rule {rule.name!r} names a control twice")
    if rule.config.type is RuleType.ATLEAST and not 1 <= rule.config.threshold <= len(rule.watched):
        raise InputError(f"rule {rule.name!r}: ATLEAST threshold {rule.config.threshold} must be between 1 and "
                         f"{len(rule.watched)} (the number of controls it reads)")
    if not 0 <= rule.wait_period_s <= 3600:
        raise InputError(f"rule {rule.name!r}: wait period {rule.wait_period_s} s must be between 0 and 3600")
    return rule


def default_spec(regions: Iterable[str], wait_period_s: float = DEFAULT_WAIT_PERIOD_S) -> PanelSpec:
    """One control per region, all On (as the reference starts), plus the automation gate, with the two rules the
    reference lacks: at least one region On, and region controls change only while automation is On."""
    region_names = tuple(regions)
    rules = (
        SafetyRule(
            name=AT_LEAST_ONE_REGION_RULE,
            kind=RuleKind.ASSERTION,
            watched=region_names,
            config=RuleConfig(RuleType.ATLEAST, threshold=1),
            wait_period_s=wait_period_s,
        ),
        SafetyRule(
            name=AUTOMATION_GATE_RULE,
            kind=RuleKind.GATING,
            watched=(AUTOMATION_CONTROL,),
            targets=region_names,
            config=RuleConfig(RuleType.OR),
            wait_period_s=wait_period_s,
        ),
    )
    return PanelSpec(controls={**{r: True for r in region_names}, AUTOMATION_CONTROL: True}, rules=rules)


def new_panel(spec: PanelSpec) -> Panel:
    controls = {name: RoutingControl(name=check_name("control", name), on=on) for name, on in spec.controls.items()}
    rules = {rule.name: validate_rule(rule, controls) for rule in spec.rules}
    return Panel(controls=controls, rules=rules, version=0)
