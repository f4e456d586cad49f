"""The test_decoding parser: real lines, every value shape, and round trips of arbitrary values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regionctl.errors import InputError
from regionctl.reconcile.testdecoding import (
    UNCHANGED_TOAST,
    _shaped,
    normalise_table,
    parse_begin,
    parse_change,
    parse_commit,
    pg_time_iso,
    quote_ident,
    split_qualified,
)
from tests.unit.reconcile.printer import UNCHANGED, literal, quote_identifier, tuple_text

# Lines as PostgreSQL 18's test_decoding printed them (see the module docstring of testdecoding.py).
REAL_INSERT = (
    'table public."Weird T": INSERT: id[integer]:1 "a b"[text]:\'it\'\'s a\\b\nnew "line"\' '
    "arr[integer[]]:'{1,2,NULL}' tarr[text[]]:'{\"a b\",c''d,NULL}' b[boolean]:true bits[bit]:B'1010' "
    "n[numeric]:1.50 f[double precision]:NaN j[jsonb]:'{\"k\": \"v''\"}' "
    "ts[timestamp with time zone]:'2026-01-01 08:00:00+00' by[bytea]:'\\x00ff' vc[character varying]:null"
)


def test_a_real_insert_line_parses_to_text_output_values() -> None:
    change = parse_change(REAL_INSERT)
    assert change is not None and change.kind == "insert" and change.table == 'public."Weird T"'
    assert change.new == {
        "id": "1", "a b": 'it\'s a\\b\nnew "line"', "arr": "{1,2,NULL}", "tarr": '{"a b",c\'d,NULL}', "b": "true",
        "bits": "1010", "n": "1.50", "f": "NaN", "j": '{"k": "v\'"}', "ts": "2026-01-01 08:00:00+00",
        "by": "\\x00ff", "vc": None,
    }
    assert change.types["arr"] == "integer[]" and change.types["ts"] == "timestamp with time zone"


def test_update_with_a_changed_key_keeps_the_old_key_apart_from_the_new_tuple() -> None:
    change = parse_change("table public.t: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 v[text]:'x'")
    assert change is not None and change.kind == "update"
    assert change.old == {"id": "1"} and change.new == {"id": "2", "v": "x"} and not change.old_full


def test_replica_identity_full_gives_a_full_old_row() -> None:
    change = parse_change("table public.t: UPDATE: old-key: id[integer]:1 v[text]:'a' new-tuple: id[integer]:1 "
                          "v[text]:'b'")
    assert change is not None and change.old_full and change.old == {"id": "1", "v": "a"}


def test_deletes_without_identity_truncates_and_unchanged_toast() -> None:
    no_key = parse_change("table public.t2: DELETE: (no-tuple-data)")
    assert no_key is not None and no_key.kind == "delete" and no_key.old is None
    truncate = parse_change('table public.a, "My Schema"."B": TRUNCATE: restart_seqs cascade')
    assert truncate is not None and truncate.kind == "truncate"
    assert truncate.tables == ("public.a", '"My Schema"."B"') and truncate.flags == "restart_seqs cascade"
    toast = parse_change(f"table public.t: UPDATE: id[integer]:1 big[text]:{UNCHANGED_TOAST} v[text]:'x'")
    assert toast is not None and toast.unchanged == ("big",) and toast.new == {"id": "1", "v": "x"}


def test_transaction_lines_and_messages() -> None:
    assert parse_begin("BEGIN 754") == 754 and parse_begin("BEGIN") is None and parse_begin("table x") is False
    commit = parse_commit("COMMIT 754 (at 2026-11-29 15:54:06.673158+00)")
    assert commit is not None and commit.xid == 754 and commit.at == "2026-11-29T15:54:06.673158+00:00"
    assert parse_commit("COMMIT") is not None and parse_commit("COMMITTED") is None
    assert parse_change("message: transactional: 1 prefix: regionctl, sz: 6 content:hello2") is None


@pytest.mark.parametrize("line", [
    "table public.t: INSERT: id[integer]",  # no value
    "table public.t: INSERT: id[integer]:'unterminated",
    "table public.t INSERT: id[integer]:1",  # no colon after the table
    "table : INSERT: id[integer]:1",
    "table public.t: INSERT: id[text]:'a'b[text]:'c'",  # values must be separated
])
def test_malformed_lines_are_refused_naming_where(line: str) -> None:
    with pytest.raises(InputError):
        parse_change(line)


def test_table_names_have_one_spelling() -> None:
    assert normalise_table('"public"."orders"') == "public.orders"
    assert normalise_table('public."Order ""X"""') == 'public."Order ""X"""'
    assert split_qualified('public."Order ""X"""') == ("public", 'Order "X"')
    assert quote_ident("select me") == '"select me"' and quote_ident("plain_1") == "plain_1"


TYPES = ["text", "integer", "bigint", "numeric", "double precision", "boolean", "bit", "integer[]", "text[]",
         "jsonb", "timestamp with time zone", "character varying", 'public."My Type"', "public.my_type[]", "uuid"]
NAMES = st.one_of(
    st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12),
)


def value_for(type_name: str) -> st.SearchStrategy[object]:
    text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
    shapes: dict[str, st.SearchStrategy[object]] = {
        "integer": st.integers(-(2**31), 2**31 - 1).map(str), "bigint": st.integers(-(2**63), 2**63 - 1).map(str),
        "numeric": st.decimals(allow_nan=False, places=3).map(str),
        "double precision": st.sampled_from(["NaN", "Infinity", "-Infinity", "1.5", "-0", "1e+300"]),
        "boolean": st.sampled_from(["true", "false"]), "bit": st.from_regex(r"[01]{0,16}", fullmatch=True),
    }
    plain = shapes.get(type_name, text)
    return st.one_of(plain, st.none(), st.just(UNCHANGED))


@st.composite
def rows(draw: st.DrawFn) -> list[tuple[str, str, object]]:
    names = draw(st.lists(NAMES, min_size=1, max_size=8, unique=True))
    return [(n, t, draw(value_for(t))) for n in names for t in [draw(st.sampled_from(TYPES))]]


@settings(max_examples=300, deadline=None)
@given(rows(), st.sampled_from(["INSERT", "UPDATE", "DELETE"]), st.booleans())
def test_any_row_survives_printing_and_parsing(columns: list[tuple[str, str, object]], action: str,
                                               old_key: bool) -> None:
    body = tuple_text(columns)
    if action == "UPDATE" and old_key:
        body = f"old-key: {tuple_text(columns[:1])} new-tuple: {body}"
    change = parse_change(f'table "s p".{quote_identifier("T ]: x")}: {action}: {body}')
    assert change is not None and change.table == '"s p"."T ]: x"'
    expected = {n: v for n, _, v in columns if v is not UNCHANGED}
    got = change.old if action == "DELETE" else change.new
    assert got == expected
    assert change.types == {n: t for n, t, _ in columns}
    assert set(change.unchanged) == {n for n, _, v in columns if v is UNCHANGED}
    if action == "UPDATE" and old_key:
        assert change.old == ({columns[0][0]: columns[0][2]} if columns[0][2] is not UNCHANGED else {})


@given(st.text(max_size=30))
def test_literal_quoting_doubles_quotes_only(value: str) -> None:
    assert literal("text", value) == "'" + value.replace("'", "''") + "'"


@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)))
def test_commit_times_read_the_same_as_isoformat(moment: datetime) -> None:
    text = moment.strftime("%Y-%m-%d %H:%M:%S") + (f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond
                                                   else "") + "+00"
    assert pg_time_iso(text) == moment.isoformat()


@st.composite
def same_shape_rows(draw: st.DrawFn) -> tuple[list[tuple[str, str, object]], list[tuple[str, str, object]]]:
    """Two rows of one table: the same columns and types, values drawn apart. The first teaches the shape (so
    it has no unchanged TOAST value and no bit string, which are left to the general scanner)."""
    names = draw(st.lists(NAMES, min_size=1, max_size=8, unique=True))
    types = [draw(st.sampled_from([t for t in TYPES if t != "bit"])) for _ in names]
    first = [(n, t, draw(value_for(t).filter(lambda v: v is not UNCHANGED))) for n, t in zip(names, types, strict=True)]
    second = [(n, t, draw(value_for(t))) for n, t in zip(names, types, strict=True)]
    return first, second


_shape_tables = iter(range(10**9))


@settings(max_examples=150, deadline=None)
@given(same_shape_rows(), st.sampled_from(["INSERT", "UPDATE", "DELETE"]))
def test_a_learned_table_shape_decodes_like_the_general_scanner(
        pair: tuple[list[tuple[str, str, object]], list[tuple[str, str, object]]], action: str) -> None:
    """The first line of a plain-named table teaches its shape; the next is decoded by it (or, when it does not
    fit, e.g. an unchanged TOAST value, by the general scanner): either way to the same values."""
    table = f"public.shape_{next(_shape_tables)}"
    for columns in pair:
        change = parse_change(f"table {table}: {action}: {tuple_text(columns)}")
        assert change is not None and change.table == table and change.kind == action.lower()
        assert (change.old if action == "DELETE" else change.new) == {
            n: v for n, _, v in columns if v is not UNCHANGED}
        assert change.types == {n: t for n, t, _ in columns}
        assert set(change.unchanged) == {n for n, _, v in columns if v is UNCHANGED}


def test_a_table_whose_columns_change_is_relearned() -> None:
    """DDL in the lost window: a line with a column more no longer fits the shape, and is still read whole."""
    before = parse_change("table public.ddl: INSERT: id[integer]:1 v[text]:'a'")
    fits = parse_change("table public.ddl: INSERT: id[integer]:2 v[text]:'it''s'")
    added = parse_change("table public.ddl: INSERT: id[integer]:3 v[text]:null extra[boolean]:true")
    dropped = parse_change("table public.ddl: INSERT: id[integer]:4 v[text]:'c'")
    assert before is not None and before.new == {"id": "1", "v": "a"}
    assert fits is not None and fits.new == {"id": "2", "v": "it's"}
    assert added is not None and added.new == {"id": "3", "v": None, "extra": "true"}
    assert dropped is not None and dropped.new == {"id": "4", "v": "c"} and dropped.types == {
        "id": "integer", "v": "text"}


def test_keyword_columns_test_decoding_quotes_are_learned_as_printed() -> None:
    first = parse_change("table public.kw: INSERT: id[integer]:1 \"order\"[text]:'a'")
    second = "table public.kw: INSERT: id[integer]:2 \"order\"[text]:'b'"
    assert first is not None and first.new == {"id": "1", "order": "a"}
    shaped = _shaped(second)  # the one-match path, not the general scanner
    assert shaped is not None and shaped.new == {"id": "2", "order": "b"} and shaped == parse_change(second)
