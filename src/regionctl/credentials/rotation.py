"""Rotating a global database's workload credential with alternating users: nobody is ever locked out.

Each global database has an owner role (NOLOGIN, owns the workload's tables) and two login users that are
members of it (``<db>_app_a`` / ``<db>_app_b``); clients log in as whichever is current and act as the owner
(``options=-c role=<db>_owner``). A rotation (Secrets Manager's four steps, each safe to repeat):

1. create: a new random password for the user that is NOT current, staged as the pending version;
2. set: its SCRAM verifier is set on the writer, wherever the writer is now (the reference rotated on the
   original primary's endpoint, which after a failover is read-only);
3. test: log in with it on every member, writer and standbys (the role replicates; a standby that has not
   replayed it yet is waited for, a standby that cannot be reached stops the rotation);
4. finish: the pending version becomes current and the clients' service file is rewritten.

Until step 4 the current user and password keep working; after it, connections already open go on (PostgreSQL
does not end sessions on a password change) and new ones use the new user. A rotation stopped anywhere resumes
from its pending version. The reference's single-user rotation had a window in which new logins failed.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from regionctl.credentials.scram import verifier
from regionctl.credentials.store import CURRENT, PENDING, SecretStore
from regionctl.errors import ExternalError

ALPHABET = string.ascii_letters + string.digits  # nothing a service file or a DSN would need to quote
PASSWORD_LENGTH = 32


def owner_role(database: str) -> str:
    return f"{database}_owner"


def login_users(database: str) -> tuple[str, str]:
    return (f"{database}_app_a", f"{database}_app_b")


def new_password(length: int = PASSWORD_LENGTH) -> str:
    """Random letters and digits, each kind at least once (the reference's REQUIRE_EACH_INCLUDED_TYPE)."""
    while True:
        password = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if (any(c.islower() for c in password) and any(c.isupper() for c in password)
                and any(c.isdigit() for c in password)):
            return password


@dataclass(frozen=True)
class Member:
    region: str
    host: str
    port: int


class RoleAdmin(Protocol):
    """The database side of a rotation (PostgreSQL in a deployment; a fake in unit tests)."""

    def ensure_roles(self, database: str, owner: str, users: Sequence[str]) -> None: ...
    def set_password(self, database: str, user: str, scram_verifier: str) -> None: ...
    def members(self, database: str) -> list[Member]: ...
    def login_error(self, database: str, member: Member, credential: dict[str, Any]) -> str | None: ...


class RotationIncomplete(ExternalError):
    """The new credential is set but not yet usable everywhere: the current one stays in use."""


@dataclass(frozen=True)
class RotationResult:
    secret: str
    version: str
    username: str  # now current
    previous_username: str | None
    resumed: bool  # finished a rotation an earlier attempt had left pending
    members_tested: tuple[str, ...]
    seconds: float


def rotate(store: SecretStore, admin: RoleAdmin, database: str, publish: Callable[[], object],
           progress: Callable[[str], None] = lambda _: None, test_timeout_s: float = 30.0,
           poll_s: float = 0.25) -> RotationResult:
    started = time.monotonic()
    owner, users = owner_role(database), login_users(database)
    with store.locked():
        publish()  # clients hold the current user before the other one's password changes (a lost write heals)
        admin.ensure_roles(database, owner, users)
        previous = store.value(database, CURRENT)["username"] if store.has(database, CURRENT) else None
        resumed = store.has(database, PENDING)
        if resumed:
            progress(f"{database}: resuming the pending rotation")
            pending = store.value(database, PENDING)
            version = store.describe(database).pending or ""
        else:
            user = users[1] if previous == users[0] else users[0]
            pending = {"engine": "postgres", "dbname": database, "username": user, "password": new_password(),
                       "owner": owner}
            version = store.put_pending(database, pending)
        progress(f"{database}: setting the password of {pending['username']} on the writer")
        admin.set_password(database, pending["username"], verifier(pending["password"]))
        tested = _test_everywhere(admin, database, pending, test_timeout_s, poll_s, progress)
        store.promote(database, version)
        progress(f"{database}: {pending['username']} is current; writing the clients' service file")
        publish()
    return RotationResult(database, version, pending["username"], previous, resumed, tested,
                          round(time.monotonic() - started, 2))


def _test_everywhere(admin: RoleAdmin, database: str, credential: dict[str, Any], timeout_s: float, poll_s: float,
                     progress: Callable[[str], None]) -> tuple[str, ...]:
    """Every member accepts the new credential, or RotationIncomplete naming those that do not."""
    members = admin.members(database)
    waiting = {m.region: m for m in members}
    errors: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while waiting:
        for region, member in list(waiting.items()):
            error = admin.login_error(database, member, credential)
            if error is None:
                del waiting[region]
                errors.pop(region, None)
            else:
                errors[region] = error
        if not waiting:
            break
        if time.monotonic() > deadline:
            detail = "; ".join(f"{r}: {e}" for r, e in sorted(errors.items()))
            raise RotationIncomplete(
                f"{database}: the new credential of {credential['username']} is not accepted everywhere after "
                f"{timeout_s:g} s ({detail}); the current credential stays in use; run the rotation again to "
                "resume it")
        progress(f"{database}: waiting for {', '.join(sorted(waiting))} to accept {credential['username']}")
        time.sleep(poll_s)
    return tuple(m.region for m in members)
