"""The operators of a deployment, in one JSON file (mode 0600) under its state directory: name, role, the SHA-256
of the token, when it was created, rotated, revoked. Tokens are 32 random bytes, so a plain hash is enough (no
password to stretch); they are shown once, by ``add`` and ``rotate``, and never stored.

The deployment's control token (``secrets/control-token``, made by the first ``up``) is the first admin,
``admin``, so the embedded default needs no setup; it cannot be revoked here (rotate it with the secrets).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regionctl.errors import ConflictError, InputError, NotFoundError
from regionctl.operators.roles import check_role

NAME = re.compile(r"^[a-z][a-z0-9._-]{0,39}$")
BOOTSTRAP = "admin"


@dataclass(frozen=True)
class Operator:
    name: str
    role: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OperatorStore:
    def __init__(self, path: Path | None, control_token: str) -> None:
        """``path`` None: a process that knows only the control token (a component started on its own)."""
        self.path = path
        self._control = digest(control_token)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, Any]]]:
        if self.path is None:
            raise InputError("this process knows only the control token; manage operators with `regionctl`")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            table = self._read()
            yield table
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(json.dumps(table, indent=1, sort_keys=True))
            tmp.replace(self.path)

    def _read(self) -> dict[str, dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return {}
        table: dict[str, dict[str, Any]] = json.loads(self.path.read_text())
        return table

    def authenticate(self, token: str) -> Operator | None:
        """The operator holding ``token`` now (None: unknown, revoked, or replaced by a rotation)."""
        given = digest(token.strip())
        if hmac.compare_digest(given, self._control):
            return Operator(BOOTSTRAP, "admin")
        for name, entry in self._read().items():
            if entry.get("revoked_at") is None and hmac.compare_digest(given, str(entry["token_sha256"])):
                return Operator(name, str(entry["role"]))
        return None

    def add(self, name: str, role: str) -> str:
        """A new operator; returns its token (shown once)."""
        if not NAME.match(name) or name == BOOTSTRAP:
            raise InputError(f"operator name {name!r}: lowercase letters, digits, '.', '_' or '-', starting with a "
                             f"letter, at most 40 (and not {BOOTSTRAP!r}, the deployment's control token)")
        check_role(role)
        token = secrets.token_urlsafe(32)
        with self._locked() as table:
            if name in table and table[name].get("revoked_at") is None:
                raise ConflictError(f"operator {name} exists (rotate its token, or revoke it first)")
            table[name] = {"role": role, "token_sha256": digest(token), "created_at": time.time(),
                           "rotated_at": None, "revoked_at": None}
        return token

    def rotate(self, name: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._locked() as table:
            entry = self._active(table, name)
            entry.update(token_sha256=digest(token), rotated_at=time.time())
        return token

    def revoke(self, name: str) -> None:
        with self._locked() as table:
            self._active(table, name)["revoked_at"] = time.time()

    def list(self) -> list[dict[str, Any]]:
        rows = [{"name": BOOTSTRAP, "role": "admin", "created_at": None, "rotated_at": None, "revoked_at": None,
                 "note": "the deployment's control token"}]
        for name, entry in sorted(self._read().items()):
            rows.append({"name": name, **{k: v for k, v in entry.items() if k != "token_sha256"}})
        return rows

    @staticmethod
    def _active(table: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
        if name == BOOTSTRAP:
            raise InputError(f"{BOOTSTRAP} is the deployment's control token; rotate it with the secrets")
        entry = table.get(name)
        if entry is None or entry.get("revoked_at") is not None:
            raise NotFoundError(f"no active operator {name!r}; `regionctl operators list` shows them")
        return entry
