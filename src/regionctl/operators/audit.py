"""The audit log: one JSON line per mutating call on the control plane (who, with which role, what, on what,
its parameters, the result, when), appended and never rewritten. Parameters pass through ``scrub`` first: any
key that names a secret is replaced, so a log can be shared."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SECRET_KEYS = re.compile(r"token|password|secret|authorization|credential|dsn|conninfo", re.IGNORECASE)


def scrub(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: "***" if SECRET_KEYS.search(str(k)) else scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, operator: str, role: str, action: str, target: str, params: Mapping[str, Any] | None,
               result: str, status: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"at": round(time.time(), 3), "operator": operator, "role": role, "action": action,
                 "target": target, "params": scrub(dict(params or {})), "result": result[:500], "status": status}
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as out:  # one write per line: concurrent writers never interleave a line
            out.write(json.dumps(entry, sort_keys=True, default=str) + "\n")

    def read(self, since: float | None = None, operator: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if (since is None or row["at"] >= since) and (operator is None or row["operator"] == operator):
                rows.append(row)
        return rows
