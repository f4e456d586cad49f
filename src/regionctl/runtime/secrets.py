"""The deployment's bearer tokens (invariant 6): the control token of mutating control-plane calls (from
settings, else generated), the agent token every call to a region's agent carries, and the password of
PostgreSQL's superuser. Each is generated once per
deployment into ``<root>/secrets/<name>`` (mode 0600) and reused by every process and the CLI."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from regionctl.config import Settings
from regionctl.errors import ConfigError


def token_path(settings: Settings, name: str = "control-token") -> Path:
    return settings.root / "secrets" / name


def control_token(settings: Settings) -> str:
    """The configured token, or the deployment's generated one (created on first use)."""
    if settings.control_token is not None:
        return settings.control_token.get_secret_value()
    return deployment_token(settings, "control-token")


def agent_token(settings: Settings) -> str:
    """The credential of calls to the regions' agents: configured (real hosts share it), else generated."""
    if settings.agents.token is not None:
        return settings.agents.token.get_secret_value()
    return deployment_token(settings, "agent-token")


def superuser_password(settings: Settings) -> str:
    """The SCRAM password of PostgreSQL's superuser in every member of the deployment (``runtime.pgpass``)."""
    return deployment_token(settings, "postgres-password")


def deployment_token(settings: Settings, name: str) -> str:
    """The token stored as ``name`` under the deployment's secrets directory, generated on first use."""
    path = token_path(settings, name)
    if path.exists():
        token = path.read_text().strip()
        if len(token) < 16:
            raise ConfigError(f"{path} holds a token shorter than 16 characters; delete it to generate a new one")
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    try:
        os.link(tmp, path)  # atomic and refuses to replace: a reader never sees a half-written token
    except FileExistsError:  # another process generated it first: use theirs
        return deployment_token(settings, name)
    finally:
        tmp.unlink()
    return token
