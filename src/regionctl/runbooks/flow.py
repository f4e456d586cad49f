"""Where an execution goes next: pure functions of the document and the step's outcome.

Being pure is what makes resuming safe: an engine that restarts between "step finished" and "next step chosen"
computes the same move again from the journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from regionctl.runbooks.model import Runbook

GOTO: Final = "goto"
SUCCEED: Final = "succeed"
FAIL: Final = "fail"


@dataclass(frozen=True)
class Move:
    kind: Literal["goto", "succeed", "fail"]
    step: str | None
    reason: str


def first_move(runbook: Runbook) -> Move:
    return Move(GOTO, runbook.steps[0].name, f"start with {runbook.steps[0].name}")


def _onward(runbook: Runbook, name: str, how: str) -> Move:
    """The move after a step that counts as done (succeeded, skipped, or failed with Continue)."""
    step = runbook.step(name)
    if step.is_end:
        return Move(SUCCEED, None, f"{name} {how} and ends the runbook")
    if step.next_step:
        return Move(GOTO, step.next_step, f"{name} {how}; nextStep {step.next_step}")
    index = runbook.index(name)
    if index + 1 >= len(runbook.steps):
        return Move(SUCCEED, None, f"{name} {how}; it is the last step")
    following = runbook.steps[index + 1].name
    return Move(GOTO, following, f"{name} {how}; then {following}")


def after_step(runbook: Runbook, name: str, status: str, outputs: Mapping[str, Any] | None,
               error: str | None) -> Move:
    """The next move once the top-level step ``name`` ended with ``status``."""
    step = runbook.step(name)
    if status == "succeeded" and step.branch is not None:
        chosen = (outputs or {}).get("next")
        return Move(GOTO, str(chosen), f"{name} chose {chosen} (value {(outputs or {}).get('value')!r})")
    if status == "skipped":
        return _onward(runbook, name, "was skipped")
    if status == "succeeded":
        return _onward(runbook, name, "succeeded")
    # failed
    if step.on_failure == "Continue":
        return _onward(runbook, name, "failed (onFailure Continue)")
    target = step.failure_target
    if target is not None:
        return Move(GOTO, target, f"{name} failed; onFailure goes to {target}")
    return Move(FAIL, None, f"{name} failed: {error or 'no error recorded'}")


def branch_target(cases: Mapping[str, str], default: str | None, value: Any) -> str | None:
    key = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return cases.get(key, default)
