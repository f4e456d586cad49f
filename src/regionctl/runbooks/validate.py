"""Checks that need more than the document's shape: names that must exist, templates that must resolve, inputs
that must fit the action's schema, and flows that must end.

Every check returns ``(path, message)`` pairs; the loader turns paths into file:line and a readable field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from regionctl.errors import InputError
from regionctl.runbooks.actions.base import Action, ActionRegistry, CheckEnv
from regionctl.runbooks.model import Parameter, ParamType, Runbook, Step
from regionctl.runbooks.params import coerce, default_order
from regionctl.runbooks.templates import (
    EXECUTION_FIELDS,
    TEMPLATE,
    Reference,
    TemplateError,
    is_whole_template,
    parse_reference,
    references,
)

Path = tuple[str | int, ...]
Found = list[tuple[Path, str]]
TYPE_ERRORS = ("_type", "_parsing", "literal_error", "enum")


def validate(runbook: Runbook, registry: ActionRegistry, env: CheckEnv) -> Found:
    found: Found = []
    found += _check_names(runbook)
    found += _check_parameters(runbook)
    found += _check_flow_targets(runbook)
    for path, step in _steps_with_paths(runbook):
        found += _check_step(runbook, step, path, registry, env)
    found += _check_templates(runbook, (("outputs",), runbook.outputs), None)
    found += _check_recovery(runbook, env)
    found += _check_cycles(runbook)
    return found


def _steps_with_paths(runbook: Runbook) -> Iterator[tuple[Path, Step]]:
    for i, step in enumerate(runbook.steps):
        yield ("steps", i), step
        for j, child in enumerate(step.parallel or ()):
            yield ("steps", i, "parallel", j), child


def _check_names(runbook: Runbook) -> Found:
    seen: dict[str, Path] = {}
    found: Found = []
    for path, step in _steps_with_paths(runbook):
        if step.name in seen:
            found.append(((*path, "name"), f"step name {step.name!r} is used twice"))
        seen.setdefault(step.name, path)
    return found


def _check_parameters(runbook: Runbook) -> Found:
    try:
        default_order(runbook)
    except InputError as exc:
        return [(("parameters",), str(exc))]
    found: Found = []
    for name, param in runbook.parameters.items():
        if param.required or param.default is None or (isinstance(param.default, str) and "{{" in param.default):
            continue
        try:
            coerce(name, param, param.default, None)
        except InputError as exc:
            found.append((("parameters", name, "default"), str(exc)))
    return found


def _check_flow_targets(runbook: Runbook) -> Found:
    top = {s.name for s in runbook.steps}
    found: Found = []
    for i, step in enumerate(runbook.steps):
        at: Path = ("steps", i)
        targets: list[tuple[Path, str]] = []
        if step.next_step:
            targets.append(((*at, "nextStep"), step.next_step))
        if step.failure_target:
            targets.append(((*at, "onFailure"), step.failure_target))
        if step.branch is not None:
            targets += [((*at, "branch", "cases", k), v) for k, v in step.branch.cases.items()]
            if step.branch.default:
                targets.append(((*at, "branch", "default"), step.branch.default))
        for path, target in targets:
            if target not in top:
                found.append((path, f"unknown step {target!r}" + _nearest(target, top)))
        for j, child in enumerate(step.parallel or ()):
            found += _check_parallel_child(child, (*at, "parallel", j))
    return found


def _check_parallel_child(child: Step, at: Path) -> Found:
    found: Found = []
    if child.action is None:
        found.append((at, f"step {child.name!r} in a parallel block must run an action"))
    if child.next_step or child.is_end:
        found.append((at, f"step {child.name!r} in a parallel block cannot use nextStep or isEnd"))
    if child.failure_target:
        found.append(((*at, "onFailure"), "steps in a parallel block take Abort or Continue (the block jumps)"))
    return found


def _nearest(name: str, names: set[str]) -> str:
    close = [n for n in sorted(names) if n.lower() == name.lower() or n.lower().startswith(name.lower()[:4])]
    return f"; did you mean {close[0]!r}?" if close else f"; steps are {', '.join(sorted(names))}"


def _check_step(runbook: Runbook, step: Step, at: Path, registry: ActionRegistry, env: CheckEnv) -> Found:
    found: Found = []
    if step.branch is not None:
        found += _check_templates(runbook, ((*at, "branch", "on"), step.branch.on), step.name)
    if step.action is None:
        return found
    action = registry.get(step.action)
    if action is None:
        return [((*at, "action"), f"unknown action {step.action!r}; known: {', '.join(registry.names())}")]
    found += _check_templates(runbook, ((*at, "inputs"), step.inputs), step.name)
    found += _check_inputs(runbook, action, step, at)
    found += [((*at, "inputs", *field.split(".")), msg) for field, msg in action.check(step.inputs, env)]
    found += _check_outputs(action, step, at)
    return found


def _check_templates(runbook: Runbook, where: tuple[Path, Any], own_step: str | None) -> Found:
    at, value = where
    found: Found = []
    try:
        refs = list(references(value))
    except TemplateError as exc:
        return [(at, str(exc))]
    for sub, ref in refs:
        problem = _reference_problem(runbook, ref, own_step)
        if problem:
            found.append(((*at, *sub), problem))
    return found


def _reference_problem(runbook: Runbook, ref: Reference, own_step: str | None) -> str | None:
    path = ref.path
    if path[0] == "params":
        if len(path) != 2:
            return f"'{{{{ {ref.text} }}}}': write params.NAME"
        if path[1] not in runbook.parameters:
            declared = ", ".join(runbook.parameters) or "none"
            return f"'{{{{ {ref.text} }}}}': undeclared parameter {path[1]!r} (declared: {declared})"
        return None
    if path[0] == "execution":
        return None if len(path) == 2 and path[1] in EXECUTION_FIELDS else (
            f"'{{{{ {ref.text} }}}}': execution has {', '.join(EXECUTION_FIELDS)}")
    if path[0] == "steps":
        if len(path) < 4 or path[2] != "outputs":
            return f"'{{{{ {ref.text} }}}}': write steps.STEP.outputs.NAME"
        try:
            target = runbook.step(path[1])
        except KeyError:
            return f"'{{{{ {ref.text} }}}}': unknown step {path[1]!r}"
        if target.name == own_step:
            return f"'{{{{ {ref.text} }}}}': a step cannot read its own outputs"
        if path[3] not in target.outputs:
            declared = ", ".join(target.outputs) or "none"
            return f"'{{{{ {ref.text} }}}}': step {path[1]} declares no output {path[3]!r} (outputs: {declared})"
        return None
    return f"'{{{{ {ref.text} }}}}' must start with params., steps. or execution."


def _sample(runbook: Runbook, ref: Reference) -> tuple[bool, Any]:
    """A value of the referenced parameter's type, for checking input types before anything runs."""
    if ref.root != "params" or len(ref.path) != 2 or ref.filters:
        return False, None
    param: Parameter | None = runbook.parameters.get(ref.path[1])
    if param is None:
        return False, None
    if not param.required and param.default is not None and not (isinstance(param.default, str)
                                                                 and "{{" in param.default):
        return True, param.default
    samples = {ParamType.STRING: "text", ParamType.INTEGER: 1, ParamType.NUMBER: 1.5, ParamType.BOOLEAN: True,
               ParamType.REGION: "xx-sample-1", ParamType.CHOICE: (param.choices or ("text",))[0]}
    return True, samples[param.type]


def _substitute(runbook: Runbook, value: Any, at: Path, typed: dict[Path, str], untyped: set[Path]) -> Any:
    """``value`` with templates replaced by samples; records which paths hold typed / untyped stand-ins."""
    if isinstance(value, str) and "{{" in value:
        if is_whole_template(value):
            known, sample = _sample(runbook, parse_reference(TEMPLATE.fullmatch(value.strip()).group(1)))  # type: ignore[union-attr]
            if known:
                typed[at] = value.strip()
            else:
                untyped.add(at)
            return sample if known else "sample"
        typed[at] = value
        return "text"
    if isinstance(value, dict):
        return {k: _substitute(runbook, v, (*at, k), typed, untyped) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(runbook, v, (*at, i), typed, untyped) for i, v in enumerate(value)]
    return value


def _check_inputs(runbook: Runbook, action: Action, step: Step, at: Path) -> Found:
    typed: dict[Path, str] = {}
    untyped: set[Path] = set()
    try:
        candidate = _substitute(runbook, step.inputs, (), typed, untyped)
    except TemplateError:
        return []  # already reported by the template check
    try:
        action.Inputs.model_validate(candidate)
    except ValidationError as exc:
        found: Found = []
        for err in exc.errors():
            loc: Path = tuple(err["loc"])
            if _under(loc, untyped) or (_touches(loc, typed) and not err["type"].endswith(TYPE_ERRORS)):
                continue  # depends on a value only known at run time; checked then
            if err["type"] == "missing":
                message = f"{action.name} needs input {'.'.join(map(str, loc))!r}"
            elif err["type"] == "extra_forbidden":
                message = f"{action.name} has no input {'.'.join(map(str, loc))!r}; inputs: " + \
                    ", ".join(_field_names(action.Inputs))
            else:
                source = next((text for p, text in typed.items() if loc[: len(p)] == p), None)
                message = err["msg"].removeprefix("Value error, ") + (f" (from {source!r})" if source else "")
            found.append(((*at, "inputs", *loc), message))
        return found
    return []


def _under(loc: Path, paths: set[Path] | dict[Path, str]) -> bool:
    return any(loc[: len(p)] == p for p in paths)


def _touches(loc: Path, paths: dict[Path, str]) -> bool:
    """The error is at or around a templated value (a list validator sees the rendered item)."""
    return any(loc[: len(p)] == p or (loc and p[: len(loc)] == loc) for p in paths)


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.serialization_alias or f.alias or name for name, f in model.model_fields.items()]


def _check_outputs(action: Action, step: Step, at: Path) -> Found:
    fields = set(_field_names(action.Outputs))
    found: Found = []
    for name, selector in step.outputs.items():
        parts = selector.split(".")
        if parts[0] not in fields:
            found.append(((*at, "outputs", name), f"{action.name} has no result {parts[0]!r}; results: "
                          + ", ".join(sorted(fields))))
        elif len(parts) > 1 and parts[0] not in action.open_outputs:
            found.append(((*at, "outputs", name), f"{action.name} result {parts[0]!r} has no inner fields"))
    return found


def _check_recovery(runbook: Runbook, env: CheckEnv) -> Found:
    rec = runbook.recovery
    if rec is None:
        return []
    found: Found = []
    if rec.after is not None and rec.after not in {s.name for s in runbook.steps}:
        found.append((("recovery", "after"), f"unknown step {rec.after!r}"))
    if env.probes is not None and rec.probe not in env.probes:
        found.append((("recovery", "probe"), f"no probe {rec.probe!r} is bound"))
    return found


def successors(runbook: Runbook, index: int) -> list[str]:
    """Where a step goes when it succeeds (the flow an execution follows when nothing fails)."""
    step = runbook.steps[index]
    if step.branch is not None:
        return list(step.branch.cases.values()) + ([step.branch.default] if step.branch.default else [])
    if step.is_end:
        return []
    if step.next_step:
        return [step.next_step]
    return [runbook.steps[index + 1].name] if index + 1 < len(runbook.steps) else []


def _check_cycles(runbook: Runbook) -> Found:
    """A loop of steps with no branch in it never ends when every step succeeds."""
    names = [s.name for s in runbook.steps]
    if len(set(names)) != len(names):
        return []
    graph = {name: [t for t in successors(runbook, i) if t in names] for i, name in enumerate(names)}
    found: Found = []
    reported: set[frozenset[str]] = set()
    for start in names:
        cycle = _cycle_from(graph, start)
        if cycle is None or frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        if not any(runbook.steps[names.index(n)].branch is not None for n in cycle):
            where = ("steps", names.index(cycle[0]))
            found.append((where, "steps " + " -> ".join([*cycle, cycle[0]]) + " loop forever (no isEnd, no "
                          "branch out of the loop)"))
    return found


def _cycle_from(graph: dict[str, list[str]], start: str) -> list[str] | None:
    path: list[str] = []
    node: str | None = start
    while node is not None and node not in path:
        path.append(node)
        nexts = graph[node]
        node = nexts[0] if len(nexts) == 1 else None  # branches end the walk: they may leave the loop
    if node is None:
        return None
    return path[path.index(node):]
