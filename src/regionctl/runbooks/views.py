"""What the API returns about runbooks and executions: plain dicts built from the journal and documents."""

from __future__ import annotations

from typing import Any

from regionctl.runbooks import journal as J
from regionctl.runbooks.model import Runbook, Step


def _duration(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 3)


def runbook_view(runbook: Runbook, source: str | None = None) -> dict[str, Any]:
    def step(s: Step) -> dict[str, Any]:
        kind = "parallel" if s.parallel else "branch" if s.branch else s.action
        row: dict[str, Any] = {"name": s.name, "kind": kind, "description": s.description,
                               "maxAttempts": s.max_attempts, "timeoutSeconds": s.timeout_seconds,
                               "onFailure": s.on_failure, "nextStep": s.next_step, "isEnd": s.is_end}
        if s.parallel:
            row["parallel"] = [step(c) for c in s.parallel]
        if s.branch:
            row["branch"] = s.branch.model_dump()
        return row

    view: dict[str, Any] = {
        "name": runbook.name,
        "description": runbook.description,
        "parameters": {name: {"type": p.type.value, "description": p.description, "required": p.required,
                              "default": p.default, "choices": list(p.choices) if p.choices else None}
                       for name, p in runbook.parameters.items()},
        "steps": [step(s) for s in runbook.steps],
        "recovery": runbook.recovery.model_dump(by_alias=True) if runbook.recovery else None,
    }
    if source is not None:
        view["source"] = source
    return view


def run_view(run: J.StepRun, children: list[J.StepRun]) -> dict[str, Any]:
    return {
        "seq": run.seq, "step": run.step, "status": run.status, "attempt": run.attempt, "error": run.error,
        "started_at": run.first_started_at, "ended_at": run.ended_at,
        "duration_s": _duration(run.first_started_at, run.ended_at),
        "inputs": run.inputs, "outputs": run.outputs, "waiting_for": run.wait,
        "parallel": [run_view(c, []) for c in children],
    }


def execution_summary(ex: J.Execution, journal: J.Journal) -> dict[str, Any]:
    run = journal.run(ex.id, ex.position) if ex.position is not None else None
    return {
        "id": ex.id, "runbook": ex.runbook, "status": ex.status, "current_step": run.step if run else None,
        "waiting_for": run.wait if run is not None and run.status == J.WAITING else None, "actor": ex.actor,
        "created_at": ex.created_at, "ended_at": ex.ended_at,
        "duration_s": _duration(ex.started_at, ex.ended_at), "recovery_s": _round(ex.recovery_seconds),
        "error": ex.error,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def execution_view(ex: J.Execution, journal: J.Journal, children: bool = True) -> dict[str, Any]:
    runs = journal.runs(ex.id)
    top = [r for r in runs if r.parent_seq is None]
    view = execution_summary(ex, journal)
    view.update({
        "parameters": ex.parameters, "outputs": ex.outputs, "parent_id": ex.parent_id, "parent_seq": ex.parent_seq,
        "started_at": ex.started_at,
        "recovery": None if ex.recovery is None else {
            **ex.recovery, "probing_since": ex.recovery_probing_since, "recovered_at": ex.recovered_at,
            "recovery_s": _round(ex.recovery_seconds)},
        "steps": [run_view(r, [c for c in runs if c.parent_seq == r.seq]) for r in top],
        "waiting": [],
    })
    child_views = [execution_view(c, journal, children=False) for c in journal.children(ex.id)] if children else []
    view["children"] = child_views
    for owner in [view, *child_views]:
        for step in owner["steps"]:
            for run in [step, *step["parallel"]]:
                if run["status"] == J.WAITING and run["waiting_for"]:
                    view["waiting"].append({"execution_id": owner["id"], "step": run["step"], **run["waiting_for"]})
    return view


def event_view(event: J.Event) -> dict[str, Any]:
    return {"id": event.id, "at": event.at, "kind": event.kind, "step": event.step, "message": event.message,
            "detail": event.detail}
