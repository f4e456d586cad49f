"""``{{ params.x }}`` and ``{{ steps.NAME.outputs.y }}``: the only way values flow between steps.

Deliberately tiny (no expressions, no loops) so a runbook can be checked before it runs: every reference is a
dotted path, optionally followed by filters (``{{ params.region | other_region }}``). A string that is exactly one
template keeps the referenced value's type (an integer stays an integer); a template inside a longer string is
rendered with ``str``.

Paths:
    params.NAME                      a parameter of the execution
    steps.STEP.outputs.NAME[.key]    an output of an earlier step (keys descend into dicts)
    execution.id | execution.runbook the execution itself
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from regionctl.errors import InputError

TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*$")
EXECUTION_FIELDS = ("id", "runbook")


class TemplateError(InputError):
    """A template that cannot be rendered (unknown reference, bad filter); names the template."""


@dataclass(frozen=True)
class Reference:
    """One ``{{ ... }}`` found in a value: its dotted path and filters."""

    text: str
    path: tuple[str, ...]
    filters: tuple[str, ...]

    @property
    def root(self) -> str:
        return self.path[0]


@dataclass(frozen=True)
class RenderContext:
    """Everything a template may read; ``regions`` feeds the ``other_region`` filter."""

    params: Mapping[str, Any] = field(default_factory=dict)
    steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    execution: Mapping[str, Any] = field(default_factory=dict)
    regions: Sequence[str] = ()


def _other_region(value: Any, ctx: RenderContext) -> Any:
    regions = list(ctx.regions)
    if value not in regions or len(regions) != 2:
        raise TemplateError(f"other_region: {value!r} is not one of the two regions {', '.join(regions) or '(none)'}")
    return regions[1 - regions.index(value)]


FILTERS: dict[str, Callable[[Any, RenderContext], Any]] = {
    "other_region": _other_region,
    "json": lambda value, _ctx: json.dumps(value, sort_keys=True),
    "string": lambda value, _ctx: str(value),
    "lower": lambda value, _ctx: str(value).lower(),
    "upper": lambda value, _ctx: str(value).upper(),
}


def parse_reference(expr: str) -> Reference:
    """Split ``path | filter | filter``; raises TemplateError when the path or a filter is malformed."""
    parts = [p.strip() for p in expr.split("|")]
    path_text, filters = parts[0], tuple(parts[1:])
    if not _PATH.match(path_text):
        raise TemplateError(f"'{{{{ {expr} }}}}' is not a dotted reference like params.region")
    for name in filters:
        if name not in FILTERS:
            raise TemplateError(f"'{{{{ {expr} }}}}' uses unknown filter {name!r}; known: {', '.join(FILTERS)}")
    return Reference(text=expr, path=tuple(path_text.split(".")), filters=filters)


def references(value: Any) -> Iterator[tuple[tuple[str | int, ...], Reference]]:
    """Every template reference inside ``value`` with the path (keys, indexes) where it was found."""
    yield from _walk_refs(value, ())


def _walk_refs(value: Any, at: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Reference]]:
    if isinstance(value, str):
        for match in TEMPLATE.finditer(value):
            yield at, parse_reference(match.group(1))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk_refs(item, (*at, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk_refs(item, (*at, i))


def is_whole_template(value: Any) -> bool:
    return isinstance(value, str) and TEMPLATE.fullmatch(value.strip()) is not None


def render(value: Any, ctx: RenderContext) -> Any:
    """``value`` with every template replaced; dicts and lists are rendered recursively."""
    if isinstance(value, str):
        whole = TEMPLATE.fullmatch(value.strip())
        if whole is not None:
            return resolve(parse_reference(whole.group(1)), ctx)
        return TEMPLATE.sub(lambda m: _as_text(resolve(parse_reference(m.group(1)), ctx)), value)
    if isinstance(value, Mapping):
        return {key: render(item, ctx) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, ctx) for item in value]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def resolve(ref: Reference, ctx: RenderContext) -> Any:
    value = _lookup(ref, ctx)
    for name in ref.filters:
        value = FILTERS[name](value, ctx)
    return value


def _lookup(ref: Reference, ctx: RenderContext) -> Any:
    path = ref.path
    if path[0] == "params" and len(path) == 2:
        if path[1] not in ctx.params:
            raise TemplateError(f"'{{{{ {ref.text} }}}}': no parameter {path[1]!r}")
        return ctx.params[path[1]]
    if path[0] == "execution" and len(path) == 2 and path[1] in EXECUTION_FIELDS:
        return ctx.execution.get(path[1])
    if path[0] == "steps" and len(path) >= 4 and path[2] == "outputs":
        step = path[1]
        if step not in ctx.steps:
            raise TemplateError(f"'{{{{ {ref.text} }}}}': step {step!r} has not produced outputs (not run, skipped "
                                "or failed)")
        value: Any = ctx.steps[step]
        for key in path[3:]:
            if not isinstance(value, Mapping) or key not in value:
                raise TemplateError(f"'{{{{ {ref.text} }}}}': step {step!r} has no output {'.'.join(path[3:])!r}")
            value = value[key]
        return value
    raise TemplateError(f"'{{{{ {ref.text} }}}}' must start with params.NAME, steps.STEP.outputs.NAME or "
                        f"execution.{{{'|'.join(EXECUTION_FIELDS)}}}")
