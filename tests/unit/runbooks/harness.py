"""An engine over a temporary journal, a catalog of test runbooks, fake ports and recording test actions."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from regionctl.runbooks.actions import builtin_actions
from regionctl.runbooks.actions.base import (
    Action,
    ActionContext,
    ActionError,
    ActionInputs,
    ActionOutputs,
    ActionRegistry,
)
from regionctl.runbooks.engine import CrashHook, Engine
from regionctl.runbooks.fakes import fake_ports
from regionctl.runbooks.journal import Execution, Journal
from regionctl.runbooks.loader import LIBRARY, RunbookCatalog
from regionctl.runbooks.ports import Ports

REGIONS = ("us-east-1", "us-west-2")


class Crash(BaseException):
    """The engine process dies here (nothing after this point is journaled)."""


@dataclass
class Recorder:
    calls: list[tuple[str, int]] = field(default_factory=list)  # (key, attempt) per call
    effects: dict[str, int] = field(default_factory=dict)  # key -> times the side effect was applied
    gates: dict[str, asyncio.Event] = field(default_factory=dict)

    def count(self, key: str) -> int:
        return sum(1 for k, _ in self.calls if k == key)


class RecordInputs(ActionInputs):
    key: str
    value: Any = None
    fail_first: int = Field(0, description="fail this many attempts, then succeed")
    fail_always: bool = False
    retryable: bool = True
    sleep: float = 0.0
    gate: str | None = None  # wait until the test opens this gate


class RecordOutputs(ActionOutputs):
    key: str
    value: Any = None
    calls: int


class Record(Action):
    """Checks the world (``effects``) before acting, like every real action: the effect happens once."""

    name = "test.record"
    summary = "record a call"
    Inputs = RecordInputs
    Outputs = RecordOutputs
    open_outputs = frozenset({"value"})

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def run(self, inputs: RecordInputs, ctx: ActionContext) -> RecordOutputs:
        rec = self.recorder
        rec.calls.append((inputs.key, ctx.attempt))
        if inputs.gate is not None:
            await rec.gates.setdefault(inputs.gate, asyncio.Event()).wait()
        if inputs.sleep:
            await asyncio.sleep(inputs.sleep)
        if inputs.fail_always or ctx.attempt <= inputs.fail_first:
            raise ActionError(f"{inputs.key} failed on attempt {ctx.attempt}", retryable=inputs.retryable)
        if inputs.key not in rec.effects:
            rec.effects[inputs.key] = 0
        rec.effects[inputs.key] = max(rec.effects[inputs.key], 1)  # idempotent: applying twice changes nothing
        return RecordOutputs(key=inputs.key, value=inputs.value, calls=rec.count(inputs.key))


class SlowRecord(Record):
    """Same, but not interruptible (like a promotion): pause waits for it to finish."""

    name = "test.slow"


class InterruptibleRecord(Record):
    name = "test.wait"
    interruptible = True


@dataclass
class Harness:
    root: Path
    recorder: Recorder = field(default_factory=Recorder)
    ports: Ports = field(default_factory=lambda: fake_ports(REGIONS))
    with_library: bool = False

    def __post_init__(self) -> None:
        (self.root / "runbooks").mkdir(parents=True, exist_ok=True)
        self.registry = ActionRegistry([*builtin_actions(), Record(self.recorder), SlowRecord(self.recorder),
                                        InterruptibleRecord(self.recorder)])

    @property
    def journal_path(self) -> Path:
        return self.root / "journal.sqlite"

    def write(self, name: str, text: str) -> None:
        (self.root / "runbooks" / f"{name}.yaml").write_text(textwrap.dedent(text))

    def catalog(self) -> RunbookCatalog:
        dirs = [LIBRARY, self.root / "runbooks"] if self.with_library else [self.root / "runbooks"]
        return RunbookCatalog(self.registry, dirs)

    def engine(self, crash_hook: CrashHook | None = None) -> Engine:
        return Engine(Journal(self.journal_path), self.catalog(), self.ports, REGIONS, crash_hook=crash_hook)

    def journal(self) -> Journal:
        return Journal(self.journal_path)

    def session(self, body: Callable[[Engine], Awaitable[Any]], crash_hook: CrashHook | None = None) -> Any:
        """One engine process lifetime: run ``body``, then stop the engine as a crash or a shutdown would."""
        async def main() -> Any:
            engine = self.engine(crash_hook)
            try:
                return await body(engine)
            except Crash:
                return None
            finally:
                await engine.close()
                engine.journal.close()

        return asyncio.run(main())

    def run(self, runbook: str, params: dict[str, Any] | None = None, **kw: Any) -> Execution:
        async def body(engine: Engine) -> Execution:
            execution = await engine.start(runbook, params or {}, "tester", **kw)
            return await engine.wait(execution.id, timeout=30)

        result: Execution = self.session(body)
        return result

    def resume(self) -> list[Execution]:
        async def body(engine: Engine) -> list[Execution]:
            ids = engine.resume_all()
            return [await engine.wait(i, timeout=30) for i in ids]

        result: list[Execution] = self.session(body)
        return result


def crash_at(nth: int, journal_box: list[Journal] | None = None) -> tuple[CrashHook, list[tuple[str, str | None]]]:
    """A hook that raises Crash at the ``nth`` boundary (0-based) and a list of the boundaries seen."""
    seen: list[tuple[str, str | None]] = []

    def hook(point: str, execution_id: str, step: str | None) -> None:
        seen.append((point, step))
        if len(seen) - 1 == nth:
            raise Crash(f"{point} {step}")

    return hook, seen
