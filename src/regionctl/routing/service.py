"""The control panel's operations: read it, change controls, manage rules; each decided by the rules engine and
recorded in the audit log, refusals included."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from regionctl.errors import NotFoundError
from regionctl.routing.model import ChangeRequest, Panel, SafetyRule, validate_rule
from regionctl.routing.rules import Decision, decision_summary, evaluate, states_text
from regionctl.routing.store import AuditEntry, AuditRecord, ControlStore, rule_to_dict

Clock = Callable[[], float]


@dataclass(frozen=True)
class ChangeResult:
    applied: bool
    decision: Decision
    version: int
    audit_id: int

    @property
    def outcome(self) -> str:
        if not self.decision.allowed:
            return "refused"
        return "applied" if self.applied else "no-op"


class ControlService:
    """Serialises changes in this process (a lock) and across processes (the store's compare-and-swap)."""

    def __init__(self, store: ControlStore, clock: Clock = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()

    def panel(self) -> Panel:
        return self.store.load()

    def change(self, request: ChangeRequest) -> ChangeResult:
        """Decide and, when allowed, commit a change. Raises InputError for a malformed one; a refusal is a result."""
        with self._lock:
            panel = self.store.load()
            now = self.clock()
            decision = evaluate(panel, request, now)
            detail = {
                "requested": {k: "On" if v else "Off" for k, v in request.states.items()},
                "override": sorted(request.override),
                "reason_given": request.reason,
                **decision_summary(decision),
            }
            if decision.allowed and decision.changed:
                outcome = "applied"
                new_panel = panel.with_states(request.states, now)
                entry = self.store.commit(new_panel, panel.version, self._record(request.actor, outcome, decision,
                                                                                 detail, now))
                return ChangeResult(True, decision, panel.version + 1, entry.id)
            outcome = "refused" if not decision.allowed else "no-op"
            detail["after"] = detail["before"]  # what the panel is after this request: unchanged
            detail["proposed"] = decision_summary(decision)["after"]
            entry = self.store.append_audit(self._record(request.actor, outcome, decision, detail, now))
            return ChangeResult(False, decision, panel.version, entry.id)

    @staticmethod
    def _record(actor: str, outcome: str, decision: Decision, detail: dict[str, object], now: float) -> AuditRecord:
        return AuditRecord(now, actor, "change", outcome, decision.reason, detail)

    def put_rule(self, rule: SafetyRule, actor: str) -> AuditEntry:
        """Create or replace a rule; refused (InputError) if it names unknown controls or cannot be evaluated."""
        with self._lock:
            panel = self.store.load()
            validate_rule(rule, panel.controls)
            previous = panel.rules.get(rule.name)
            rules = {**panel.rules, rule.name: rule}
            summary = f"{'replaced' if previous else 'created'} {rule.kind.value} rule {rule.name!r}: {rule.describe()}"
            holds = rule.config.holds(panel.states(), rule.watched)
            if not holds:
                summary += f" (it does not hold now: {states_text(panel.states(), rule.watched)})"
            record = AuditRecord(self.clock(), actor, "rule-put", "applied", summary, {
                "before": rule_to_dict(previous) if previous else None, "after": rule_to_dict(rule)})
            return self.store.commit(replace(panel, rules=rules), panel.version, record)

    def delete_rule(self, name: str, actor: str) -> AuditEntry:
        with self._lock:
            panel = self.store.load()
            if name not in panel.rules:
                raise NotFoundError(f"no safety rule named {name!r}; rules are {', '.join(sorted(panel.rules))}")
            rules = {k: v for k, v in panel.rules.items() if k != name}
            record = AuditRecord(self.clock(), actor, "rule-delete", "applied",
                                 f"deleted rule {name!r}: {panel.rules[name].describe()}",
                                 {"before": rule_to_dict(panel.rules[name]), "after": None})
            return self.store.commit(replace(panel, rules=rules), panel.version, record)

    def audit(self, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        return self.store.audit(limit=limit, before_id=before_id)
