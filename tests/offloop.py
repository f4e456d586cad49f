"""Run code that calls ``asyncio.run`` from tests that may share the main thread with a running event loop (the
sync Playwright of the browser tests keeps one there for the whole session)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def off_loop(fn: Callable[[], T]) -> T:
    """``fn()`` in a fresh thread, its result or its exception returned here."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()
