"""Waiting for asynchronous outcomes (replication, relays, health checks) by polling against a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(fn: Callable[[], T], timeout_s: float = 20.0, interval_s: float = 0.1) -> T:
    """``fn()`` once it stops raising AssertionError; its last AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval_s)
