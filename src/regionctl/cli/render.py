"""Turn command results (dataclasses, dicts, lists) into a Rich table or JSON; commands never print directly."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regionctl.errors import InputError
from regionctl.jsonable import to_jsonable

FORMATS = ("table", "json")
FormatOption = typer.Option("table", "--format", "-f", help="table or json")
console = Console()
err_console = Console(stderr=True)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def rows_table(rows: Sequence[Mapping[str, Any]], title: str | None = None) -> Table:
    """A table whose columns are the keys of the first row."""
    table = Table(title=title, show_lines=False)
    columns = list(rows[0].keys()) if rows else []
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else escape(str(row.get(c))) for c in columns))
    return table


def emit(result: Any, fmt: str, table: Callable[[Any], Any] | None = None) -> None:
    """Print ``result`` as JSON, or as the renderable ``table(result)`` builds (default: key/value rows)."""
    check_format(fmt)
    data = to_jsonable(result)
    if fmt == "json":
        print(json.dumps(data, indent=2, sort_keys=False))
        return
    if table is not None:
        console.print(table(result))
    elif isinstance(data, list) and data and isinstance(data[0], dict):
        console.print(rows_table(data))
    elif isinstance(data, dict):
        console.print(rows_table([{"field": k, "value": _short(v)} for k, v in data.items()]))
    else:
        console.print(data)


def _short(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
