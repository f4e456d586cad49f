"""Measured recovery time: from an execution's start to the first successful probe of a named check.

A runbook declares ``recovery: {probe: global_write, after: StepName, writer: REGION, notServedBy: REGION}``.
Once ``after`` has succeeded (or at once, without ``after``) a background task calls the probe every
``intervalSeconds`` until a result meets the target, and the journal records the time. A write that the old
writer accepted (a cut-off writer keeps taking orders until its lease runs out) does not count: it is about to
be lost, so with ``writer`` set the figure can never be shorter than the promotion itself. The journal notes
the first such write once. If the engine is down when the probe would first have passed, the figure is late
by that much (the journal says when probing resumed).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol

from regionctl.runbooks import journal as J
from regionctl.runbooks.model import Recovery
from regionctl.runbooks.ports import ProbeResult

if TYPE_CHECKING:
    from regionctl.runbooks.ports import Ports


class Engine(Protocol):
    """What the recovery prober reads of the engine (``engine.Engine`` is the one implementation)."""

    journal: J.Journal
    ports: Ports


class RecoveryProber:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def tasks(self) -> list[asyncio.Task[None]]:
        return [t for t in self._tasks.values() if not t.done()]

    def maybe_start(self, execution: J.Execution) -> None:
        """Start probing if the execution measures recovery, has not recovered, and its trigger step is done."""
        spec = self._spec(execution)
        if spec is None or execution.recovered_at is not None:
            return
        if spec.after is None or any(r.step == spec.after and r.status == J.SUCCEEDED
                                     for r in self.engine.journal.runs(execution.id)):
            self._start(execution, spec)

    def step_succeeded(self, execution: J.Execution, step: str) -> None:
        spec = self._spec(execution)
        if spec is not None and spec.after == step and execution.recovered_at is None:
            self._start(execution, spec)

    @staticmethod
    def _spec(execution: J.Execution) -> Recovery | None:
        return Recovery.model_validate(execution.recovery) if execution.recovery else None

    def _start(self, execution: J.Execution, spec: Recovery) -> None:
        task = self._tasks.get(execution.id)
        if task is not None and not task.done():
            return
        self._tasks[execution.id] = asyncio.create_task(self._probe(execution, spec),
                                                        name=f"recovery:{execution.id}")

    async def _probe(self, execution: J.Execution, spec: Recovery) -> None:
        journal = self.engine.journal
        probe = self.engine.ports.probes.get(spec.probe)
        if probe is None:
            journal.mark_recovery(execution.id, message=f"probe {spec.probe!r} is not bound; no recovery time")
            return
        journal.mark_recovery(execution.id, probing_since=time.time(),
                              message=f"probing {spec.probe} every {spec.interval_seconds:g}s")
        started = execution.started_at or execution.created_at
        noted_elsewhere = False
        while time.time() - started < spec.give_up_seconds:
            try:
                result = ProbeResult.of(await asyncio.to_thread(probe))
            except Exception as exc:  # noqa: BLE001 (a failing probe means "not recovered yet")
                result = ProbeResult(False, detail=f"{type(exc).__name__}: {exc}")
            miss = result.misses(spec.writer, spec.not_served_by)
            if miss is None:
                now = time.time()
                where = result.describe()
                journal.mark_recovery(execution.id, recovered_at=now,
                                      message=f"{spec.probe} passed{' (' + where + ')' if where else ''}; "
                                              f"recovery time {now - started:.3f}s")
                return
            if result.ok and not noted_elsewhere:  # a write that will not survive: say so once, keep probing
                noted_elsewhere = True
                journal.mark_recovery(execution.id, message=f"{spec.probe} accepted a write that does not count "
                                                            f"yet: {miss}")
            await asyncio.sleep(spec.interval_seconds)
        journal.mark_recovery(execution.id, message=f"{spec.probe} never passed within {spec.give_up_seconds:g}s")
