"""The item as callers see it, and the checks every write passes before it touches a store."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from regionctl.errors import InputError

TABLE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_KEY_CHARS = 1024
MAX_VALUE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Item:
    """One item of a logical table: its value (``None`` for a tombstone) and the version that wrote it."""

    table: str
    key: str
    value: dict[str, Any] | None
    hlc: int
    origin: str
    deleted: bool


def check_table(table: str) -> str:
    if not isinstance(table, str) or not TABLE_PATTERN.match(table):
        raise InputError(f"table name {table!r} is invalid: use lower-case letters, digits and _ (at most 63)")
    return table


def check_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS or "\x00" in key:
        raise InputError(f"item key {key!r:.80} is invalid: a non-empty string of at most {MAX_KEY_CHARS} "
                         "characters without NUL")
    return key


def check_value(value: object) -> dict[str, Any]:
    """Values are JSON objects; anything else is refused before a write starts."""
    if not isinstance(value, dict):
        raise InputError(f"item value must be a JSON object (dict), not {type(value).__name__}")
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"item value is not JSON-serialisable: {exc}") from None
    if "\\u0000" in encoded:
        raise InputError("item value contains a NUL character, which PostgreSQL jsonb cannot store")
    if len(encoded) > MAX_VALUE_BYTES:
        raise InputError(f"item value is {len(encoded)} bytes of JSON; the limit is {MAX_VALUE_BYTES}")
    return value


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or len(prefix) > MAX_KEY_CHARS or "\x00" in prefix:
        raise InputError(f"scan prefix {prefix!r:.80} is invalid")
    return prefix


def check_region(region: str) -> str:
    if not isinstance(region, str) or not re.match(r"^[a-z0-9][a-z0-9-]{0,62}$", region):
        raise InputError(f"region {region!r} is invalid: lower-case letters, digits and dashes")
    return region


def check_hours(hours: float) -> float:
    if not isinstance(hours, (int, float)) or not hours > 0:
        raise InputError(f"older_than_hours must be a positive number, not {hours!r}")
    return float(hours)
