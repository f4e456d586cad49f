"""``wait.until``: poll a condition of the world until it holds; the step's ``timeoutSeconds`` bounds the wait.

Kinds are pluggable (``register_wait_kind``). Built in:
    http                   an endpoint answers with an accepted status      (url, method, expect_status)
    replication_caught_up  a standby streams and is at most N bytes behind  (database, region, max_lag_bytes;
                           max_lag_ms where a provider measures lag in time only, as Aurora)
    db_writable            a region's member is the writer of a database    (database, region)
    routing_state          a region's routing control is On/Off (+ health)  (region, state, healthy)
    probe                  a named probe from Ports.probes says yes         (probe)
Waiting is naturally idempotent: re-running it only looks again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import Field, model_validator

from regionctl.runbooks.actions.base import Action, ActionContext, ActionError, ActionInputs, ActionOutputs
from regionctl.runbooks.actions.generic import status_accepted
from regionctl.runbooks.actions.platform import RoutingState
from regionctl.runbooks.ports import ProbeResult

Check = Callable[["WaitInputs", ActionContext], Awaitable[tuple[bool, str]]]


@dataclass(frozen=True)
class WaitKind:
    name: str
    required: tuple[str, ...]
    check: Check


WAIT_KINDS: dict[str, WaitKind] = {}


def register_wait_kind(name: str, required: tuple[str, ...], check: Check) -> None:
    """Add a condition ``wait.until`` can wait for; ``required`` names the inputs it needs."""
    WAIT_KINDS[name] = WaitKind(name, required, check)


class WaitInputs(ActionInputs):
    kind: str
    interval_seconds: float = Field(0.5, gt=0, le=600)
    consecutive: int = Field(1, ge=1, le=100, description="successes in a row needed")
    url: str | None = Field(None, pattern=r"^https?://")
    method: Literal["GET", "HEAD", "POST", "PUT"] = "GET"
    expect_status: list[int] | None = None
    database: str | None = None
    region: str | None = None
    max_lag_bytes: int = Field(0, ge=0)
    max_lag_ms: float = Field(1000.0, ge=0, description="replication_caught_up, where the lag is known in time only "
                              "(Aurora's AuroraGlobalDBReplicationLag): at most this far behind")
    state: RoutingState | None = None
    healthy: bool | None = None
    probe: str | None = None
    writer: str | None = Field(None, description="probe: only a write committed by this region's database counts")
    not_served_by: str | None = Field(None, description="probe: only a write another region served counts")

    @model_validator(mode="after")
    def _kind_inputs(self) -> WaitInputs:
        kind = WAIT_KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"unknown kind {self.kind!r}; known: {', '.join(sorted(WAIT_KINDS))}")
        missing = [f for f in kind.required if getattr(self, f) is None]
        if missing:
            raise ValueError(f"kind {self.kind} needs {', '.join(missing)}")
        return self


class WaitOutputs(ActionOutputs):
    kind: str
    reason: str
    checks: int


class WaitUntil(Action):
    name = "wait.until"
    summary = "wait until an endpoint is healthy, replication caught up, a routing state reached, ..."
    Inputs = WaitInputs
    Outputs = WaitOutputs
    default_timeout = 600.0
    interruptible = True

    async def run(self, inputs: WaitInputs, ctx: ActionContext) -> WaitOutputs:
        kind = WAIT_KINDS[inputs.kind]
        streak, checks, last = 0, 0, ""

        async def once() -> tuple[bool, str]:
            nonlocal streak, checks, last
            checks += 1
            ok, reason = await kind.check(inputs, ctx)
            streak = streak + 1 if ok else 0
            if ok and streak < inputs.consecutive:
                reason = f"{reason} ({streak} of {inputs.consecutive} in a row)"
            last = reason
            return streak >= inputs.consecutive, reason

        await ctx.poll(once, inputs.interval_seconds)
        return WaitOutputs(kind=inputs.kind, reason=last, checks=checks)


async def _http(inputs: WaitInputs, ctx: ActionContext) -> tuple[bool, str]:
    del ctx
    assert inputs.url is not None
    try:
        async with httpx.AsyncClient(timeout=min(inputs.interval_seconds * 4, 10.0)) as client:
            response = await client.request(inputs.method, inputs.url)
    except httpx.HTTPError as exc:
        return False, f"{inputs.url}: {type(exc).__name__}"
    ok = status_accepted(response.status_code, inputs.expect_status)
    return ok, f"{inputs.url} answered {response.status_code}"


async def _replication(inputs: WaitInputs, ctx: ActionContext) -> tuple[bool, str]:
    assert inputs.database is not None and inputs.region is not None
    status = await ctx.call(ctx.ports.databases.status, inputs.database)
    member = status.member(ctx.require_region(inputs.region))
    where = f"{inputs.database} in {inputs.region}"
    if member.role != "standby" or not member.streaming:
        return False, f"{where} is {member.role}{'' if member.streaming else ', not streaming'}"
    if member.lag_bytes is None and member.lag_ms is not None:
        if member.lag_ms > inputs.max_lag_ms:
            return False, f"{where} is {member.lag_ms:g} ms behind"
        return True, f"{where} is streaming {member.lag_ms:g} ms behind the writer in {status.writer}"
    if member.lag_bytes is None or member.lag_bytes > inputs.max_lag_bytes:
        return False, f"{where} is {member.lag_bytes if member.lag_bytes is not None else '?'} bytes behind"
    return True, f"{where} is streaming {member.lag_bytes} bytes behind the writer in {status.writer}"


async def _writable(inputs: WaitInputs, ctx: ActionContext) -> tuple[bool, str]:
    assert inputs.database is not None and inputs.region is not None
    status = await ctx.call(ctx.ports.databases.status, inputs.database)
    region = ctx.require_region(inputs.region)
    if status.writer == region:
        return True, f"{inputs.database} is writable in {region}"
    return False, f"the writer of {inputs.database} is {status.writer or 'nowhere'}, not {region}"


async def _routing(inputs: WaitInputs, ctx: ActionContext) -> tuple[bool, str]:
    assert inputs.region is not None and inputs.state is not None
    region = ctx.require_region(inputs.region)
    states = await ctx.call(ctx.ports.routing.states)
    state = states.get(region)
    if state != inputs.state:
        return False, f"routing control of {region} is {state}, waiting for {inputs.state}"
    if inputs.healthy is not None:
        healthy = await ctx.call(ctx.ports.routing.healthy, region)
        if healthy != inputs.healthy:
            return False, f"{region} is {'healthy' if healthy else 'unhealthy'} for routing"
    return True, f"routing control of {region} is {state}"


async def _probe(inputs: WaitInputs, ctx: ActionContext) -> tuple[bool, str]:
    assert inputs.probe is not None
    probe = ctx.ports.probes.get(inputs.probe)
    if probe is None:
        raise ActionError(f"no probe {inputs.probe!r} is bound (known: {', '.join(ctx.ports.probes) or 'none'})",
                          retryable=False)
    try:
        result = ProbeResult.of(await ctx.call(probe))
    except Exception as exc:  # noqa: BLE001 (a failing probe is a "not yet", named in the reason)
        return False, f"probe {inputs.probe}: {type(exc).__name__}: {exc}"
    miss = result.misses(inputs.writer, inputs.not_served_by)
    where = result.describe()
    return miss is None, f"probe {inputs.probe} {miss or 'passed'}{' (' + where + ')' if where and not miss else ''}"


def _register_builtin() -> None:
    register_wait_kind("http", ("url",), _http)
    register_wait_kind("replication_caught_up", ("database", "region"), _replication)
    register_wait_kind("db_writable", ("database", "region"), _writable)
    register_wait_kind("routing_state", ("region", "state"), _routing)
    register_wait_kind("probe", ("probe",), _probe)


_register_builtin()


def describe_kinds() -> dict[str, Any]:
    return {k.name: list(k.required) for k in WAIT_KINDS.values()}
