"""Rotation when due, inside a running deployment, without ever holding up the supervisor's loop.

The loop calls ``poke`` every second; at most once a minute it looks for credentials older than the rotation
interval and rotates them in a background thread (one at a time). A rotation needs every member to accept the
new password, so it waits while a region is down, and after a failure it tries again ten minutes later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger("regionctl.credentials")

CHECK_S = 60.0
RETRY_S = 600.0


class RotationSchedule:
    def __init__(self, due: Callable[[], Sequence[str]], rotate: Callable[[str], object],
                 now: Callable[[], float] = time.monotonic, check_s: float = CHECK_S, retry_s: float = RETRY_S) -> None:
        self._due, self._rotate, self._now = due, rotate, now
        self.check_s, self.retry_s = check_s, retry_s
        self._next_check = 0.0
        self._thread: threading.Thread | None = None

    def poke(self, down: frozenset[str]) -> threading.Thread | None:
        """Start a rotation round if one is due and none runs; returns its thread (for tests)."""
        if self._now() < self._next_check or (self._thread is not None and self._thread.is_alive()):
            return None
        self._next_check = self._now() + self.check_s
        if down:
            return None  # every member must accept a new password: wait for the region to come back
        self._thread = threading.Thread(target=self._round, name="credential-rotation", daemon=True)
        self._thread.start()
        return self._thread

    def _round(self) -> None:
        try:
            names = list(self._due())
            for name in names:
                self._rotate(name)
                log.info("rotated the %s credential (it was due)", name)
        except Exception as exc:  # noqa: BLE001 - the deployment goes on; the next try comes later
            log.warning("credential rotation failed, next try in %.0f s: %s", self.retry_s, exc)
            self._next_check = self._now() + self.retry_s
