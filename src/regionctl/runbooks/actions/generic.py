"""Generic actions: sleep, http.request, python, approve, runbook.run."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator

from regionctl.jsonable import to_jsonable
from regionctl.runbooks.actions.base import (
    Action,
    ActionContext,
    ActionError,
    ActionInputs,
    ActionOutputs,
    CheckEnv,
    Interrupted,
)

MAX_BODY = 64 * 1024


# --- sleep ------------------------------------------------------------------------------------------------------


class SleepInputs(ActionInputs):
    seconds: float = Field(ge=0, le=7 * 24 * 3600)


class SleepOutputs(ActionOutputs):
    slept_seconds: float


class Sleep(Action):
    """Wait a while. Re-run after a crash, it only sleeps what is left since the step first started."""

    name = "sleep"
    summary = "wait a number of seconds"
    Inputs = SleepInputs
    Outputs = SleepOutputs
    default_timeout = None
    interruptible = True

    async def run(self, inputs: SleepInputs, ctx: ActionContext) -> SleepOutputs:
        left = ctx.started_at + inputs.seconds - time.time() if ctx.started_at else inputs.seconds
        await asyncio.sleep(max(0.0, min(left, inputs.seconds)))
        return SleepOutputs(slept_seconds=inputs.seconds)


# --- http.request -----------------------------------------------------------------------------------------------


class HttpInputs(ActionInputs):
    url: str = Field(pattern=r"^https?://")
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(None, alias="json")
    body: str | None = None
    expect_status: list[int] | None = Field(None, description="accepted statuses; default any 2xx")
    request_timeout_seconds: float = Field(10.0, gt=0, le=600)

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(not 100 <= s <= 599 for s in value):
            raise ValueError("HTTP statuses are between 100 and 599")
        return value


class HttpOutputs(ActionOutputs):
    status: int
    json_body: Any = Field(None, serialization_alias="json")
    text: str


def status_accepted(status: int, expect: list[int] | None) -> bool:
    return 200 <= status < 300 if expect is None else status in expect


class HttpRequest(Action):
    """One HTTP request. It sends ``Idempotency-Key: <execution>/<step visit>`` so a re-run after a crash is
    recognised by services that de-duplicate; for the rest, use idempotent methods (GET, PUT, DELETE)."""

    name = "http.request"
    summary = "send an HTTP request and check its status"
    Inputs = HttpInputs
    Outputs = HttpOutputs
    default_timeout = 60.0
    interruptible = True
    open_outputs = frozenset({"json"})

    async def run(self, inputs: HttpInputs, ctx: ActionContext) -> HttpOutputs:
        headers = {"Idempotency-Key": ctx.idempotency_key, **inputs.headers}
        try:
            async with httpx.AsyncClient(timeout=inputs.request_timeout_seconds) as client:
                response = await client.request(inputs.method, inputs.url, headers=headers,
                                                 json=inputs.json_body, content=inputs.body)
        except httpx.HTTPError as exc:
            raise ActionError(f"{inputs.method} {inputs.url}: {type(exc).__name__}: {exc}") from None
        text = response.text[:MAX_BODY]
        if not status_accepted(response.status_code, inputs.expect_status):
            raise ActionError(f"{inputs.method} {inputs.url} answered {response.status_code}: {text[:300]}")
        try:
            body = response.json()
        except ValueError:
            body = None
        return HttpOutputs(status=response.status_code, json_body=body, text=text)


# --- python -----------------------------------------------------------------------------------------------------


class PythonInputs(ActionInputs):
    function: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class PythonOutputs(ActionOutputs):
    result: Any = None


class Python(Action):
    """Call a function registered in ``Ports.functions`` (the reference's Lambda steps) with ``args`` as keyword
    arguments. The function must be idempotent like every action; it gets the step's idempotency key as
    ``idempotency_key`` when it accepts that keyword."""

    name = "python"
    summary = "call a registered Python function"
    Inputs = PythonInputs
    Outputs = PythonOutputs
    open_outputs = frozenset({"result"})

    async def run(self, inputs: PythonInputs, ctx: ActionContext) -> PythonOutputs:
        fn = ctx.ports.functions.get(inputs.function)
        if fn is None:
            known = ", ".join(sorted(ctx.ports.functions)) or "none"
            raise ActionError(f"no function {inputs.function!r} is registered (known: {known})", retryable=False)
        kwargs = dict(inputs.args)
        if "idempotency_key" in inspect.signature(fn).parameters:
            kwargs["idempotency_key"] = ctx.idempotency_key
        if inspect.iscoroutinefunction(fn):
            result = await fn(**kwargs)
        else:
            result = await ctx.call(fn, **kwargs)
        return PythonOutputs(result=to_jsonable(result))

    def check(self, inputs: Mapping[str, Any], env: CheckEnv) -> list[tuple[str, str]]:
        name = inputs.get("function")
        if env.functions is not None and isinstance(name, str) and "{{" not in name and name not in env.functions:
            return [("function", f"no function {name!r} is registered")]
        return []


# --- approve ----------------------------------------------------------------------------------------------------


class ApproveInputs(ActionInputs):
    approvers: list[str] = Field(min_length=1, description="operators (by name) or roles (role:approver) that may "
                                                           "decide; the decider is the authenticated caller")
    message: str = ""
    two_person: bool = Field(False, description="the operator who started the execution may not decide")

    @field_validator("approvers")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        if any(not name.strip() for name in value):
            raise ValueError("approver names must not be empty")
        return value


class ApproveOutputs(ActionOutputs):
    approver: str
    comment: str
    decided_at: float


class Approve(Action):
    """Wait for a named approver's decision. Approval lets the runbook go on; a decline fails the step (its
    ``onFailure`` decides what happens next). The decision is journaled, so a restart does not ask again."""

    name = "approve"
    summary = "wait for a named approver to approve or decline"
    Inputs = ApproveInputs
    Outputs = ApproveOutputs
    default_timeout = None
    interruptible = True

    async def run(self, inputs: ApproveInputs, ctx: ActionContext) -> ApproveOutputs:
        while True:
            decision = ctx.services.decision()
            if decision is not None:
                if not decision.approved:
                    raise ActionError(f"declined by {decision.approver}: {decision.comment or '(no comment)'}")
                return ApproveOutputs(approver=decision.approver, comment=decision.comment, decided_at=decision.at)
            ctx.services.mark_waiting({"approvers": inputs.approvers, "message": inputs.message,
                                       "two_person": inputs.two_person})
            await ctx.services.wait_signal(5.0)


# --- runbook.run ------------------------------------------------------------------------------------------------


class NestedInputs(ActionInputs):
    runbook: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)


class NestedOutputs(ActionOutputs):
    execution_id: str
    status: str
    outputs: dict[str, Any] = Field(default_factory=dict)


class RunRunbook(Action):
    """Run another runbook as a child execution (one level: the child may not nest further). A re-run attaches
    to the child already started for this attempt instead of starting a second one."""

    name = "runbook.run"
    summary = "run another runbook and wait for it"
    Inputs = NestedInputs
    Outputs = NestedOutputs
    default_timeout = None
    open_outputs = frozenset({"outputs"})

    async def run(self, inputs: NestedInputs, ctx: ActionContext) -> NestedOutputs:
        outcome = await ctx.services.run_child(inputs.runbook, inputs.parameters)
        if outcome.status in ("paused", "pausing"):
            raise Interrupted(f"child execution {outcome.execution_id} is paused")
        if outcome.status != "succeeded":
            raise ActionError(f"runbook {inputs.runbook} (execution {outcome.execution_id}) {outcome.status}: "
                              f"{outcome.error or 'no error recorded'}")
        return NestedOutputs(execution_id=outcome.execution_id, status=outcome.status, outputs=dict(outcome.outputs))

    def check(self, inputs: Mapping[str, Any], env: CheckEnv) -> list[tuple[str, str]]:
        name = inputs.get("runbook")
        if env.resolve_runbook is None or not isinstance(name, str) or "{{" in name:
            return []
        try:
            child = env.resolve_runbook(name)
        except Exception as exc:  # noqa: BLE001 (any lookup failure is a load problem to report)
            return [("runbook", str(exc))]
        problems: list[tuple[str, str]] = []
        if any(s.action == self.name for s in child.action_steps()):
            problems.append(("runbook", f"runbook {name!r} runs other runbooks itself; nesting is one level deep"))
        given = inputs.get("parameters") or {}
        if isinstance(given, Mapping):
            for key in given:
                if key not in child.parameters:
                    problems.append((f"parameters.{key}", f"runbook {name!r} has no parameter {key!r}"))
            for key, param in child.parameters.items():
                if param.required and key not in given:
                    problems.append(("parameters", f"runbook {name!r} needs parameter {key!r}"))
        return problems
