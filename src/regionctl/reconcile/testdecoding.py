"""Parse test_decoding's text output into row changes, robustly.

test_decoding prints one line per change::

    table public."Weird T": UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 "a b"[text]:'it''s'
    table public.t: DELETE: id[bigint]:7
    table public.t: DELETE: (no-tuple-data)
    table public.a, public.b: TRUNCATE: restart_seqs cascade
    COMMIT 754 (at 2026-11-29 15:54:06.673158+00)

Identifiers are quoted only when needed (``""`` inside quotes), type names come from ``format_type_be`` (no
typmod; arrays end in ``[]``), and values are: ``null``; ``unchanged-toast-datum``; numbers and NaN/Infinity
unquoted; ``true``/``false``; bit strings as ``B'0101'``; everything else single-quoted with ``''`` for a quote
(newlines and backslashes printed raw). Values come back as the column's text output (what ``col::text``
returns) so they compare with rows read over SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from regionctl.errors import InputError

UNCHANGED_TOAST = "unchanged-toast-datum"
NO_TUPLE = "(no-tuple-data)"

_IDENT = r'"(?:[^"]|"")*"|[^\s"\[.,:]+'
_COLUMN = re.compile(  # loops unrolled ("normal* (special normal*)*"): this runs once per decoded column
    r'(?P<name>"[^"]*(?:""[^"]*)*"|[^\s"\[]+)'  # column name, quoted when it needs to be
    r'\[(?P<type>[^"\]]*(?:(?:"[^"]*(?:""[^"]*)*"|\](?!:))[^"\]]*)*)\]:'  # [type]: where the type may end in []
    r"(?P<value>'[^']*(?:''[^']*)*'(?=\s|$)|B'[01]*'(?=\s|$)|(?!B')[^\s']\S*)",  # quoted, bits, or bare
)
_SIMPLE_HEAD = re.compile(r"table ([a-z_][a-z0-9_$]*\.[a-z_][a-z0-9_$]*): (INSERT|UPDATE|DELETE): ")
_KINDS = {"INSERT": "insert", "UPDATE": "update", "DELETE": "delete"}
_COLUMNS = re.compile(_COLUMN.pattern + r"(?: |$)")  # findall: every column in one C call (see parse_tuple)
# fullmatch: findall skips nothing. Atomic per column: a failing line must not retry the earlier columns'
# alternatives (quoted type names make that exponential).
_TUPLE = re.compile("(?>" + re.sub(r"\(\?P<\w+>", "(?:", _COLUMNS.pattern) + ")*")
_TABLE = re.compile(rf"(?P<schema>{_IDENT})\.(?P<rel>{_IDENT})")
_ACTION = re.compile(r": (INSERT|UPDATE|DELETE|TRUNCATE): ")
_COMMIT = re.compile(r"COMMIT(?: (?P<xid>\d+))?(?: \(at (?P<at>[^)]+)\))?$")
_BEGIN = re.compile(r"BEGIN(?: (?P<xid>\d+))?$")


@dataclass(slots=True)  # one per decoded row: plain slots build ~6x faster than frozen ones
class DecodedChange:
    """One change as decoded: ``new`` is the new tuple, ``old`` the old key (or old row with REPLICA IDENTITY
    FULL; ``old_full`` says which). ``tables`` is set for TRUNCATE, which names several tables."""

    table: str
    kind: str  # insert | update | delete | truncate
    new: dict[str, str | None] | None = None
    old: dict[str, str | None] | None = None
    old_full: bool = False
    types: dict[str, str] = field(default_factory=dict)
    unchanged: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    flags: str = ""
    note: str | None = None  # set by the fallbacks (e.g. values superseded by a later lost change)
    action: str = "apply"  # apply | covered (a later change carries its effect) | manual (cannot be replayed)


@dataclass(frozen=True, slots=True)
class Commit:
    xid: int | None
    at: str | None  # ISO 8601


def unquote_ident(text: str) -> str:
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return text[1:-1].replace('""', '"')
    return text


_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


def quote_ident(name: str) -> str:
    """PostgreSQL's quote_identifier for display and reversible table names (keywords are not tracked:
    only names that would not survive unquoted get quotes)."""
    if _PLAIN.fullmatch(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, rel: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(rel)}"


def split_qualified(name: str) -> tuple[str, str]:
    """``public."Weird T"`` -> ("public", "Weird T")."""
    match = _TABLE.fullmatch(name)
    if match is None:
        raise InputError(f"{name!r} is not a schema-qualified table name")
    return unquote_ident(match["schema"]), unquote_ident(match["rel"])


@lru_cache(maxsize=4096)
def normalise_table(name: str) -> str:
    """One spelling per table, so names from decoding, catalogs and config compare equal."""
    schema, rel = split_qualified(name)
    return qualified(schema, rel)


def parse_value(raw: str) -> str | None:
    if raw == "null":
        return None
    if raw.startswith("'"):
        return raw[1:-1].replace("''", "'")
    if raw.startswith("B'"):
        return raw[2:-1]
    return raw  # numbers, NaN, Infinity, true/false: already the text output


def parse_tuple(text: str, start: int = 0, stop_at_new_tuple: bool = False
                ) -> tuple[dict[str, str | None], dict[str, str], list[str], int]:
    """Parse ``name[type]:value`` pairs from ``start``; return values, types, unchanged columns, end offset.

    Written for speed (it runs once per decoded row): every column in one regex call when the line allows it,
    else one match per column; either way the values are decoded by ``_decode``.
    """
    if not stop_at_new_tuple:
        fast = _parse_tuple_fast(text, start)
        if fast is not None:
            return fast
    items: list[tuple[str, str, str]] = []
    pos, end = start, len(text)
    match = _COLUMN.match
    while pos < end:
        if stop_at_new_tuple and text.startswith("new-tuple: ", pos):
            break
        found = match(text, pos)
        if found is None:
            raise InputError(f"cannot parse test_decoding column at offset {pos}: {text[pos:pos + 60]!r}")
        name, type_name, raw = found.group(1, 2, 3)
        items.append((name, type_name, raw))
        pos = found.end()
        if pos < end:
            if text[pos] != " ":
                raise InputError(f"unexpected {text[pos:pos + 20]!r} after a value at offset {pos}")
            pos += 1
    return (*_decode(items), pos)


def _parse_tuple_fast(text: str, start: int
                      ) -> tuple[dict[str, str | None], dict[str, str], list[str], int] | None:
    """All columns at once; None (use the careful scanner) unless the matches tile the text exactly."""
    if _TUPLE.fullmatch(text, start) is None:  # findall would skip something: the careful scanner says what
        return None
    return (*_decode(_COLUMNS.findall(text, start)), len(text))


def _decode(items: list[tuple[str, str, str]]) -> tuple[dict[str, str | None], dict[str, str], list[str]]:
    """(name, type, raw value) triples as values, types and the unchanged-TOAST columns."""
    values: dict[str, str | None] = {}
    types: dict[str, str] = {}
    unchanged: list[str] = []
    for name, type_name, raw in items:
        if name[0] == '"':
            name = name[1:-1].replace('""', '"')
        types[name] = type_name
        first = raw[0]
        if first == "'":
            values[name] = raw[1:-1].replace("''", "'")
        elif raw == "null":
            values[name] = None
        elif raw == UNCHANGED_TOAST:
            unchanged.append(name)
        elif first == "B" and raw[1] == "'":
            values[name] = raw[2:-1]
        else:
            values[name] = raw  # numbers, NaN, Infinity, true/false: already the text output
    return values, types, unchanged


# Values as test_decoding prints each type (print_literal): numbers bare, booleans bare, bit strings as B'..'
# (left to the general scanner), every other type quoted. "null" is NULL; a bare value never starts with n or u
# (NaN and Infinity are capitalised), so an unchanged TOAST datum never passes for a value.
_BARE_TYPES = frozenset({"smallint", "integer", "bigint", "oid", "real", "double precision", "numeric"})
_VALUE_PATTERNS = {"boolean": r"(?:null|(true|false))", **{t: r"(?:null|([^\s'nu]\S*))" for t in _BARE_TYPES}}
_QUOTED_VALUE = r"(?:null|'([^']*(?:''[^']*)*)')"
_SHAPES_MAX = 1024


@dataclass(frozen=True, slots=True)
class _Shape:
    """The exact column list a table's lines of one kind last had: one regex match decodes a whole line."""

    table: str
    kind: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    types: dict[str, str]  # shared by every change of this shape: read, never written


_shapes: dict[str, _Shape] = {}  # "table public.t: INSERT: " -> its shape


def _learn_shape(line: str, head: str, change: DecodedChange) -> None:
    """Remember the column list of a line the general scanner parsed (not for bit strings or TOAST gaps).

    Names are matched as the line prints them: test_decoding also quotes keywords (``"order"``), which
    ``quote_ident`` does not know; a wrong guess only means the shape never fits, never a wrong value.
    """
    values = change.old if change.kind == "delete" else change.new
    if values is None or change.unchanged or change.old is not None and change.kind != "delete" or any(
            t in ("bit", "bit varying") for t in change.types.values()):
        return
    parts = []
    for name, type_name in change.types.items():
        printed = quote_ident(name)
        if f"{printed}[{type_name}]:" not in line:
            printed = '"' + name.replace('"', '""') + '"'
        parts.append(re.escape(f"{printed}[{type_name}]:") + _VALUE_PATTERNS.get(type_name, _QUOTED_VALUE))
    if len(_shapes) >= _SHAPES_MAX:
        _shapes.clear()
    _shapes[head] = _Shape(change.table, change.kind, re.compile(" ".join(parts)), tuple(change.types),
                           change.types)


def _shaped(line: str) -> DecodedChange | None:
    """The line decoded by its table's known shape; None when it has none or the line does not fit it.

    The head is cut at the second ": " without a regex: only heads of plain table names are ever learned, so a
    quoted name whose text holds ": " finds no shape and goes to the general scanner.
    """
    end = line.find(": ", line.find(": ", 6) + 2) + 2
    shape = _shapes.get(line[:end])
    if shape is None:
        return None
    match = shape.pattern.fullmatch(line, end)
    if match is None:
        return None
    values = dict(zip(shape.names, match.groups(), strict=True))
    if "''" in line:
        values = {n: v.replace("''", "'") if v is not None else None for n, v in values.items()}
    if shape.kind == "delete":
        return DecodedChange(shape.table, "delete", None, values, False, shape.types)
    return DecodedChange(shape.table, shape.kind, values, None, False, shape.types)


def parse_change(line: str) -> DecodedChange | None:
    """A ``table ...`` line as a change; None for lines that are not row changes (messages).

    Lines of plain-named tables are first tried against the shape their table's previous line of the same kind
    had (the common case: one regex match per line); any line that does not fit goes through the general
    scanner, which then teaches the shape for the next ones.
    """
    if not line.startswith("table "):
        return None
    shaped = _shaped(line)
    if shaped is not None:
        return shaped
    simple = _SIMPLE_HEAD.match(line)  # plain names need no unquoting
    if simple is not None:
        change = _row_change(line, simple.group(1), _KINDS[simple.group(2)], line[simple.end():])
        _learn_shape(line, simple.group(0), change)
        return change
    action = _find_action(line)
    head, kind, rest = line[6:action.start()], action.group(1).lower(), line[action.end():]
    if kind == "truncate":
        tables = tuple(normalise_table(t) for t in _split_tables(head))
        return DecodedChange(table=tables[0], kind=kind, tables=tables, flags=rest.strip())
    return _row_change(line, normalise_table(head), kind, rest)


def _row_change(line: str, table: str, kind: str, rest: str) -> DecodedChange:
    if rest == NO_TUPLE:
        return DecodedChange(table=table, kind=kind)
    if kind == "update" and rest.startswith("old-key: "):
        old, old_types, _, pos = parse_tuple(rest, len("old-key: "), stop_at_new_tuple=True)
        if not rest.startswith("new-tuple: ", pos):
            raise InputError(f"UPDATE with old-key but no new-tuple: {line[:120]!r}")
        new, types, unchanged, _ = parse_tuple(rest, pos + len("new-tuple: "))
        full = set(old_types) == set(types)
        return DecodedChange(table, kind, new=new, old=old, old_full=full, types={**old_types, **types},
                             unchanged=tuple(unchanged))
    values, types, unchanged, _ = parse_tuple(rest)
    if kind == "delete":
        return DecodedChange(table, kind, old=values, types=types, unchanged=tuple(unchanged))
    return DecodedChange(table, kind, new=values, types=types, unchanged=tuple(unchanged))


def _find_action(line: str) -> re.Match[str]:
    """The ``: INSERT: `` after the table name, skipping quoted identifiers that might contain it."""
    pos = 6
    while True:
        match = _TABLE.match(line, pos)
        if match is None:
            raise InputError(f"cannot parse test_decoding table name: {line[:120]!r}")
        pos = match.end()
        if line.startswith(", ", pos):
            pos += 2
            continue
        action = _ACTION.match(line, pos)
        if action is None:
            raise InputError(f"no INSERT/UPDATE/DELETE/TRUNCATE after the table name: {line[:120]!r}")
        return action


def _split_tables(head: str) -> list[str]:
    return [m.group(0) for m in _TABLE.finditer(head)]


def parse_commit(line: str) -> Commit | None:
    if line.endswith(")") and line.startswith("COMMIT ") and " (at " in line:  # the usual shape, no regex
        xid, _, at = line[7:-1].partition(" (at ")
        if xid.isascii() and xid.isdigit():
            return Commit(int(xid), pg_time_iso(at))
    match = _COMMIT.match(line)
    if match is None:
        return None
    return Commit(int(match["xid"]) if match["xid"] else None, pg_time_iso(match["at"]) if match["at"] else None)


def parse_begin(line: str) -> int | None | bool:
    """The xid of a BEGIN line, None when it carries none, False when the line is not a BEGIN."""
    match = _BEGIN.match(line)
    if match is None:
        return False
    return int(match["xid"]) if match["xid"] else None


_PG_UTC = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\+00")


def pg_time_iso(text: str) -> str:
    """``2026-11-29 15:54:06.673158+00`` -> ``2026-11-29T15:54:06.673158+00:00`` (ISO 8601, full offset)."""
    if len(text) == 29 and text[10] == " " and text[19] == "." and text.endswith("+00"):  # all six digits
        return f"{text[:10]}T{text[11:26]}+00:00"
    text = text.strip()
    if _PG_UTC.fullmatch(text):  # our sessions print UTC: the common case, without a datetime round trip
        stamp = text[:-3].replace(" ", "T")
        if "." in stamp:  # PostgreSQL trims trailing zeros of the microseconds, isoformat() does not
            whole, fraction = stamp.split(".")
            stamp = f"{whole}.{fraction:0<6}"
        return stamp + "+00:00"
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text
