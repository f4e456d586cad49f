"""test_decoding's tuple printer re-implemented (contrib/test_decoding/test_decoding.c: tuple_to_stringinfo,
print_literal), to generate lines for parser round trips."""

from __future__ import annotations

import re

from regionctl.reconcile.testdecoding import UNCHANGED_TOAST

UNQUOTED = {"smallint", "integer", "bigint", "oid", "real", "double precision", "numeric"}


def quote_identifier(name: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def literal(type_name: str, value: str) -> str:
    if type_name in UNQUOTED:
        return value
    if type_name in ("bit", "bit varying"):
        return f"B'{value}'"
    if type_name == "boolean":
        return "true" if value in ("t", "true") else "false"
    return "'" + value.replace("'", "''") + "'"


def tuple_text(columns: list[tuple[str, str, str | None | object]]) -> str:
    parts = []
    for name, type_name, value in columns:
        if value is None:
            shown = "null"
        elif value is UNCHANGED:
            shown = UNCHANGED_TOAST
        else:
            shown = literal(type_name, str(value))
        parts.append(f"{quote_identifier(name)}[{type_name}]:{shown}")
    return " ".join(parts)


UNCHANGED = object()
