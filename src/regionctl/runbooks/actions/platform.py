"""Actions on the platform: routing.set, db.*, reconcile.*. Each reads the world, decides with a pure function
that carries a reason, and only then acts through the ports (ports.py), so a re-run after a crash changes
nothing that is already as wanted: a database is promoted once however often the step runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from regionctl.errors import Pending, RetryLater
from regionctl.jsonable import to_jsonable
from regionctl.runbooks.actions.base import Action, ActionContext, ActionError, ActionInputs, ActionOutputs
from regionctl.runbooks.ports import DatabaseStatus


def _on_off(value: Any) -> Any:
    """YAML 1.1 reads a bare On/Off as a boolean; take it back."""
    if isinstance(value, bool):
        return "On" if value else "Off"
    return value


RoutingState = Annotated[Literal["On", "Off"], BeforeValidator(_on_off)]


@dataclass(frozen=True)
class Plan:
    act: bool
    reason: str


# --- pure decisions ---------------------------------------------------------------------------------------------


def plan_promotion(status: DatabaseStatus, to_region: str, how: str) -> Plan:
    if status.interrupted_to == to_region:
        return Plan(True, f"finish the interrupted promotion of {status.database} to {to_region} ({how})")
    if status.writer == to_region:
        return Plan(False, f"{to_region} is already the writer of {status.database}; no {how}")
    return Plan(True, f"{how} of {status.database} from {status.writer or 'no writer'} to {to_region}")


def plan_preserve(status: DatabaseStatus, region: str) -> Plan:
    member = status.member(region)
    if member.role == "writer":
        return Plan(False, f"{region} is the writer of {status.database}; nothing diverged to keep")
    writer = status.members.get(status.writer or "")
    if member.role == "standby" and member.streaming and writer is not None and member.timeline == writer.timeline:
        return Plan(False, f"{region} follows the writer of {status.database} on timeline {member.timeline}; "
                           "nothing diverged to keep")
    return Plan(True, f"keep the copy of {status.database} in {region} ({member.role}) before any rebuild")


def plan_rebuild(status: DatabaseStatus, region: str) -> Plan:
    member = status.member(region)
    if member.role == "writer":
        raise ActionError(f"{region} is the writer of {status.database}; only a former writer is rebuilt", False)
    writer = status.members.get(status.writer or "")
    if member.role == "standby" and member.streaming and writer is not None and member.timeline == writer.timeline:
        return Plan(False, f"{region} already streams from the writer of {status.database} on timeline "
                           f"{member.timeline}")
    return Plan(True, f"rebuild {status.database} in {region} ({member.role}) as a standby of {status.writer}")


# --- routing.set ------------------------------------------------------------------------------------------------


class ControlChange(ActionInputs):
    region: str
    state: RoutingState


class RoutingInputs(ActionInputs):
    """One control (``region`` + ``state``) or several in one transaction (``changes``)."""

    region: str | None = None
    state: RoutingState | None = None
    changes: list[ControlChange] = Field(default_factory=list)
    overrides: list[str] = Field(default_factory=list, description="safety rules to bypass, by name")
    reason: str = ""

    @model_validator(mode="after")
    def _one_form(self) -> RoutingInputs:
        single = (self.region is not None, self.state is not None)
        if single == (True, True) and not self.changes:
            return self
        if single == (False, False) and self.changes:
            return self
        raise ValueError("give region and state, or a list of changes (not both)")

    @field_validator("overrides")
    @classmethod
    def _no_empty(cls, value: list[str]) -> list[str]:
        """A templated optional override renders to ""; that means none."""
        return [v for v in value if v.strip()]

    def wanted(self) -> dict[str, str]:
        if self.region is not None and self.state is not None:
            return {self.region: self.state}
        return {c.region: c.state for c in self.changes}


class RoutingOutputs(ActionOutputs):
    changed: bool
    states: dict[str, str]
    reason: str
    details: Any = None


WAIT_PERIOD_MARGIN_S = 0.1  # retry just after a wait period ends, not on its last tick


class RoutingSet(Action):
    name = "routing.set"
    summary = "set routing controls On/Off in one transaction (safety rules apply unless overridden)"
    Inputs = RoutingInputs
    Outputs = RoutingOutputs
    default_timeout = 120.0
    open_outputs = frozenset({"states", "details"})

    async def run(self, inputs: RoutingInputs, ctx: ActionContext) -> RoutingOutputs:
        asked = inputs.wanted()
        for region in asked:
            ctx.require_region(region)
        current = dict(await ctx.call(ctx.ports.routing.states))
        wanted = {r: s for r, s in asked.items() if current.get(r) != s}
        if not wanted:
            said = ", ".join(f"{r} {s}" for r, s in asked.items())
            return RoutingOutputs(changed=False, states=current, reason=f"already {said}")
        why = inputs.reason or f"runbook {ctx.runbook} step {ctx.step}"
        while True:  # a running wait period only delays the change: wait it out (the step's timeout bounds this)
            try:
                details = await ctx.call(ctx.ports.routing.set_states, wanted, list(inputs.overrides),
                                         f"{ctx.actor} ({ctx.execution_id})", why)
                break
            except RetryLater as exc:
                ctx.services.note(f"waiting {exc.retry_after_s:.1f} s: {exc}")
                await asyncio.sleep(exc.retry_after_s + WAIT_PERIOD_MARGIN_S)
        after = dict(await ctx.call(ctx.ports.routing.states))
        said = ", ".join(f"{r} {current.get(r)} -> {s}" for r, s in wanted.items())
        return RoutingOutputs(changed=True, states=after, reason=said, details=to_jsonable(details))


# --- db.* -------------------------------------------------------------------------------------------------------


class DbInputs(ActionInputs):
    database: str = Field(min_length=1)


class PromoteInputs(DbInputs):
    to_region: str


class MemberInputs(DbInputs):
    region: str


class SnapshotInputs(MemberInputs):
    label: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,80}$")


class RestoreInputs(DbInputs):
    snapshot: str = Field(min_length=1)
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,62}$")
    target_time: str | None = None
    target_lsn: str | None = Field(None, pattern=r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")


class DbOutputs(ActionOutputs):
    database: str
    changed: bool
    reason: str
    writer: str | None = None
    details: Any = None


class _DbAction(Action):
    default_timeout = 600.0
    Outputs = DbOutputs
    open_outputs = frozenset({"details"})

    async def _status(self, ctx: ActionContext, database: str) -> DatabaseStatus:
        return await ctx.call(ctx.ports.databases.status, database)

    async def _done(self, ctx: ActionContext, database: str, plan: Plan, details: Any = None) -> DbOutputs:
        after = await self._status(ctx, database)
        ctx.services.note(plan.reason)
        return DbOutputs(database=database, changed=plan.act, reason=plan.reason, writer=after.writer,
                         details=to_jsonable(details))


class _Promote(_DbAction):
    Inputs = PromoteInputs
    operation: ClassVar[str]

    async def run(self, inputs: PromoteInputs, ctx: ActionContext) -> DbOutputs:
        target = ctx.require_region(inputs.to_region)
        plan = plan_promotion(await self._status(ctx, inputs.database), target, self.operation)
        details = None
        if plan.act:
            details = await ctx.call(getattr(ctx.ports.databases, self.operation), inputs.database, target)
        return await self._done(ctx, inputs.database, plan, details)


class DbSwitchover(_Promote):
    name = "db.switchover"
    summary = "planned switchover of a global database (RPO 0)"
    operation = "switchover"


class DbFailover(_Promote):
    name = "db.failover"
    summary = "unplanned failover of a global database (data loss allowed)"
    operation = "failover"


class _OnMember(_DbAction):
    """An operation on one member (a region) of a global database, done only when ``plan`` says it is needed."""

    Inputs = MemberInputs
    operation: ClassVar[str]  # the method of the databases port

    def plan(self, status: DatabaseStatus, region: str) -> Plan:
        raise NotImplementedError

    async def run(self, inputs: MemberInputs, ctx: ActionContext) -> DbOutputs:
        plan = self.plan(await self._status(ctx, inputs.database), ctx.require_region(inputs.region))
        details = None
        if plan.act:
            details = await ctx.call(getattr(ctx.ports.databases, self.operation), inputs.database, inputs.region)
        return await self._done(ctx, inputs.database, plan, details)


class DbPreserve(_OnMember):
    name = "db.preserve"
    summary = "keep a former writer's diverged copy before anything rebuilds it"
    operation = "preserve"

    def plan(self, status: DatabaseStatus, region: str) -> Plan:
        return plan_preserve(status, region)


class DbRebuild(_OnMember):
    name = "db.rebuild"
    summary = "rebuild a former writer as a streaming standby (pg_rewind)"
    operation = "rebuild"
    default_timeout = 1800.0

    def plan(self, status: DatabaseStatus, region: str) -> Plan:
        return plan_rebuild(status, region)


class DbSnapshot(_DbAction):
    name = "db.snapshot"
    summary = "take a named base backup (the existing one when the label exists)"
    Inputs = SnapshotInputs
    default_timeout = 1800.0

    async def run(self, inputs: SnapshotInputs, ctx: ActionContext) -> DbOutputs:
        region = ctx.require_region(inputs.region)
        details = await ctx.call(ctx.ports.databases.snapshot, inputs.database, region, inputs.label)
        return await self._done(ctx, inputs.database, Plan(True, f"snapshot {inputs.label} of {inputs.database} "
                                                               f"in {region}"), details)


class DbRestore(_DbAction):
    name = "db.restore"
    summary = "point-in-time restore into a new instance that never archives nor replicates"
    Inputs = RestoreInputs
    default_timeout = 3600.0

    async def run(self, inputs: RestoreInputs, ctx: ActionContext) -> DbOutputs:
        if inputs.target_time and inputs.target_lsn:
            raise ActionError("give target_time or target_lsn, not both", retryable=False)
        details = await ctx.call(ctx.ports.databases.restore, inputs.database, inputs.snapshot, inputs.name,
                                 inputs.target_time, inputs.target_lsn)
        plan = Plan(True, f"restore of {inputs.database} snapshot {inputs.snapshot} into {inputs.name}")
        return await self._done(ctx, inputs.database, plan, details)


# --- reconcile.* ------------------------------------------------------------------------------------------------


class ReportInputs(ActionInputs):
    database: str = Field(min_length=1)
    region: str = Field(description="the former writer's region")


class ReportOutputs(ActionOutputs):
    report_id: str
    details: Any = None


class ReplayInputs(ActionInputs):
    report_id: str = Field(min_length=1)
    approved_by: str = Field(min_length=1)


class ReplayOutputs(ActionOutputs):
    report_id: str
    details: Any = None


class ReconcileReport(Action):
    name = "reconcile.report"
    summary = "build the missing-transaction report of a former writer"
    Inputs = ReportInputs
    Outputs = ReportOutputs
    default_timeout = 1800.0
    open_outputs = frozenset({"details"})

    async def run(self, inputs: ReportInputs, ctx: ActionContext) -> ReportOutputs:
        region = ctx.require_region(inputs.region)
        try:
            details = to_jsonable(await ctx.call(ctx.ports.reconciler.report, inputs.database, region))
        except Pending as exc:  # the old region is cut off: never reported as done, never waited for
            ctx.services.note(f"{inputs.database} report pending: {exc}")
            return ReportOutputs(report_id="", details={"pending": True, "reason": str(exc),
                                                        "command": exc.command, "lost_transactions": "pending"})
        if isinstance(details, dict):
            details.setdefault("pending", False)
        report_id = details.get("report_id") if isinstance(details, dict) else None
        if not report_id:
            raise ActionError("the reconciler returned no report_id", retryable=False)
        return ReportOutputs(report_id=str(report_id), details=details)


class ReconcileReplay(Action):
    name = "reconcile.replay"
    summary = "replay the non-conflicting lost transactions of a report (approved, idempotent)"
    Inputs = ReplayInputs
    Outputs = ReplayOutputs
    default_timeout = 1800.0
    open_outputs = frozenset({"details"})

    async def run(self, inputs: ReplayInputs, ctx: ActionContext) -> ReplayOutputs:
        details = await ctx.call(ctx.ports.reconciler.replay, inputs.report_id, inputs.approved_by)
        return ReplayOutputs(report_id=inputs.report_id, details=to_jsonable(details))
