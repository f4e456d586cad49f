"""Running one step run: the attempts of an action, a parallel block, a branch.

Order of every attempt (each line a journal commit before the next thing happens):
    render + check inputs  ->  ``start_attempt`` (status running)  ->  action.run  ->  ``finish_run``
A crash after ``start_attempt`` re-runs that attempt on resume (actions are idempotent, see actions/base.py);
a crash after ``finish_run`` never runs the step again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ValidationError

from regionctl.errors import InputError, RegionctlError
from regionctl.runbooks import journal as J
from regionctl.runbooks.actions.base import Action, ActionContext, ActionError, ChildOutcome, Decision, Interrupted
from regionctl.runbooks.flow import branch_target
from regionctl.runbooks.model import Runbook, Step
from regionctl.runbooks.templates import RenderContext, TemplateError, render

if TYPE_CHECKING:
    from regionctl.runbooks.actions.base import ActionRegistry
    from regionctl.runbooks.ports import Ports


class Waker(Protocol):
    async def wait_for(self, timeout: float) -> None: ...


class Engine(Protocol):
    """What running steps asks of the engine (``engine.Engine`` is the one implementation): the runner is driven
    by the engine and never imports it."""

    journal: J.Journal
    registry: ActionRegistry
    ports: Ports
    regions: tuple[str, ...]

    def crash_point(self, point: str, execution_id: str, step: str | None) -> None: ...

    def track(self, execution: J.Execution, task: asyncio.Future[Any]) -> Callable[[], None]: ...

    def signal(self, execution_id: str) -> Waker: ...

    def step_succeeded(self, execution_id: str, step: str) -> None: ...

    async def run_child(self, parent: J.Execution, run: J.StepRun, attempt: int, runbook: str,
                        parameters: Mapping[str, Any]) -> ChildOutcome: ...


@dataclass(frozen=True)
class Outcome:
    ok: bool
    result: BaseModel | None = None
    error: str | None = None
    retryable: bool = True
    interrupted: bool = False


def select_outputs(selectors: Mapping[str, str], result: Mapping[str, Any]) -> dict[str, Any]:
    """The step's declared outputs picked out of the action's result by dotted path."""
    outputs: dict[str, Any] = {}
    for name, selector in selectors.items():
        value: Any = result
        for key in selector.split("."):
            if not isinstance(value, Mapping) or key not in value:
                raise ActionError(f"output {name}: the result has no {selector!r}", retryable=False)
            value = value[key]
        outputs[name] = value
    return outputs


def render_context(engine: Engine, execution: J.Execution) -> RenderContext:
    """Outputs of the latest finished run of each step, the parameters and the execution's identity."""
    steps: dict[str, Mapping[str, Any]] = {}
    for run in engine.journal.runs(execution.id):
        if run.status == J.SUCCEEDED and run.outputs is not None:
            steps[run.step] = run.outputs
    return RenderContext(params=execution.parameters, steps=steps, regions=engine.regions,
                         execution={"id": execution.id, "runbook": execution.runbook})


class StepServices:
    """What an action may ask of the engine during one attempt (see actions/base.py StepServices)."""

    def __init__(self, engine: Engine, execution: J.Execution, run: J.StepRun, attempt: int) -> None:
        self._engine, self._execution, self._run, self._attempt = engine, execution, run, attempt

    def note(self, message: str) -> None:
        self._engine.journal.note(self._execution.id, f"{self._run.step}: {message}", self._run.seq, self._run.step)

    def decision(self) -> Decision | None:
        row = self._engine.journal.decision(self._execution.id, self._run.seq, self._attempt)
        if row is None:
            return None
        return Decision(bool(row["approved"]), row["approver"], row["comment"], row["at"])

    def mark_waiting(self, detail: Mapping[str, Any]) -> None:
        approvers = ", ".join(detail.get("approvers", ()))
        self._engine.journal.set_waiting(self._execution.id, self._run.seq, detail,
                                         f"{self._run.step}: waiting for approval by {approvers}")

    async def wait_signal(self, timeout: float) -> None:
        await self._engine.signal(self._execution.id).wait_for(timeout)

    async def run_child(self, runbook: str, parameters: Mapping[str, Any]) -> ChildOutcome:
        return await self._engine.run_child(self._execution, self._run, self._attempt, runbook, parameters)


class StepRunner:
    """Runs step runs of one execution for the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.journal = engine.journal

    async def run(self, execution: J.Execution, runbook: Runbook, run: J.StepRun) -> None:
        step = runbook.step(run.step)
        if step.parallel is not None:
            await self._parallel(execution, runbook, step, run)
        elif step.branch is not None:
            self._branch(execution, step, run)
        else:
            await self._action(execution, step, run)

    # --- branch ---------------------------------------------------------------------------------------------------

    def _branch(self, execution: J.Execution, step: Step, run: J.StepRun) -> None:
        assert step.branch is not None
        try:
            value = render(step.branch.on, render_context(self.engine, execution))
        except TemplateError as exc:
            self.journal.finish_run(execution.id, run.seq, J.FAILED, f"{step.name}: {exc}", error=str(exc))
            return
        target = branch_target(step.branch.cases, step.branch.default, value)
        if target is None:
            error = f"no case for {value!r} (cases: {', '.join(step.branch.cases)}) and no default"
            self.journal.finish_run(execution.id, run.seq, J.FAILED, f"{step.name}: {error}", error=error)
            return
        self.journal.finish_run(execution.id, run.seq, J.SUCCEEDED, f"{step.name}: {value!r} -> {target}",
                                outputs={"value": value, "next": target})
        self.engine.step_succeeded(execution.id, step.name)

    # --- parallel -------------------------------------------------------------------------------------------------

    async def _parallel(self, execution: J.Execution, runbook: Runbook, step: Step, run: J.StepRun) -> None:
        assert step.parallel is not None
        if run.status == J.PENDING:
            self.journal.start_attempt(execution.id, run.seq, run.attempt + 1, None, resumed=False)
        existing = {r.step for r in self.journal.child_runs(execution.id, run.seq)}
        for child in step.parallel:
            if child.name not in existing:
                self.journal.new_run(execution.id, child.name, parent_seq=run.seq, reason=f"{step.name}: start "
                                     f"{child.name}")
        todo = [r for r in self.journal.child_runs(execution.id, run.seq) if not r.done]
        await asyncio.gather(*(self._action(execution, runbook.step(r.step), r) for r in todo))
        children = self.journal.child_runs(execution.id, run.seq)
        if any(not r.done for r in children):
            return  # interrupted by pause or cancel; the block resumes with the unfinished children
        failed = [r for r in children if r.status in (J.FAILED, J.CANCELLED)
                  and runbook.step(r.step).on_failure != "Continue"]
        if failed:
            error = "; ".join(f"{r.step}: {r.error or r.status}" for r in failed)
            self.journal.finish_run(execution.id, run.seq, J.FAILED, f"{step.name} failed: {error}", error=error)
        else:
            self.journal.finish_run(execution.id, run.seq, J.SUCCEEDED, f"{step.name}: all steps done", outputs={})
            self.engine.step_succeeded(execution.id, step.name)

    # --- action ---------------------------------------------------------------------------------------------------

    async def _action(self, execution: J.Execution, step: Step, run: J.StepRun) -> None:
        action = self.engine.registry.get(step.action or "")
        if action is None:
            self.journal.finish_run(execution.id, run.seq, J.FAILED, f"{step.name}: unknown action {step.action}",
                                    error=f"unknown action {step.action!r}")
            return
        while True:
            run = self.journal.run(execution.id, run.seq)
            status = self.journal.execution(execution.id).status
            if status in (J.PAUSING, J.CANCELLING):
                if status == J.CANCELLING:
                    self.journal.finish_run(execution.id, run.seq, J.CANCELLED, f"{step.name}: cancelled")
                return
            resumed = run.status in (J.RUNNING, J.WAITING)
            attempt = run.attempt if resumed else run.attempt + 1
            try:
                inputs = self._inputs(execution, step, action)
            except ActionError as exc:
                self.journal.finish_run(execution.id, run.seq, J.FAILED, f"{step.name}: {exc}", error=str(exc))
                return
            run = self.journal.start_attempt(execution.id, run.seq, attempt, inputs.model_dump(mode="json",
                                             by_alias=True), resumed)
            self.engine.crash_point("step.running", execution.id, step.name)
            outcome = await self._attempt(execution, step, run, action, inputs, attempt)
            self.engine.crash_point("step.acted", execution.id, step.name)
            if self._settle(execution, step, run, attempt, outcome):
                self.engine.crash_point("step.finished", execution.id, step.name)
                return
            if step.retry_delay_seconds:
                await asyncio.sleep(step.retry_delay_seconds)

    def _inputs(self, execution: J.Execution, step: Step, action: Action) -> BaseModel:
        try:
            raw = render(step.inputs, render_context(self.engine, execution))
            return action.Inputs.model_validate(raw)
        except TemplateError as exc:
            raise ActionError(f"inputs: {exc}", retryable=False) from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'inputs'}: {e['msg']}" for e in exc.errors())
            raise ActionError(f"inputs: {problems}", retryable=False) from None

    def _settle(self, execution: J.Execution, step: Step, run: J.StepRun, attempt: int, outcome: Outcome) -> bool:
        """Journal the attempt's outcome; True when the run is finished (or handed back to the engine)."""
        eid, seq = execution.id, run.seq
        if outcome.interrupted:
            if self.journal.execution(eid).status == J.CANCELLING:
                self.journal.finish_run(eid, seq, J.CANCELLED, f"{step.name}: cancelled while running")
            else:
                self.journal.unstart(eid, seq, f"{step.name}: attempt {attempt} interrupted; it runs again on resume")
            return True
        if outcome.ok:
            assert outcome.result is not None
            result = outcome.result.model_dump(mode="json", by_alias=True)
            try:
                outputs = select_outputs(step.outputs, result)
            except ActionError as exc:
                self.journal.finish_run(eid, seq, J.FAILED, f"{step.name}: {exc}", result=result, error=str(exc))
                return True
            self.journal.finish_run(eid, seq, J.SUCCEEDED, f"{step.name} succeeded (attempt {attempt})",
                                    result=result, outputs=outputs)
            self.engine.step_succeeded(eid, step.name)
            return True
        error = outcome.error or "failed"
        more = outcome.retryable and attempt - run.round_base < step.max_attempts
        self.journal.attempt_failed(eid, seq, f"attempt {attempt}/{step.max_attempts + run.round_base}: {error}", more)
        if not more:
            self.journal.finish_run(eid, seq, J.FAILED, f"{step.name} failed: {error}", error=error)
        return not more

    async def _attempt(self, execution: J.Execution, step: Step, run: J.StepRun, action: Action,
                       inputs: BaseModel, attempt: int) -> Outcome:
        ctx = ActionContext(
            execution_id=execution.id, runbook=execution.runbook, step=step.name, seq=run.seq, attempt=attempt,
            ports=self.engine.ports, regions=self.engine.regions,
            services=StepServices(self.engine, execution, run, attempt), started_at=run.first_started_at or 0.0,
            actor=f"runbook:{execution.runbook}",
        )
        timeout = step.timeout_seconds if step.timeout_seconds is not None else action.default_timeout
        task = asyncio.ensure_future(action.run(inputs, ctx))
        release: Callable[[], None] = self.engine.track(execution, task) if action.interruptible else _nothing
        try:
            result = await asyncio.wait_for(task, timeout)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the engine itself is being stopped
            return Outcome(ok=False, interrupted=True)
        except TimeoutError:
            return Outcome(ok=False, error=f"timed out after {timeout:g}s")
        except Interrupted:
            return Outcome(ok=False, interrupted=True)
        except ActionError as exc:
            return Outcome(ok=False, error=str(exc), retryable=exc.retryable)
        except InputError as exc:
            return Outcome(ok=False, error=str(exc), retryable=False)
        except RegionctlError as exc:
            return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 (an action's bug fails its step, named, not the engine)
            return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}")
        finally:
            release()
        if not isinstance(result, action.Outputs):
            return Outcome(ok=False, error=f"action {action.name} returned {type(result).__name__}", retryable=False)
        return Outcome(ok=True, result=result)


def _nothing() -> None:
    return None
