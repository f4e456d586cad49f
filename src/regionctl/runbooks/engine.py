"""The durable runbook engine: drives executions from the journal, one asyncio task per top-level execution.

The drive loop reads the execution from the journal, acts on its current step run, journals the result, decides
the next move with a pure function (flow.py) and journals it, again and again. Nothing lives only in memory, so
``resume_all()`` after a crash picks every unfinished execution up where the journal says it was:

    position run pending            -> run it
    position run running / waiting  -> that attempt was in flight: run it again (actions are idempotent)
    position run finished           -> decide the next move again (pure, so the same move)

Operator controls (pause, resume, cancel, retry, skip, approve, decline) are journal writes plus a nudge to the
task; pause and cancel take effect at the next step boundary, or at once for waiting actions (sleep, wait.until,
approve), whose attempt then does not count and runs again on resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from regionctl.errors import ConflictError, Forbidden, InputError, NotFoundError
from regionctl.runbooks import journal as J
from regionctl.runbooks.actions.base import ActionError, ActionRegistry, ChildOutcome, Interrupted
from regionctl.runbooks.flow import FAIL, GOTO, SUCCEED, after_step, first_move
from regionctl.runbooks.loader import Document, RunbookCatalog
from regionctl.runbooks.model import Recovery, Runbook
from regionctl.runbooks.params import resolve_parameters
from regionctl.runbooks.ports import Ports
from regionctl.runbooks.recovery import RecoveryProber
from regionctl.runbooks.runner import StepRunner, render_context
from regionctl.runbooks.templates import RenderContext, TemplateError, render

CrashHook = Callable[[str, str, str | None], None]
MAX_TRANSITIONS = 1000


log = logging.getLogger("regionctl.runbooks")


def _report_failure(task: asyncio.Task[None]) -> None:
    """An engine bug (or a journal that cannot be written) stops driving an execution; say so loudly. The
    execution stays where the journal has it and is resumed by the next engine start."""
    if not task.cancelled() and isinstance(task.exception(), Exception):
        log.error("%s stopped: %r (it resumes when the engine restarts)", task.get_name(), task.exception())


class Signal:
    """Wakes an action waiting for an operator (approve) without polling the journal in a tight loop."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait_for(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()


class Engine:
    def __init__(self, journal: J.Journal, catalog: RunbookCatalog, ports: Ports, regions: tuple[str, ...],
                 registry: ActionRegistry | None = None, crash_hook: CrashHook | None = None,
                 max_transitions: int = MAX_TRANSITIONS) -> None:
        self.journal = journal
        self.catalog = catalog
        self.registry = registry or catalog.registry
        self.ports = ports
        self.regions = regions
        self.max_transitions = max_transitions
        self._crash_hook = crash_hook
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._tracked: dict[str, set[asyncio.Future[Any]]] = {}
        self._signals: dict[str, Signal] = {}
        self._runner = StepRunner(self)
        self.prober = RecoveryProber(self)

    # --- starting and resuming ------------------------------------------------------------------------------------

    async def start(self, runbook: str, parameters: Mapping[str, Any], actor: str,
                    recovery: Recovery | None = None, document: Document | None = None) -> J.Execution:
        """Check the parameters, journal the execution, and drive it in the background."""
        doc = document or self.catalog.get(runbook)
        values = resolve_parameters(doc.runbook, parameters, self.regions)
        spec = recovery or doc.runbook.recovery
        declared = doc.runbook.recovery
        if recovery is not None and declared is not None and recovery.writer is None and recovery.not_served_by is None:
            # an override of the probe or its trigger keeps the runbook's target: which writer a write must reach
            spec = recovery.model_copy(update={"writer": declared.writer, "not_served_by": declared.not_served_by})
        if spec is not None and spec.after is not None and spec.after not in {s.name for s in doc.runbook.steps}:
            raise InputError(f"recovery.after: runbook {runbook} has no step {spec.after!r}")
        if spec is not None:  # its target regions are fixed for the execution, like its parameters
            ctx = RenderContext(params=values, regions=self.regions)
            spec = spec.model_copy(update={"writer": render(spec.writer, ctx),
                                           "not_served_by": render(spec.not_served_by, ctx)})
        execution = self.journal.create_execution(
            doc.runbook.name, doc.source, values, actor,
            recovery=spec.model_dump(by_alias=True) if spec else None)
        self.crash_point("execution.created", execution.id, None)
        self._spawn(execution.id)
        return execution

    def resume_all(self) -> list[str]:
        """Drive every unfinished execution again (after a restart); returns their ids."""
        ids = [e.id for e in self.journal.unfinished()]
        for execution_id in ids:
            self.journal.note(execution_id, "engine restarted; resuming from the journal", kind="execution.resumed")
            self._spawn(execution_id)
        return ids

    def _spawn(self, execution_id: str) -> None:
        task = self._tasks.get(execution_id)
        if task is not None and not task.done():
            return
        task = asyncio.create_task(self._drive(execution_id), name=f"runbook:{execution_id}")
        task.add_done_callback(_report_failure)
        self._tasks[execution_id] = task
        self.prober.maybe_start(self.journal.execution(execution_id))

    async def wait(self, execution_id: str, timeout: float | None = None) -> J.Execution:
        """Until the execution stops moving (finished, paused or failed waiting for an operator)."""
        async def settle() -> None:
            while True:
                task = self._tasks.get(execution_id)
                if task is not None and not task.done():
                    await asyncio.shield(task)
                    continue
                return

        await asyncio.wait_for(settle(), timeout)
        return self.journal.execution(execution_id)

    async def close(self) -> None:
        """Stop driving (executions stay where the journal has them, to be resumed by the next engine)."""
        tasks = [t for t in self._tasks.values() if not t.done()] + self.prober.tasks()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in self._tasks.values():  # an execution that died with an error was already journaled as far
            if not task.cancelled():       # as it got; collect the error so asyncio does not log it at exit
                task.exception()

    # --- the drive loop -------------------------------------------------------------------------------------------

    async def _drive(self, execution_id: str) -> None:
        while True:
            execution = self.journal.execution(execution_id)
            if execution.finished or execution.status == J.PAUSED:
                return
            if execution.status == J.PAUSING:
                self.journal.set_status(execution_id, J.PAUSED, "paused at a step boundary")
                return
            if execution.status == J.CANCELLING:
                self._finish_cancel(execution)
                return
            runbook = self.document(execution.source, execution.runbook)
            if execution.position is None:
                self._move(execution, runbook, first_move(runbook))
                continue
            run = self.journal.run(execution_id, execution.position)
            if not run.done:
                self.crash_point("step.pending", execution_id, run.step)
                await self._runner.run(execution, runbook, run)
                continue
            move = after_step(runbook, run.step, run.status, run.outputs, run.error)
            self._move(execution, runbook, move)

    def _move(self, execution: J.Execution, runbook: Runbook, move: Any) -> None:
        if move.kind == GOTO:
            if execution.transitions >= self.max_transitions:
                self.journal.set_status(execution.id, J.FAILED, f"stopped after {execution.transitions} steps",
                                        error=f"more than {self.max_transitions} step transitions; a loop?")
                return
            self.journal.new_run(execution.id, move.step, reason=move.reason)
        elif move.kind == SUCCEED:
            outputs, error = self._runbook_outputs(execution, runbook)
            if error is not None:
                self.journal.set_status(execution.id, J.FAILED, f"runbook outputs: {error}", error=error)
            else:
                self.journal.set_status(execution.id, J.SUCCEEDED, move.reason, outputs=outputs)
            self.crash_point("execution.finished", execution.id, None)
        elif move.kind == FAIL:
            self.journal.set_status(execution.id, J.FAILED, move.reason, error=move.reason)
            self.crash_point("execution.finished", execution.id, None)

    def _runbook_outputs(self, execution: J.Execution, runbook: Runbook) -> tuple[dict[str, Any], str | None]:
        try:
            return dict(render(runbook.outputs, render_context(self, self.journal.execution(execution.id)))), None
        except TemplateError as exc:
            return {}, str(exc)

    def _finish_cancel(self, execution: J.Execution) -> None:
        for run in self.journal.runs(execution.id):
            if not run.done:
                self.journal.finish_run(execution.id, run.seq, J.CANCELLED, f"{run.step}: cancelled")
        self.journal.set_status(execution.id, J.CANCELLED, "cancelled")

    @staticmethod
    @lru_cache(maxsize=64)
    def _parse(source: str, name: str, registry: ActionRegistry) -> Runbook:
        from regionctl.runbooks.loader import load_text

        return load_text(source, f"{name}.yaml", registry, name=name).runbook

    def document(self, source: str, name: str) -> Runbook:
        """The runbook as journaled at start (a later edit of the file never changes a running execution)."""
        return self._parse(source, name, self.registry)

    # --- hooks used by the step runner ----------------------------------------------------------------------------

    def crash_point(self, point: str, execution_id: str, step: str | None) -> None:
        """Test seam: a hook may raise here to simulate the process dying at this boundary."""
        if self._crash_hook is not None:
            self._crash_hook(point, execution_id, step)

    def track(self, execution: J.Execution, task: asyncio.Future[Any]) -> Callable[[], None]:
        """Remember an interruptible attempt so pause/cancel can stop it; returns the release function."""
        owners = [execution.id] + ([execution.parent_id] if execution.parent_id else [])
        for owner in owners:
            self._tracked.setdefault(owner, set()).add(task)

        def release() -> None:
            for owner in owners:
                self._tracked.get(owner, set()).discard(task)

        return release

    def signal(self, execution_id: str) -> Signal:
        return self._signals.setdefault(execution_id, Signal())

    def step_succeeded(self, execution_id: str, step: str) -> None:
        self.prober.step_succeeded(self.journal.execution(execution_id), step)

    async def run_child(self, parent: J.Execution, run: J.StepRun, attempt: int, runbook: str,
                        parameters: Mapping[str, Any]) -> ChildOutcome:
        """Start (or re-attach to) the child execution of this step attempt and drive it to a stop."""
        child = self.journal.child_for(parent.id, run.seq, attempt)
        if child is None:
            if parent.parent_id is not None:
                raise ActionError("runbooks nest one level deep; this execution is already a child", False)
            try:
                doc = self.catalog.get(runbook)
                values = resolve_parameters(doc.runbook, parameters, self.regions)
            except (InputError, NotFoundError) as exc:
                raise ActionError(str(exc), retryable=False) from None
            child = self.journal.create_execution(doc.runbook.name, doc.source, values, parent.actor,
                                                  parent=(parent.id, run.seq, attempt))
            self.journal.note(parent.id, f"{run.step}: started child execution {child.id} ({runbook})", run.seq,
                              run.step)
        elif child.status == J.PAUSED:
            self.journal.set_status(child.id, J.RUNNING, "resumed with its parent")
        await self._drive(child.id)
        child = self.journal.execution(child.id)
        if child.status in (J.PAUSED, J.CANCELLED) and self.journal.execution(parent.id).status in (
                J.PAUSING, J.CANCELLING):
            raise Interrupted(f"child execution {child.id} {child.status}")
        return ChildOutcome(child.id, child.status, child.outputs or {}, child.error)

    # --- operator controls ----------------------------------------------------------------------------------------

    def _interrupt(self, execution_id: str) -> None:
        for task in list(self._tracked.get(execution_id, ())):
            task.cancel()
        self.signal(execution_id).set()

    def pause(self, execution_id: str, actor: str) -> J.Execution:
        execution = self._top(execution_id)
        if execution.status != J.RUNNING:
            raise ConflictError(f"execution {execution_id} is {execution.status}; only a running one can pause")
        for child in self._active_children(execution_id):
            self.journal.set_status(child.id, J.PAUSING, f"pause requested by {actor} (parent)", actor)
        self.journal.set_status(execution_id, J.PAUSING, f"pause requested by {actor}", actor)
        self._interrupt(execution_id)
        return self.journal.execution(execution_id)

    def resume(self, execution_id: str, actor: str) -> J.Execution:
        execution = self._top(execution_id)
        if execution.status not in (J.PAUSED, J.PAUSING):
            raise ConflictError(f"execution {execution_id} is {execution.status}; only a paused one resumes")
        for child in self.journal.children(execution_id):
            if child.status == J.PAUSING:
                self.journal.set_status(child.id, J.RUNNING, f"resumed by {actor} (parent)", actor)
        self.journal.set_status(execution_id, J.RUNNING, f"resumed by {actor}", actor)
        self._spawn(execution_id)
        return self.journal.execution(execution_id)

    def cancel(self, execution_id: str, actor: str) -> J.Execution:
        execution = self._top(execution_id)
        if execution.finished and execution.status != J.FAILED:
            raise ConflictError(f"execution {execution_id} already {execution.status}")
        driving = execution_id in self._tasks and not self._tasks[execution_id].done()
        for child in self._active_children(execution_id) + self._paused_children(execution_id):
            self.journal.set_status(child.id, J.CANCELLING, f"cancel requested by {actor} (parent)", actor)
        self.journal.set_status(execution_id, J.CANCELLING, f"cancel requested by {actor}", actor)
        self._interrupt(execution_id)
        if not driving:  # paused or failed: nobody will reach a boundary, finish it here
            for child in self.journal.children(execution_id):
                if child.status == J.CANCELLING:
                    self._finish_cancel(child)
            self._finish_cancel(self.journal.execution(execution_id))
        return self.journal.execution(execution_id)

    def retry(self, execution_id: str, actor: str, step: str | None = None) -> J.Execution:
        """Run the failed step again with a fresh round of maxAttempts, then carry on."""
        execution, run = self._failed_run(execution_id, step)
        self.journal.reopen_run(execution_id, run.seq, actor)
        self.journal.set_status(execution_id, J.RUNNING, f"retry of {run.step} requested by {actor}", actor)
        self._spawn(execution.id)
        return self.journal.execution(execution_id)

    def skip(self, execution_id: str, actor: str, step: str | None = None) -> J.Execution:
        """Treat the failed step as done (no outputs) and carry on with the step after it."""
        execution, run = self._failed_run(execution_id, step)
        self.journal.finish_run(execution_id, run.seq, J.SKIPPED, f"{run.step}: skipped by {actor}",
                                error=run.error)
        self.journal.set_status(execution_id, J.RUNNING, f"{run.step} skipped by {actor}", actor)
        self._spawn(execution.id)
        return self.journal.execution(execution_id)

    def decide(self, execution_id: str, approver: str, approved: bool, comment: str,
               step: str | None = None, role: str | None = None) -> J.Execution:
        """Record an approver's verdict on the approval step the execution (or its child) waits at. ``approver``
        is the authenticated caller; the step names who may decide (an operator, or ``role:ROLE``), and with
        ``two_person`` the operator who started the execution may not."""
        if not approver.strip():
            raise InputError("approver: give the approver's name")
        waiting = self.waiting_approvals(execution_id)
        if step is not None:
            waiting = [(e, r) for e, r in waiting if r.step == step]
        if not waiting:
            raise ConflictError(f"execution {execution_id} is not waiting for an approval"
                                + (f" at step {step}" if step else ""))
        if len(waiting) > 1:
            names = ", ".join(r.step for _, r in waiting)
            raise InputError(f"execution {execution_id} waits at several approvals ({names}); name the step")
        owner, run = waiting[0]
        allowed = list((run.wait or {}).get("approvers", ()))
        by_role = role is not None and (f"role:{role}" in allowed or  # admin holds every role
                                        (role == "admin" and any(a.startswith("role:") for a in allowed)))
        if approver not in allowed and not by_role:
            raise Forbidden(f"{approver!r} may not decide step {run.step}; approvers: {', '.join(allowed)}")
        root = self.journal.execution(execution_id)
        while root.parent_id is not None:
            root = self.journal.execution(root.parent_id)
        if (run.wait or {}).get("two_person") and approver == root.actor:
            raise Forbidden(f"the two-person rule: {approver} started execution {root.id} and may not decide its "
                            f"step {run.step}; another of {', '.join(allowed)} must")
        if self.journal.decision(owner, run.seq, run.attempt) is not None:
            raise ConflictError(f"step {run.step} of execution {owner} is already decided")
        self.journal.record_decision(owner, run.seq, run.attempt, approved, approver, comment)
        self.signal(owner).set()
        return self.journal.execution(execution_id)

    def waiting_approvals(self, execution_id: str) -> list[tuple[str, J.StepRun]]:
        owners = [execution_id] + [c.id for c in self.journal.children(execution_id) if not c.finished]
        return [(owner, r) for owner in owners for r in self.journal.runs(owner) if r.status == J.WAITING]

    def _top(self, execution_id: str) -> J.Execution:
        execution = self.journal.execution(execution_id)
        if execution.parent_id is not None:
            raise InputError(f"execution {execution_id} is a child of {execution.parent_id}; control the parent")
        return execution

    def _active_children(self, execution_id: str) -> list[J.Execution]:
        return [c for c in self.journal.children(execution_id) if c.status == J.RUNNING]

    def _paused_children(self, execution_id: str) -> list[J.Execution]:
        return [c for c in self.journal.children(execution_id) if c.status in (J.PAUSED, J.PAUSING)]

    def _failed_run(self, execution_id: str, step: str | None) -> tuple[J.Execution, J.StepRun]:
        execution = self._top(execution_id)
        if execution.status != J.FAILED or execution.position is None:
            raise ConflictError(f"execution {execution_id} is {execution.status}; retry and skip apply to a failed "
                                "execution stopped at a failed step")
        run = self.journal.run(execution_id, execution.position)
        if run.status != J.FAILED:
            raise ConflictError(f"execution {execution_id} did not stop at a failed step ({execution.error})")
        if step is not None and step != run.step:
            raise InputError(f"execution {execution_id} stopped at step {run.step}, not {step}")
        return execution, run
