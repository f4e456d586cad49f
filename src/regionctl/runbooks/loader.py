"""Load runbook documents: YAML -> model -> checks, refused as a whole with every problem located.

``RunbookCatalog`` finds runbooks by name in the bundled ``library/`` and in extra directories (a deployment's
own runbooks), later directories overriding earlier ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from regionctl.errors import InputError, NotFoundError
from regionctl.runbooks.actions.base import ActionRegistry, CheckEnv
from regionctl.runbooks.model import Runbook
from regionctl.runbooks.validate import validate
from regionctl.runbooks.yamlsrc import LineMap, Problem, YamlSyntaxError, parse

LIBRARY = Path(__file__).parent / "library"


class DocumentError(InputError):
    """A runbook document refused at load; ``problems`` lists each one with file, line and field."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        head = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''} in runbook"
        super().__init__(head + ":\n  " + "\n  ".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Document:
    """A loaded, valid runbook and the text it came from (journaled with each execution)."""

    runbook: Runbook
    source: str
    file: str


def load_text(text: str, file: str, registry: ActionRegistry, env: CheckEnv | None = None,
              name: str | None = None) -> Document:
    """Parse and check one document; raises DocumentError listing every problem found."""
    env = env or CheckEnv()
    try:
        data, lines = parse(text)
    except YamlSyntaxError as exc:
        raise DocumentError([Problem(file, exc.line, "", f"invalid YAML: {exc.message}")]) from None
    if not isinstance(data, dict):
        raise DocumentError([Problem(file, 1, "", "a runbook is a mapping with description, parameters, steps")])
    data = dict(data)
    data.setdefault("name", name or Path(file).stem)
    try:
        runbook = Runbook.model_validate(data)
    except ValidationError as exc:
        raise DocumentError(_model_problems(exc, data, lines, file)) from None
    found = validate(runbook, registry, env)
    if found:
        problems = [Problem(file, lines.line(path), field_name(path, data), msg) for path, msg in found]
        raise DocumentError(sorted(problems, key=lambda p: (p.line or 0, p.field)))
    return Document(runbook=runbook, source=text, file=file)


def load_file(path: Path, registry: ActionRegistry, env: CheckEnv | None = None) -> Document:
    try:
        text = path.read_text()
    except OSError as exc:
        raise NotFoundError(f"cannot read runbook {path}: {exc.strerror}") from None
    return load_text(text, str(path), registry, env)


def _model_problems(exc: ValidationError, data: Any, lines: LineMap, file: str) -> list[Problem]:
    problems = []
    errors = exc.errors()
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "too_short" and any(len(e["loc"]) > len(loc) and tuple(e["loc"][:len(loc)]) == loc
                                              for e in errors):
            continue  # "no items after validation" only because an item was invalid: that error says it
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        elif err["type"] == "missing":
            message = f"missing field {loc[-1]!r}"
        loc = _strip_union_tags(loc)
        problems.append(Problem(file, lines.line(loc), field_name(loc, data), message))
    return problems


def _strip_union_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """pydantic inserts the union member's type name into locations (``str``, ``int``...); drop it."""
    return tuple(p for p in loc if not (isinstance(p, str) and p in {"str", "int", "float", "bool"}))


def field_name(path: Sequence[str | int], data: Any) -> str:
    """``steps[2].inputs.url`` written as ``steps.WaitHealthy.inputs.url`` when the step has a name."""
    parts: list[str] = []
    node = data
    for key in path:
        if isinstance(key, int):
            item = node[key] if isinstance(node, list) and key < len(node) else None
            label = item.get("name") if isinstance(item, dict) else None
            if isinstance(label, str) and parts and parts[-1] in ("steps", "parallel"):
                parts.append(label)
            else:
                parts[-1:] = [f"{parts[-1] if parts else ''}[{key}]"]
            node = item
        else:
            parts.append(str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return ".".join(parts)


def first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    head, dot, _rest = flat.partition(". ")
    return head + ("." if dot else "")


class RunbookCatalog:
    """Runbooks by name: the bundled library plus any extra directories (later ones win)."""

    def __init__(self, registry: ActionRegistry, dirs: Iterable[Path] = (LIBRARY,),
                 env: CheckEnv | None = None) -> None:
        self.registry = registry
        self.dirs = [Path(d) for d in dirs]
        base = env or CheckEnv()
        self.env = CheckEnv(resolve_runbook=self._resolve_plain, functions=base.functions, probes=base.probes)
        self._cache: dict[tuple[str, Path], tuple[tuple[int, int], Document]] = {}

    def _load(self, kind: str, path: Path, env: CheckEnv) -> Document:
        """Parsed once per file version (runbooks start often; parsing is the slow part)."""
        try:
            stat = path.stat()
        except OSError as exc:
            raise NotFoundError(f"cannot read runbook {path}: {exc.strerror}") from None
        version = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get((kind, path))
        if cached is not None and cached[0] == version:
            return cached[1]
        doc = load_file(path, self.registry, env)
        self._cache[(kind, path)] = (version, doc)
        return doc

    def files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for directory in self.dirs:
            if directory.is_dir():
                for path in sorted(directory.glob("*.yaml")):
                    found[path.stem] = path
        return found

    def names(self) -> list[str]:
        return sorted(self.files())

    def get(self, name: str) -> Document:
        path = self.files().get(name)
        if path is None:
            known = ", ".join(self.names()) or "none"
            raise NotFoundError(f"no runbook {name!r} (known: {known})")
        return self._load("full", path, self.env)

    def _resolve_plain(self, name: str) -> Runbook:
        """For nested-runbook checks: the child's model, checked without recursing into its own children."""
        path = self.files().get(name)
        if path is None:
            raise NotFoundError(f"no runbook {name!r} (known: {', '.join(self.names()) or 'none'})")
        plain = CheckEnv(functions=self.env.functions, probes=self.env.probes)
        return self._load("plain", path, plain).runbook

    def load_text(self, text: str, file: str, name: str | None = None) -> Document:
        return load_text(text, file, self.registry, self.env, name=name)

    def summaries(self) -> list[Mapping[str, Any]]:
        rows: list[Mapping[str, Any]] = []
        for name in self.names():
            try:
                rb = self.get(name).runbook
                rows.append({"name": name, "description": first_sentence(rb.description),
                             "parameters": ", ".join(rb.parameters), "valid": True})
            except InputError as exc:
                rows.append({"name": name, "description": str(exc).splitlines()[0], "parameters": "",
                             "valid": False})
        return rows
