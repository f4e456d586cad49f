"""Local secrets kept under the data directory, readable only by their owner."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from regionctl.config import Settings

TOKEN_BYTES = 32


def control_token_path(settings: Settings) -> Path:
    return settings.root / "secrets" / "control-token"


def control_token(settings: Settings) -> str:
    """The bearer token for mutating control-plane calls: the configured one, else one generated on first use and
    kept at ``<root>/secrets/control-token`` (mode 0600) so the CLI and the control API agree on it."""
    if settings.control_token is not None:
        return settings.control_token.get_secret_value()
    path = control_token_path(settings)
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(TOKEN_BYTES) + "\n")
    try:
        os.link(tmp, path)  # atomic and refuses to replace: when two processes race, the first token wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()
