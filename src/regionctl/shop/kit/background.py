"""Start-up work that must eventually succeed (migrations, store set-up) without blocking the process: it runs
in a thread, retried with backoff until it does, and readiness reports it pending meanwhile."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from regionctl.shop.kit.retry import backoff_s

log = logging.getLogger(__name__)


class StartupTask:
    def __init__(self, name: str, fn: Callable[[], object], max_delay_s: float = 2.0) -> None:
        self.name = name
        self.fn = fn
        self.max_delay_s = max_delay_s
        self.done = threading.Event()
        self.last_error: str | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, name=self.name, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> bool:
        try:
            result = self.fn()
        except Exception as exc:
            self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("%s not done yet: %s", self.name, self.last_error)
            return False
        self.last_error = None
        self.done.set()
        log.info("%s done", self.name, extra={"result": str(result)})
        return True

    def _loop(self) -> None:
        attempt = 0
        while not self._stop.is_set() and not self.run_once():
            attempt += 1
            self._stop.wait(backoff_s(attempt, base_s=0.2, cap_s=self.max_delay_s))

    def status(self) -> str:
        """For readiness: raises while pending, naming the last error."""
        if self.done.is_set():
            return "done"
        raise RuntimeError(f"{self.name} pending: {self.last_error or 'not attempted yet'}")
