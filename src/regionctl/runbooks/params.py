"""Turn the parameters an operator gives (often strings from a command line) into typed values.

Defaults may be templates over other parameters (``"{{ params.region | other_region }}"``), resolved in
dependency order, so a runbook needs no region name written in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from regionctl.config import REGION_PATTERN
from regionctl.errors import InputError
from regionctl.runbooks.model import Parameter, ParamType, Runbook
from regionctl.runbooks.templates import RenderContext, TemplateError, is_whole_template, references, render

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce(name: str, param: Parameter, value: Any, regions: Sequence[str] | None) -> Any:
    """``value`` as the parameter's type; InputError naming the parameter when it does not fit."""
    kind = param.type
    try:
        result = _convert(kind, value)
    except (TypeError, ValueError):
        raise InputError(f"parameter {name}: {value!r} is not a valid {kind.value}") from None
    if kind is ParamType.REGION:
        if regions is not None and result not in regions:
            raise InputError(f"parameter {name}: unknown region {result!r}; this deployment has "
                             f"{', '.join(regions)}")
        if regions is None and not REGION_PATTERN.match(result):
            raise InputError(f"parameter {name}: {result!r} is not a region name like us-east-1")
    if param.choices is not None:
        allowed = [_convert(kind if kind is not ParamType.CHOICE else ParamType.STRING, c) for c in param.choices]
        if result not in allowed:
            raise InputError(f"parameter {name}: {value!r} is not one of {', '.join(map(str, allowed))}")
    return result


def _convert(kind: ParamType, value: Any) -> Any:
    if kind in (ParamType.STRING, ParamType.REGION, ParamType.CHOICE):
        if isinstance(value, bool):  # YAML 1.1 turns bare yes/no/on/off into booleans
            return "true" if value else "false"
        if not isinstance(value, (str, int, float)):
            raise TypeError
        return str(value)
    if kind is ParamType.INTEGER:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(value)
    if kind is ParamType.NUMBER:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError


def default_order(runbook: Runbook) -> list[str]:
    """Parameter names so that each templated default comes after the parameters it reads.

    Raises InputError on an unknown reference or a cycle between defaults.
    """
    needs: dict[str, set[str]] = {}
    for name, param in runbook.parameters.items():
        deps: set[str] = set()
        for _at, ref in references(param.default):
            if ref.root != "params" or len(ref.path) != 2:
                raise InputError(f"parameter {name}: a default may only read other parameters, not {ref.text!r}")
            if ref.path[1] not in runbook.parameters:
                raise InputError(f"parameter {name}: default reads undeclared parameter {ref.path[1]!r}")
            deps.add(ref.path[1])
        needs[name] = deps
    ordered: list[str] = []
    while len(ordered) < len(needs):
        ready = [n for n, deps in needs.items() if n not in ordered and deps <= set(ordered)]
        if not ready:
            stuck = sorted(n for n in needs if n not in ordered)
            raise InputError(f"parameters {', '.join(stuck)}: their defaults depend on each other in a cycle")
        ordered.extend(ready)
    return ordered


def resolve_parameters(runbook: Runbook, given: Mapping[str, Any], regions: Sequence[str]) -> dict[str, Any]:
    """The full typed parameter set of an execution, or InputError naming each unknown / missing / bad one."""
    unknown = sorted(set(given) - set(runbook.parameters))
    if unknown:
        declared = ", ".join(runbook.parameters) or "none"
        raise InputError(f"runbook {runbook.name} has no parameter {', '.join(unknown)} (declared: {declared})")
    values: dict[str, Any] = {}
    for name in default_order(runbook):
        param = runbook.parameters[name]
        if name in given:
            values[name] = coerce(name, param, given[name], regions)
        elif param.required:
            raise InputError(f"runbook {runbook.name} needs parameter {name} ({param.type.value}"
                             f"{': ' + param.description if param.description else ''})")
        else:
            default = param.default
            if is_whole_template(default) or isinstance(default, str) and "{{" in default:
                try:
                    default = render(default, RenderContext(params=values, regions=regions))
                except TemplateError as exc:
                    raise InputError(f"parameter {name}: default: {exc}") from None
            values[name] = None if default is None else coerce(name, param, default, regions)
    return values
