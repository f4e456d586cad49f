"""The clients' libpq service file: one section per global database with the current login user and password.

Workload DSNs name a ``service`` instead of a user (``service=orders host=... dbname=orders``) and the processes
get ``PGSERVICEFILE``: libpq reads the file at every new connection, so a rotation reaches every client, in both
regions, without a restart, and no password is ever in a process's environment, argv or logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def render(credentials: Mapping[str, Mapping[str, Any]]) -> str:
    lines = ["# written by regionctl at every rotation; do not edit (mode 0600)"]
    for service, value in sorted(credentials.items()):
        lines += ["", f"[{service}]", f"user={value['username']}", f"password={value['password']}",
                  f"options=-c role={value['owner']}"]
    return "\n".join(lines) + "\n"


def write(path: Path, credentials: Mapping[str, Mapping[str, Any]]) -> Path:
    """Atomically: a client never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(render(credentials))
    os.replace(tmp, path)
    return path
