"""What the supervisor needs to know to run one long-lived process (a service, a proxy, a replicator).

Components describe themselves with ``ProcessSpec``; the supervisor (``runtime/supervisor.py``) starts them in
their region's process group, checks health, restarts what dies unexpectedly and stops them in order.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

GLOBAL_PLANE = "global"  # the "region" of processes that belong to no region (control API, entry, DNS, link)


@dataclass(frozen=True)
class ProcessSpec:
    """One process: how to run it, where it belongs and how to tell it is healthy.

    ``health_url`` is polled with GET (2xx = healthy); ``None`` means "alive is healthy".
    """

    name: str  # unique within its region, e.g. "ui", "carts", "link", "entry"
    region: str  # a region name, or GLOBAL_PLANE
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    health_url: str | None = None
    start_timeout_s: float = 60.0
    restart: bool = True  # restart when it dies without being asked to stop
    cwd: str | None = None  # working directory (etcd resolves its unix-socket peer URLs relative to it)
    metrics_url: str | None = None  # where it serves Prometheus metrics (None: it serves none)

    @property
    def key(self) -> str:
        return f"{self.region}/{self.name}"


def python_module(module: str, *args: str) -> tuple[str, ...]:
    """argv running ``python -m module args`` with this interpreter (the project's venv)."""
    return (sys.executable, "-m", module, *args)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone; another user's process counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
