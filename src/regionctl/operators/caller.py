"""Who the CLI acts as: the token in ``$REGIONCTL_TOKEN``, else the file named by ``$REGIONCTL_TOKEN_FILE``, else
the deployment's control token (the first admin). Never from the command line, where other users of the machine
could read it."""

from __future__ import annotations

import os
from pathlib import Path

from regionctl.config import Paths, Settings
from regionctl.errors import ConfigError, Forbidden, Unauthorized
from regionctl.operators.audit import AuditLog
from regionctl.operators.gate import refusal
from regionctl.operators.roles import permits
from regionctl.operators.store import Operator, OperatorStore
from regionctl.runtime.secrets import control_token

TOKEN_ENV, TOKEN_FILE_ENV = "REGIONCTL_TOKEN", "REGIONCTL_TOKEN_FILE"


def caller_token(settings: Settings) -> str:
    given = os.environ.get(TOKEN_ENV, "").strip()
    if given:
        return given
    file = os.environ.get(TOKEN_FILE_ENV, "").strip()
    if file:
        try:
            token = Path(file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"${TOKEN_FILE_ENV}: cannot read {file}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"${TOKEN_FILE_ENV}: {file} is empty")
        return token
    return control_token(settings)


def cli_caller(settings: Settings, permission: str, action: str, target: str) -> Operator:
    """The CLI's caller, when its role permits ``permission``; a refusal is audited and names what is missing,
    as the planes' gate does for an API call."""
    who = operator_store(settings).authenticate(caller_token(settings))
    if who is None:
        raise Unauthorized("the caller's token ($REGIONCTL_TOKEN or $REGIONCTL_TOKEN_FILE) belongs to no operator")
    if not permits(who.role, permission):
        why = refusal(who, permission)
        audit_log(settings).append(who.name, who.role, action, target, {}, why, 403)
        raise Forbidden(why)
    return who


def operator_store(settings: Settings) -> OperatorStore:
    return OperatorStore(Paths(settings.root).operators, control_token(settings))


def audit_log(settings: Settings) -> AuditLog:
    return AuditLog(Paths(settings.root).audit)
