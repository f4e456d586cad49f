"""The control API's request and response bodies (its OpenAPI contract)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

State = Literal["On", "Off"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=63)]
Actor = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class ChangeBody(BaseModel):
    """A transaction over one or more routing controls."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"controls": {"us-east-1": "Off"}, "actor": "ops", "reason": "evacuate us-east-1"},
        {"controls": {"us-east-1": "On", "us-west-2": "Off"}, "override": ["at-least-one-region-on"]},
    ]})

    controls: dict[Name, State] = Field(min_length=1, max_length=20, description='e.g. {"us-east-1": "Off"}')
    override: list[Name] = Field(default_factory=list, max_length=20, description="rules to bypass for this change")
    actor: Actor | None = Field(None, description="on whose behalf (a runbook execution, say): recorded after the "
                                "caller's operator name, never instead of it")
    reason: str = Field("", max_length=500, description="why (recorded in the audit log)")


class RuleBody(BaseModel):
    """An assertion rule (``controls`` = asserted controls) or a gating rule (``controls`` = gating controls)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "assertion", "controls": ["us-east-1", "us-west-2"], "type": "ATLEAST", "threshold": 1},
        {"kind": "gating", "controls": ["automation"], "targets": ["us-east-1", "us-west-2"], "type": "OR"},
    ]})

    kind: Literal["assertion", "gating"]
    controls: list[Name] = Field(min_length=1, max_length=20)
    targets: list[Name] = Field(default_factory=list, max_length=20, description="gating rules only")
    type: Literal["ATLEAST", "AND", "OR"]
    threshold: int = Field(1, ge=1, le=20, description="ATLEAST only")
    inverted: bool = False
    wait_period_s: float = Field(5.0, ge=0, le=3600)
    actor: Actor | None = Field(None, description="on whose behalf: recorded after the caller's operator name")


class ControlOut(BaseModel):
    name: str
    state: State
    changed_at: float | None = Field(description="epoch seconds of the last change; null if never changed")


class StateOut(BaseModel):
    """What the entry and DNS read: the control states and a version that grows with every commit."""

    version: int
    controls: dict[str, State]
    at: float


class VerdictOut(BaseModel):
    rule: str
    kind: str
    outcome: Literal["pass", "fail", "overridden", "not-affected"]
    reason: str


class ChangeOut(BaseModel):
    applied: bool
    outcome: Literal["applied", "no-op"]
    version: int
    reason: str
    changed: list[str]
    before: dict[str, State]
    after: dict[str, State]
    verdicts: list[VerdictOut]
    audit_id: int


class RefusalOut(BaseModel):
    """The error contract's body (``code``, ``message``) with the rules' answer."""

    code: int
    message: str
    blocking: list[str]
    verdicts: list[VerdictOut]
    audit_id: int
    retry_after_s: float | None = Field(None, description="only wait periods refuse it: retry after this long")


class RuleOut(BaseModel):
    name: str
    kind: Literal["assertion", "gating"]
    controls: list[str]
    targets: list[str]
    type: Literal["ATLEAST", "AND", "OR"]
    threshold: int
    inverted: bool
    wait_period_s: float
    description: str
    holds: bool
    wait_remaining_s: float
    status: str


class AuditOut(BaseModel):
    id: int
    at: float
    time: str
    actor: str
    action: str
    outcome: str
    summary: str
    detail: dict[str, Any]


class HealthOut(BaseModel):
    healthy: bool | None
    last_ok: bool | None
    detail: str
    checked_at: float
    degraded: bool = False


class RegionOut(BaseModel):
    region: str
    control: State | None
    health: HealthOut
    routable: bool
    reason: str
    degraded: bool = False
    receives_traffic: bool = False


class StatusOut(BaseModel):
    version: int
    routing: str
    regions: list[RegionOut]
    controls: list[ControlOut]
    rules: list[RuleOut]
