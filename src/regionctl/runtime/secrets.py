"""The bearer token of mutating control-plane calls (invariant 6): from settings, else generated once per
deployment into ``<root>/secrets/control-token`` (mode 0600) and reused by every process and the CLI."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from regionctl.config import Settings
from regionctl.errors import ConfigError


def token_path(settings: Settings) -> Path:
    return settings.root / "secrets" / "control-token"


def control_token(settings: Settings) -> str:
    """The configured token, or the deployment's generated one (created on first use)."""
    if settings.control_token is not None:
        return settings.control_token.get_secret_value()
    path = token_path(settings)
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
        return control_token(settings)
    finally:
        tmp.unlink()
    return token
