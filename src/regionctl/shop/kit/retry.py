"""Which database failures are worth retrying, decided by a pure function that says why.

After a failover the writer moves: pooled connections break (connection errors) or land on a demoted member
(read-only errors). Both are retried on a fresh connection; the multi-host DSN with
``target_session_attrs=read-write`` then finds the new writer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import psycopg

from regionctl.errors import OperationTimeout

# SQLSTATE -> (reconnect?, reason)
RETRYABLE_SQLSTATES: dict[str, tuple[bool, str]] = {
    "25006": (True, "read-only member (the writer moved)"),
    "40001": (False, "serialization failure or recovery conflict"),
    "40P01": (False, "deadlock"),
    "55P03": (False, "lock not available"),
    "57P01": (True, "server shutting down"),
    "57P02": (True, "server crashed"),
    "57P03": (True, "server starting or in recovery"),
    "53300": (True, "too many connections"),
}


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    reconnect: bool  # drop the connection: it is broken or points at the wrong member
    reason: str


def classify(exc: BaseException) -> RetryDecision:
    """Decide whether the operation that raised ``exc`` may run again, and on which connection."""
    if isinstance(exc, OperationTimeout):
        return RetryDecision(True, True, "operation timed out (link slow or partitioned)")
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate in RETRYABLE_SQLSTATES:
        reconnect, reason = RETRYABLE_SQLSTATES[sqlstate]
        return RetryDecision(True, reconnect, reason)
    if sqlstate and sqlstate.startswith("08"):
        return RetryDecision(True, True, "connection exception")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and not sqlstate:
        return RetryDecision(True, True, "connection failed or lost")
    return RetryDecision(False, False, f"not retryable ({type(exc).__name__}{' ' + sqlstate if sqlstate else ''})")


def backoff_s(attempt: int, base_s: float = 0.05, cap_s: float = 1.0, jitter: float = 0.2,
              rng: random.Random | None = None) -> float:
    """Exponential backoff for the n-th retry (1-based), capped, with +-``jitter`` spread."""
    delay = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    spread = (rng or random).uniform(-jitter, jitter) if jitter else 0.0
    return max(0.0, delay * (1 + spread))
