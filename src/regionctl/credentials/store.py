"""A small secrets store with versions and staging labels (Secrets Manager's AWSCURRENT / AWSPENDING /
AWSPREVIOUS), one 0600 JSON file per secret under ``<root>/secrets/db/``.

Writes are atomic (a temporary file renamed over the old one) and serialized by a lock file, so a reader never
sees half a secret and two rotations never interleave. Values leave this module only through ``value()``;
``describe()`` and every error name the secret and its versions, never what they hold.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regionctl.errors import ConflictError, NotFoundError

CURRENT, PENDING, PREVIOUS = "current", "pending", "previous"
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class SecretInfo:
    """What may be shown about a secret: versions, labels and dates, no values."""

    name: str
    current: str | None
    pending: str | None
    previous: str | None
    current_since: float | None
    username: str | None  # the login role of the current version (a name, not a secret)


class SecretStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        if not name or not set(name) <= NAME_CHARS:
            raise NotFoundError(f"{name!r} is not a secret name (lower-case letters, digits, - and _)")
        return self.directory / f"{name}.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive for the whole store: one rotation at a time, across processes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        with open(self.directory / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, name: str) -> dict[str, Any]:
        path = self._path(name)
        try:
            return dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return {"name": name, "versions": {}, "labels": {}}

    def _write(self, name: str, data: Mapping[str, Any]) -> None:
        path = self._path(name)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def names(self) -> list[str]:
        if not self.directory.exists():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json"))

    def value(self, name: str, label: str = CURRENT) -> dict[str, Any]:
        data = self._read(name)
        version = data["labels"].get(label)
        if version is None:
            raise NotFoundError(f"secret {name!r} has no {label} version")
        return dict(data["versions"][version]["value"])

    def has(self, name: str, label: str = CURRENT) -> bool:
        return self._read(name)["labels"].get(label) is not None

    def describe(self, name: str) -> SecretInfo:
        data = self._read(name)
        labels, versions = data["labels"], data["versions"]
        current = labels.get(CURRENT)
        return SecretInfo(name=name, current=current, pending=labels.get(PENDING), previous=labels.get(PREVIOUS),
                          current_since=None if current is None else versions[current].get("current_since"),
                          username=None if current is None else versions[current]["value"].get("username"))

    def put_pending(self, name: str, value: Mapping[str, Any]) -> str:
        """Stage a new version as pending; refused while another is pending (finish or resume that one first)."""
        data = self._read(name)
        if data["labels"].get(PENDING) is not None:
            raise ConflictError(f"secret {name!r} already has a pending version {data['labels'][PENDING]}")
        version = uuid.uuid4().hex[:12]
        data["versions"][version] = {"value": dict(value), "created_at": time.time()}
        data["labels"][PENDING] = version
        self._write(name, data)
        return version

    def promote(self, name: str, version: str) -> None:
        """pending ``version`` becomes current, current becomes previous; older versions are dropped."""
        data = self._read(name)
        labels = data["labels"]
        if labels.get(PENDING) != version:
            raise ConflictError(f"secret {name!r}: version {version} is not the pending one")
        labels[PREVIOUS], labels[CURRENT], labels[PENDING] = labels.get(CURRENT), version, None
        data["versions"][version]["current_since"] = time.time()
        keep = {v for v in labels.values() if v is not None}
        data["versions"] = {v: body for v, body in data["versions"].items() if v in keep}
        self._write(name, data)
