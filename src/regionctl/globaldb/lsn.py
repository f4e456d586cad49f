"""PostgreSQL LSNs ("16/B374D848") as integers, so they can be compared and subtracted."""

from __future__ import annotations

from regionctl.errors import InputError


def parse_lsn(text: str) -> int:
    try:
        high, low = text.strip().split("/")
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        raise InputError(f"{text!r} is not an LSN like 0/3000060") from None


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def maybe_lsn(text: str | None) -> int | None:
    return None if text is None else parse_lsn(str(text))
