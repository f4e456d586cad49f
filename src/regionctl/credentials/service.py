"""Credentials of a deployment: the store and the service file under ``<root>/secrets``, roles on the writers.

``up`` calls ``ensure`` (a first rotation for each global database that has no credential yet, then the service
file); ``regionctl secrets rotate`` calls ``rotate``; ``due`` says which credentials are older than the
rotation interval (the reference rotated every 90 days).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from regionctl.config import Settings
from regionctl.credentials import servicefile
from regionctl.credentials.live import PgRoleAdmin
from regionctl.credentials.rotation import RotationResult, rotate
from regionctl.credentials.store import CURRENT, SecretInfo, SecretStore
from regionctl.globaldb.service import GlobalDatabases

SERVICE_FILE_ENV = "PGSERVICEFILE"


def store(settings: Settings) -> SecretStore:
    return SecretStore(settings.root / "secrets" / "db")


def service_file(settings: Settings) -> Path:
    return settings.root / "secrets" / "pg_service.conf"


def write_service_file(settings: Settings) -> Path:
    secrets = store(settings)
    return servicefile.write(service_file(settings), {name: secrets.value(name, CURRENT) for name in secrets.names()
                                                      if secrets.has(name, CURRENT)})


def rotate_database(gdbs: GlobalDatabases, name: str, progress: Callable[[str], None] = lambda _: None,
                    test_timeout_s: float = 30.0) -> RotationResult:
    settings = gdbs.topo.settings
    gdbs.cluster(name)  # an unknown database is refused by name before anything changes
    return rotate(store(settings), PgRoleAdmin(gdbs), name, lambda: write_service_file(settings), progress,
                  test_timeout_s)


def ensure(gdbs: GlobalDatabases, progress: Callable[[str], None] = lambda _: None) -> list[RotationResult]:
    """Every global database has a current credential that logs in on its writer (a database recreated under
    kept secrets gets a new one), and the service file holds them all."""
    secrets = store(gdbs.topo.settings)
    done = [rotate_database(gdbs, name, progress) for name in gdbs.names
            if not secrets.has(name, CURRENT) or not _logs_in(gdbs, name, secrets.value(name, CURRENT))]
    with secrets.locked():  # never over a newer file a concurrent rotation wrote
        write_service_file(gdbs.topo.settings)
    return done


def _logs_in(gdbs: GlobalDatabases, name: str, credential: dict[str, Any]) -> bool:
    admin = PgRoleAdmin(gdbs)
    writer = next(m for m in admin.members(name) if m.region == gdbs.state(name).writer)
    return admin.login_error(name, writer, credential) is None


def describe(settings: Settings) -> list[SecretInfo]:
    secrets = store(settings)
    return [secrets.describe(name) for name in secrets.names()]


def due(settings: Settings, now: float | None = None) -> list[str]:
    """Credentials whose current version is older than ``credentials.rotation_days``."""
    limit = settings.credentials.rotation_days * 86_400
    now = time.time() if now is None else now
    return [info.name for info in describe(settings)
            if info.current_since is not None and now - info.current_since >= limit]
