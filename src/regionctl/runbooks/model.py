"""The runbook document: what an operator writes in YAML, as immutable pydantic models.

Shape (keys in the document use the SSM Automation spelling)::

    description: Fail a region's databases over.
    parameters:
      region: {type: region, description: the region to leave}
      to_region: {type: region, default: "{{ params.region | other_region }}"}
      mode: {type: choice, choices: [graceful, ungraceful], default: ungraceful}
    recovery: {probe: global_write, after: Promote}     # optional: measure time to first good probe
    steps:
      - name: Disable
        action: routing.set
        inputs: {states: {"{{ params.region }}": "Off"}}
        outputs: {states: states}                       # output name -> path in the action's result
        maxAttempts: 3
        timeoutSeconds: 60
        onFailure: Abort                                # Abort | Continue | step:NAME
      - name: Choose
        branch: {on: "{{ params.mode }}", cases: {graceful: Switch}, default: Fail}
      - name: Switch
        parallel: [{name: A, action: ...}, {name: B, action: ...}]
        isEnd: true
      ...

Structure is checked here; references (actions, steps, parameters, input types) in ``validate.py``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
RUNBOOK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ParamType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    REGION = "region"
    CHOICE = "choice"


class Parameter(_Frozen):
    """A typed input of the runbook; without ``default`` it is required when starting."""

    type: ParamType = ParamType.STRING
    description: str = ""
    default: Any = None
    choices: tuple[str | int | float | bool, ...] | None = None

    @property
    def required(self) -> bool:
        return "default" not in self.model_fields_set

    @model_validator(mode="after")
    def _choices(self) -> Parameter:
        if self.type is ParamType.CHOICE and not self.choices:
            raise ValueError("a choice parameter needs a non-empty 'choices' list")
        if self.choices is not None and self.type not in (ParamType.CHOICE, ParamType.STRING, ParamType.INTEGER):
            raise ValueError(f"'choices' is not allowed for type {self.type.value}")
        return self


class OnFailure(str):
    """``Abort``, ``Continue`` or ``step:NAME`` (jump to NAME)."""

    @property
    def target(self) -> str | None:
        return self[5:] if self.startswith("step:") else None


def parse_on_failure(value: Any) -> OnFailure:
    if value in ("Abort", "Continue"):
        return OnFailure(value)
    if isinstance(value, str) and value.startswith("step:") and NAME.match(value[5:]):
        return OnFailure(value)
    raise ValueError(f"must be Abort, Continue or step:NAME, not {value!r}")


class Branch(_Frozen):
    """Choose the next step by the rendered value of ``on``: exact match in ``cases``, else ``default``."""

    on: str
    cases: dict[str, str] = Field(min_length=1)
    default: str | None = None

    @field_validator("cases", mode="before")
    @classmethod
    def _string_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k).lower() if isinstance(k, bool) else str(k): v for k, v in value.items()}
        return value


class Step(_Frozen):
    """One step: exactly one of ``action``, ``parallel`` (steps that run together) or ``branch``."""

    name: str
    description: str = ""
    action: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    parallel: tuple[Step, ...] | None = None
    branch: Branch | None = None
    max_attempts: int = Field(1, ge=1, le=100, alias="maxAttempts")
    timeout_seconds: float | None = Field(None, gt=0, le=7 * 24 * 3600, alias="timeoutSeconds")
    retry_delay_seconds: float = Field(0.0, ge=0, le=3600, alias="retryDelaySeconds")
    on_failure: str = Field("Abort", alias="onFailure")
    next_step: str | None = Field(None, alias="nextStep")
    is_end: bool = Field(False, alias="isEnd")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"{value!r} is not a step name (letters, digits, underscore; starts with a letter)")
        return value

    @field_validator("on_failure")
    @classmethod
    def _on_failure(cls, value: Any) -> str:
        return parse_on_failure(value)

    @field_validator("outputs")
    @classmethod
    def _outputs(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not NAME.match(name):
                raise ValueError(f"{name!r} is not an output name (letters, digits, underscore)")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in ("action", "parallel", "branch") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"step {self.name!r} needs exactly one of action, parallel or branch"
                             + (f" (has {', '.join(kinds)})" if kinds else ""))
        if self.action is None and (self.inputs or self.outputs):
            raise ValueError(f"step {self.name!r}: inputs and outputs belong to action steps")
        if self.branch is not None and (self.next_step or self.is_end):
            raise ValueError(f"step {self.name!r}: a branch chooses the next step itself (no nextStep or isEnd)")
        if self.is_end and self.next_step:
            raise ValueError(f"step {self.name!r}: isEnd and nextStep contradict each other")
        return self

    @property
    def failure_target(self) -> str | None:
        return OnFailure(self.on_failure).target


class Recovery(_Frozen):
    """Measure the recovery time: from the execution's start to the first good probe after step ``after``. With
    ``writer`` (a region, usually a template over the parameters), a probe counts only if that region's database
    committed its write; with ``notServedBy``, only if another region served it. Both are rendered when the
    execution starts."""

    probe: str
    after: str | None = None
    writer: str | None = None
    not_served_by: str | None = Field(None, alias="notServedBy")
    interval_seconds: float = Field(0.2, gt=0, le=60, alias="intervalSeconds")
    give_up_seconds: float = Field(1800, gt=0, le=7 * 24 * 3600, alias="giveUpSeconds")


class Runbook(_Frozen):
    name: str
    description: str = ""
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    steps: tuple[Step, ...] = Field(min_length=1)
    outputs: dict[str, Any] = Field(default_factory=dict)
    recovery: Recovery | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not RUNBOOK_NAME.match(value):
            raise ValueError(f"{value!r} is not a runbook name (letters, digits, '_' and '-')")
        return value

    @field_validator("parameters")
    @classmethod
    def _param_names(cls, value: dict[str, Parameter]) -> dict[str, Parameter]:
        for name in value:
            if not NAME.match(name):
                raise ValueError(f"{name!r} is not a parameter name (letters, digits, underscore)")
        return value

    def step(self, name: str) -> Step:
        """A top-level step or a parallel child, by name."""
        for step in self.steps:
            if step.name == name:
                return step
            for child in step.parallel or ():
                if child.name == name:
                    return child
        raise KeyError(name)

    def index(self, name: str) -> int:
        return [s.name for s in self.steps].index(name)

    def all_steps(self) -> list[Step]:
        found: list[Step] = []
        for step in self.steps:
            found.append(step)
            found.extend(step.parallel or ())
        return found

    def action_steps(self) -> list[Step]:
        return [s for s in self.all_steps() if s.action is not None]
