"""JSON columns (the regional store's values, the outbox's payloads) encoded and decoded by orjson in the shop's
processes: psycopg's default, the standard library's json, was 4% of checkout's CPU under load (py-spy --gil).
What orjson refuses or would read inexactly (it reads an integer beyond 64 bits as a float) goes through the
standard library, so nothing storable is refused and nothing read changes. A NaN, which PostgreSQL's json refuses,
is written as null, as pydantic's JSON mode (what the services store) already writes it."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from psycopg.types.json import set_json_dumps, set_json_loads

# 19 digits in a row may be an integer orjson cannot hold exactly (or a long fraction: the same either way)
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_B = re.compile(rb"\d{19}")


def dumps(value: Any) -> bytes | str:
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value)


def loads(data: bytes | str) -> Any:
    long_digits = _LONG_DIGITS_B if isinstance(data, bytes) else _LONG_DIGITS
    if long_digits.search(data) is None:  # type: ignore[arg-type]
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def install() -> None:
    """Make every psycopg connection of this process use these (process start only: it is global)."""
    set_json_dumps(dumps)
    set_json_loads(loads)
