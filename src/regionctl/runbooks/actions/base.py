"""What an action is: a name, a pydantic input model, an output model and ``run(inputs, ctx)``.

Every action must be safe to run again (idempotent): the engine journals a step as running before calling the
action, so an action in flight when the engine dies is called a second time after restart. Actions therefore
read the world first and only act when it is not already as wanted, and say which in their ``reason`` output.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from regionctl.errors import InputError
from regionctl.runbooks.ports import Ports

T = TypeVar("T")


class ActionError(Exception):
    """An attempt failed. ``retryable=False`` fails the step at once whatever ``maxAttempts`` says."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Interrupted(Exception):  # noqa: N818 (it is a signal, not an error)
    """The execution was paused or cancelled while this attempt waited; the attempt does not count."""


class ActionInputs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActionOutputs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Decision:
    """An approver's verdict on an approval step."""

    approved: bool
    approver: str
    comment: str
    at: float


@dataclass(frozen=True)
class ChildOutcome:
    execution_id: str
    status: str  # a terminal execution status
    outputs: Mapping[str, Any]
    error: str | None


class StepServices(Protocol):
    """What the engine offers an action while it runs (bound to one step attempt)."""

    def note(self, message: str) -> None: ...

    def decision(self) -> Decision | None: ...

    def mark_waiting(self, detail: Mapping[str, Any]) -> None: ...

    async def wait_signal(self, timeout: float) -> None: ...

    async def run_child(self, runbook: str, parameters: Mapping[str, Any]) -> ChildOutcome: ...


@dataclass
class ActionContext:
    """One attempt of one step: who is running, the ports to the world, and the engine's services."""

    execution_id: str
    runbook: str
    step: str
    seq: int
    attempt: int
    ports: Ports
    regions: tuple[str, ...]
    services: StepServices
    started_at: float = 0.0  # when this step visit first started (wall clock), kept across re-runs
    actor: str = "runbook-engine"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        """Stable across re-runs of the same step visit, so downstream services can de-duplicate."""
        return f"{self.execution_id}/{self.seq}"

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking port call in a worker thread (it may outlive a timeout; see ports.py)."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def poll(self, check: Callable[[], Awaitable[tuple[bool, str]]], interval: float) -> str:
        """Call ``check`` until it says yes; returns its reason. The step's timeout bounds the wait, and each new
        reason for waiting is noted once in the history (not every poll)."""
        last = ""
        while True:
            ok, reason = await check()
            if ok:
                return reason
            if reason != last:
                self.services.note(f"waiting: {reason}")
                last = reason
            await asyncio.sleep(interval)

    def require_region(self, region: str) -> str:
        if region not in self.regions:
            raise ActionError(f"unknown region {region!r}; this deployment has {', '.join(self.regions)}", False)
        return region


@dataclass(frozen=True)
class CheckEnv:
    """What load-time validation knows about the world (None = cannot tell, skip that check)."""

    resolve_runbook: Callable[[str], Any] | None = None  # name -> Runbook (raises NotFoundError)
    functions: frozenset[str] | None = None
    probes: frozenset[str] | None = None


class Action(ABC):
    """Subclass, set the class variables, implement ``run``."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Inputs: ClassVar[type[BaseModel]]
    Outputs: ClassVar[type[BaseModel]]
    default_timeout: ClassVar[float | None] = 300.0
    interruptible: ClassVar[bool] = False  # pause/cancel may stop it mid-wait; it is re-run on resume
    open_outputs: ClassVar[frozenset[str]] = frozenset()  # output fields whose inner keys are not declared

    @abstractmethod
    async def run(self, inputs: Any, ctx: ActionContext) -> BaseModel: ...

    def check(self, inputs: Mapping[str, Any], env: CheckEnv) -> list[tuple[str, str]]:
        """Extra load-time checks on literal inputs: a list of (input field, problem)."""
        del inputs, env
        return []


class ActionRegistry:
    """Actions by name; the document validator and the engine both look here."""

    def __init__(self, actions: Iterable[Action] = ()) -> None:
        self._actions: dict[str, Action] = {}
        for action in actions:
            self.register(action)

    def register(self, action: Action) -> None:
        if action.name in self._actions:
            raise InputError(f"action {action.name!r} is registered twice")
        self._actions[action.name] = action

    def get(self, name: str) -> Action | None:
        return self._actions.get(name)

    def names(self) -> list[str]:
        return sorted(self._actions)

    def __contains__(self, name: object) -> bool:
        return name in self._actions


def now() -> float:
    return time.time()
