"""Credentials: the versioned store, SCRAM verifiers, the service file, and alternating-users rotation (against a
fake database side; the real one is in tests/integration/test_credentials.py)."""

from __future__ import annotations

import base64
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from regionctl.credentials import servicefile
from regionctl.credentials.rotation import Member, RotationIncomplete, new_password, rotate
from regionctl.credentials.schedule import RotationSchedule
from regionctl.credentials.scram import verifier
from regionctl.credentials.store import CURRENT, PENDING, PREVIOUS, SecretStore
from regionctl.errors import ConflictError, NotFoundError


def test_a_scram_verifier_has_postgres_shape_and_a_fresh_salt() -> None:
    first, second = verifier("Secret123"), verifier("Secret123")
    assert first != second  # a new salt each time
    method, rest = first.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored, server = keys.split(":")
    assert method == "SCRAM-SHA-256" and iterations == "4096" and len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(stored)) == len(base64.b64decode(server)) == 32
    assert verifier("Secret123", salt=b"s" * 16) == verifier("Secret123", salt=b"s" * 16)
    assert verifier("Secret123", salt=b"s" * 16) != verifier("Secret124", salt=b"s" * 16)
    with pytest.raises(ValueError, match="only ASCII"):
        verifier("pässword")


def test_passwords_mix_every_kind_and_need_no_quoting() -> None:
    for _ in range(50):
        password = new_password()
        assert len(password) == 32 and password.isalnum()
        assert any(c.islower() for c in password) and any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password)


def test_the_store_stages_promotes_and_keeps_three_versions_privately(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "db")
    with store.locked():
        v1 = store.put_pending("orders", {"username": "orders_app_a", "password": "p1"})
    with pytest.raises(ConflictError, match="already has a pending version"):
        store.put_pending("orders", {"username": "x", "password": "p"})
    assert not store.has("orders", CURRENT) and store.value("orders", PENDING)["password"] == "p1"
    store.promote("orders", v1)
    v2 = store.put_pending("orders", {"username": "orders_app_b", "password": "p2"})
    store.promote("orders", v2)
    v3 = store.put_pending("orders", {"username": "orders_app_a", "password": "p3"})
    store.promote("orders", v3)
    info = store.describe("orders")
    assert (info.current, info.previous, info.pending, info.username) == (v3, v2, None, "orders_app_a")
    assert store.value("orders", PREVIOUS)["password"] == "p2"
    assert "p3" not in repr(info)
    raw = (tmp_path / "db" / "orders.json").read_text()
    assert "p1" not in raw  # the oldest version is gone
    assert stat.S_IMODE((tmp_path / "db" / "orders.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "db").stat().st_mode) == 0o700
    with pytest.raises(ConflictError, match="is not the pending one"):
        store.promote("orders", v1)
    with pytest.raises(NotFoundError, match="is not a secret name"):
        store.value("../etc/passwd")
    assert store.names() == ["orders"]


def test_the_service_file_names_user_password_and_owner_role(tmp_path: Path) -> None:
    path = servicefile.write(tmp_path / "pg_service.conf", {
        "orders": {"username": "orders_app_b", "password": "Pw1", "owner": "orders_owner"}})
    assert path.read_text().splitlines()[1:] == ["", "[orders]", "user=orders_app_b", "password=Pw1",
                                                 "options=-c role=orders_owner"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


class FakeAdmin:
    """Roles and passwords as a writer and a standby see them; the standby may lag (``replay`` False)."""

    def __init__(self) -> None:
        self.roles: set[str] = set()
        self.writer: dict[str, str] = {}
        self.standby: dict[str, str] = {}
        self.replay = True
        self.sql_seen: list[str] = []

    def ensure_roles(self, database: str, owner: str, users: Sequence[str]) -> None:
        self.roles |= {owner, *users}

    def set_password(self, database: str, user: str, scram_verifier: str) -> None:
        self.sql_seen.append(scram_verifier)
        self.writer[user] = scram_verifier
        if self.replay:
            self.standby[user] = scram_verifier

    def members(self, database: str) -> list[Member]:
        return [Member("us-east-1", "127.0.1.1", 1), Member("us-west-2", "127.0.2.1", 2)]

    def login_error(self, database: str, member: Member, credential: dict[str, Any]) -> str | None:
        known = self.writer if member.region == "us-east-1" else self.standby
        user = credential["username"]
        if user not in known:
            return f"password authentication failed for user {user}"
        salt = base64.b64decode(known[user].split("$")[1].split(":")[1])
        ok = verifier(credential["password"], salt=salt) == known[user]
        return None if ok else f"password authentication failed for user {user}"


def test_rotation_alternates_users_tests_every_member_and_publishes_before_and_after(tmp_path: Path) -> None:
    store, admin = SecretStore(tmp_path), FakeAdmin()
    published: list[str | None] = []  # the user the clients' service file names, at each write

    def publish() -> None:
        published.append(store.describe("orders").username)

    first, second, third = (rotate(store, admin, "orders", publish) for _ in range(3))
    assert [r.username for r in (first, second, third)] == ["orders_app_a", "orders_app_b", "orders_app_a"]
    assert (second.previous_username, second.members_tested) == ("orders_app_a", ("us-east-1", "us-west-2"))
    assert published == [None, "orders_app_a", "orders_app_a", "orders_app_b", "orders_app_b", "orders_app_a"]
    assert admin.roles == {"orders_owner", "orders_app_a", "orders_app_b"}
    password = store.value("orders")["password"]
    assert all(password not in sql for sql in admin.sql_seen)  # only verifiers reach the database


def test_a_standby_that_never_accepts_leaves_the_current_credential_and_a_resumable_pending_one(
        tmp_path: Path) -> None:
    store, admin = SecretStore(tmp_path), FakeAdmin()
    published: list[str | None] = []

    def publish() -> None:
        published.append(store.describe("orders").username)

    rotate(store, admin, "orders", lambda: None)
    current = store.value("orders")
    admin.replay = False
    with pytest.raises(RotationIncomplete, match="us-west-2: password authentication failed") as refused:
        rotate(store, admin, "orders", publish, test_timeout_s=0.3, poll_s=0.05)
    pending = store.value("orders", PENDING)
    assert pending["password"] not in str(refused.value)
    assert store.value("orders") == current and published == ["orders_app_a"]  # clients keep the working user
    admin.replay = True  # the standby catches up
    resumed = rotate(store, admin, "orders", publish)
    assert resumed.resumed and resumed.username == pending["username"] == "orders_app_b"
    assert store.value("orders") == pending and not store.has("orders", PENDING)
    assert published == ["orders_app_a", "orders_app_a", "orders_app_b"]


def test_the_schedule_rotates_what_is_due_off_the_loop_waits_for_down_regions_and_backs_off() -> None:
    now = [0.0]
    rotated: list[str] = []
    failing = [False]

    def rotate_one(name: str) -> None:
        if failing[0]:
            raise RuntimeError("writer unreachable")
        rotated.append(name)

    schedule = RotationSchedule(lambda: ["orders", "catalog"], rotate_one, now=lambda: now[0], check_s=60,
                                retry_s=600)
    assert schedule.poke(frozenset({"us-west-2"})) is None and rotated == []  # a region is down: wait
    now[0] += 61
    thread = schedule.poke(frozenset())
    assert thread is not None
    thread.join(5)
    assert rotated == ["orders", "catalog"]
    assert schedule.poke(frozenset()) is None  # checked a moment ago
    failing[0] = True
    now[0] += 61
    failed = schedule.poke(frozenset())
    assert failed is not None
    failed.join(5)
    now[0] += 61
    assert schedule.poke(frozenset()) is None  # backing off after the failure
    now[0] += 600
    assert schedule.poke(frozenset()) is not None
