"""YAML to plain data while remembering where every value came from, so errors can name the file and line.

PyYAML's composer keeps a mark (line, column) on each node; we walk the node tree once, build plain dicts and
lists, and record ``path -> line`` (1-based) for every mapping key and sequence item. Anchors and aliases work,
duplicate keys are refused (PyYAML silently keeps the last one, which hides mistakes in a runbook).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document, located as precisely as we can."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass
class LineMap:
    """Where each value of a document starts; lookups fall back to the nearest enclosing value."""

    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int | None:
        for end in range(len(path), -1, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None


class YamlSyntaxError(ValueError):
    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def parse(text: str) -> tuple[Any, LineMap]:
    """Plain data and its line map; raises YamlSyntaxError with the line of the problem."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlSyntaxError(line, f"{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(None, str(exc)) from None
    lines = LineMap()
    if node is None:
        return None, lines
    data = _convert(node, (), lines, _constructor())
    return data, lines


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 30x faster


class _Loader(_Base):
    """SafeLoader (plain types only) with YAML 1.2 booleans: only true/false, so ``on:``, ``Off`` and ``yes`` stay
    strings (a routing state ``Off`` must not become ``False``)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _constructor() -> yaml.SafeLoader:
    """A pure-Python loader used only to construct scalars and flatten merges (no parsing)."""
    loader = yaml.SafeLoader("")
    loader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
    return loader


def _convert(node: yaml.Node, path: Path, lines: LineMap, loader: yaml.SafeLoader) -> Any:
    lines.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves ``<<: *anchor`` merges
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                raise YamlSyntaxError(key_node.start_mark.line + 1, f"a mapping key must be a plain value, not {key!r}")
            name = str(key)
            if name in result:
                raise YamlSyntaxError(key_node.start_mark.line + 1, f"duplicate key {name!r}")
            lines.lines[(*path, name)] = key_node.start_mark.line + 1
            result[name] = _convert(value_node, (*path, name), lines, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
