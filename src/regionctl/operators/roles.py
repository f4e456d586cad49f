"""What each role may do. Permissions, not a ladder: an approver decides approvals but starts nothing, an
operator runs runbooks and changes routing but approves nothing; admin may do everything, operators included."""

from __future__ import annotations

from regionctl.errors import InputError

READ, OPERATE, APPROVE, ADMIN = "read", "operate", "approve", "admin"
ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({READ}),
    "operator": frozenset({READ, OPERATE}),
    "approver": frozenset({READ, APPROVE}),
    "admin": frozenset({READ, OPERATE, APPROVE, ADMIN}),
}
WHAT = {OPERATE: "start, pause, cancel runbooks, change routing, run chaos and drills",
        APPROVE: "approve or decline a waiting step", ADMIN: "manage operators and secrets", READ: "read"}


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"--role {role!r} is not a role; choose one of {', '.join(ROLES)}")
    return role


def roles_with(permission: str) -> list[str]:
    return [role for role, permits in ROLES.items() if permission in permits]


def permits(role: str, permission: str) -> bool:
    return permission in ROLES.get(role, frozenset())
